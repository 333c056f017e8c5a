"""A tiny prompt encoder: a word-level tokenizer over a given vocabulary (built locally with
`tokenizers`) and a small CLIP text transformer built from a `CLIPTextConfig`. Nothing is
downloaded.

Like Stable Diffusion's, the encoder is causal and is not given a padding mask: the UNet
cross-attends to all `max_length` hidden states, padding included.
"""

from __future__ import annotations

import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import CLIPTextConfig, CLIPTextModel, PreTrainedTokenizerFast

PAD, UNK, BOS, EOS = "[PAD]", "[UNK]", "[BOS]", "[EOS]"
SPECIAL_TOKENS = (PAD, UNK, BOS, EOS)  # ids 0, 1, 2, 3


def token_list(words: list[str]) -> list[str]:
    """Special tokens, then `words`: position = token id."""
    return [*SPECIAL_TOKENS, *words]


def build_tokenizer(words: list[str], max_length: int) -> PreTrainedTokenizerFast:
    """Lower-cased, whitespace-split words; "[BOS] ... [EOS]", padded/truncated to max_length;
    a word outside `words` is [UNK]."""
    tokens = token_list(words)
    vocab = {token: i for i, token in enumerate(tokens)}
    core = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    core.normalizer = normalizers.Lowercase()
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A {EOS}", special_tokens=[(BOS, vocab[BOS]), (EOS, vocab[EOS])],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=core, model_max_length=max_length, padding_side="right",
        pad_token=PAD, unk_token=UNK, bos_token=BOS, eos_token=EOS,
    )


def tokens_of(tokenizer: PreTrainedTokenizerFast) -> list[str]:
    """The tokenizer's tokens in id order (what `token_list` gave it)."""
    return tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))


def build_text_encoder(tokenizer: PreTrainedTokenizerFast, hidden: int, layers: int,
                       heads: int) -> CLIPTextModel:
    """A randomly initialised CLIP text transformer (hidden size = the UNet's cross-attention
    width, MLP 4x hidden, positions = the tokenizer's max length), initialised from torch's
    global RNG: seed it first."""
    config = CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=4 * hidden,
        num_hidden_layers=layers, num_attention_heads=heads,
        max_position_embeddings=tokenizer.model_max_length, projection_dim=hidden,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return CLIPTextModel(config)


def tokenize(tokenizer: PreTrainedTokenizerFast, texts: list[str]) -> torch.Tensor:
    """(B, max_length) token ids."""
    return tokenizer(list(texts), padding="max_length", truncation=True,
                     max_length=tokenizer.model_max_length, return_tensors="pt").input_ids


def encode(tokenizer: PreTrainedTokenizerFast, text_encoder: CLIPTextModel,
           texts: list[str]) -> torch.Tensor:
    """(B, max_length, hidden) last hidden states (with gradient when the encoder has one)."""
    ids = tokenize(tokenizer, texts).to(text_encoder.device)
    return text_encoder(input_ids=ids).last_hidden_state
