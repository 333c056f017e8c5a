"""The prompt encoder of the tiny base model: a word-level tokenizer over the caption
grammar's vocabulary (built locally with `tokenizers`) and a small CLIP text transformer
built from a `CLIPTextConfig`. Nothing is downloaded.

Like Stable Diffusion's, the encoder is causal and is not given a padding mask: the UNet
cross-attends to all `max_length` hidden states, padding included.
"""

from __future__ import annotations

import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import CLIPTextConfig, CLIPTextModel, PreTrainedTokenizerFast

from papers.sdpo.config import TextConfig
from papers.sdpo.data import vocabulary

PAD, UNK, BOS, EOS = "[PAD]", "[UNK]", "[BOS]", "[EOS]"
SPECIAL_TOKENS = (PAD, UNK, BOS, EOS)  # ids 0, 1, 2, 3


def token_list(words: list[str] | None = None) -> list[str]:
    """Special tokens, then the grammar's words: position = token id."""
    return [*SPECIAL_TOKENS, *(vocabulary() if words is None else words)]


def build_tokenizer(cfg: TextConfig, words: list[str] | None = None) -> PreTrainedTokenizerFast:
    """Lower-cased, whitespace-split words; "[BOS] ... [EOS]", padded/truncated to max_length."""
    tokens = token_list(words)
    vocab = {token: i for i, token in enumerate(tokens)}
    core = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    core.normalizer = normalizers.Lowercase()
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A {EOS}", special_tokens=[(BOS, vocab[BOS]), (EOS, vocab[EOS])],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=core, model_max_length=cfg.max_length, padding_side="right",
        pad_token=PAD, unk_token=UNK, bos_token=BOS, eos_token=EOS,
    )


def build_text_encoder(cfg: TextConfig, tokenizer: PreTrainedTokenizerFast) -> CLIPTextModel:
    """A randomly initialised CLIP text transformer sized by `cfg` (initialised from torch's
    global RNG: seed it first)."""
    config = CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=cfg.hidden, intermediate_size=4 * cfg.hidden,
        num_hidden_layers=cfg.layers, num_attention_heads=cfg.heads,
        max_position_embeddings=cfg.max_length, projection_dim=cfg.hidden,
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
