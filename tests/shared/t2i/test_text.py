import torch

from shared.t2i.scenes import vocabulary
from shared.t2i.text import (
    build_text_encoder,
    build_tokenizer,
    encode,
    token_list,
    tokenize,
    tokens_of,
)


def test_tokenizer_ids_padding_truncation_and_unknown_words():
    tokenizer = build_tokenizer(vocabulary(), max_length=16)
    ids = tokenize(tokenizer, ["A red circle", "a red zebra", "a " * 40])
    assert ids.shape == (3, 16)
    words = tokenizer.convert_ids_to_tokens(ids[0, :6].tolist())
    assert words == ["[BOS]", "a", "red", "circle", "[EOS]", "[PAD]"]
    assert ids[0, 5:].eq(0).all()  # [PAD] is id 0
    assert tokenizer.convert_ids_to_tokens(ids[1, 3].item()) == "[UNK]"
    assert ids[2, -1].item() == tokenizer.eos_token_id  # truncation keeps [EOS]


def test_the_vocabulary_is_a_parameter():
    tokenizer = build_tokenizer(["logo", "cat"], max_length=6)
    assert tokens_of(tokenizer) == token_list(["logo", "cat"]) == ["[PAD]", "[UNK]", "[BOS]", "[EOS]", "logo", "cat"]
    assert tokenize(tokenizer, ["Cat logo dog"]).tolist() == [[2, 5, 4, 1, 3, 0]]
    assert tokens_of(build_tokenizer(vocabulary(), 16)) == token_list(vocabulary())


def test_text_encoder_sizes_and_gradient():
    tokenizer = build_tokenizer(vocabulary(), max_length=16)
    torch.manual_seed(0)
    encoder = build_text_encoder(tokenizer, hidden=16, layers=1, heads=2)
    assert encoder.config.vocab_size == len(vocabulary()) + 4
    assert encoder.config.max_position_embeddings == 16 and encoder.config.intermediate_size == 64
    hidden = encode(tokenizer, encoder, ["a red circle", "a blue square"])
    assert hidden.shape == (2, 16, 16) and hidden.requires_grad
    torch.manual_seed(0)
    again = build_text_encoder(tokenizer, hidden=16, layers=1, heads=2)
    assert all(torch.equal(a, b) for a, b in zip(again.parameters(), encoder.parameters(), strict=True))
