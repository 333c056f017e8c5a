"""A tiny LLaVA-architecture model (`transformers.LlavaForConditionalGeneration`: a CLIP vision
tower, a 2-layer GELU MLP projector and a LLaMA decoder), built from small configs with a
locally trained tokenizer, plus encoding, greedy generation, the paper's trainable subset and
a plain pre-training loop.

Sequence layout (our prompt format; the `<image>` token is repeated once per image patch
feature, which is what a LLaVA processor does and `LlavaModel.get_placeholder_mask` checks):

    <s> <image> x num_image_tokens "\\nUSER: {prompt}\\nASSISTANT:" " {answer}" </s>

Labels are -100 on everything up to and including "ASSISTANT:"; the answer tokens and the
closing </s> are supervised. The vision features are the last CLIP layer without the CLS
token (vision_feature_layer=-1, strategy "default"), so num_image_tokens =
(image_size / patch_size)^2. Pixels are normalised with the CLIP mean/std.

From-scratch training notes (1 CPU thread, measured while choosing the defaults):
- the CLIP patch/position embeddings are re-initialised (`build_model`'s docstring says why);
- AdamW lr 3e-4 beat 5e-4 and 1e-3 in every short probe (the higher rates stalled at the
  answer marginals without using the image);
- `pretrain` batches answers of similar length together (captions are ~35 tokens, VQA
  answers 1-2), which cuts the padding several-fold.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers  # noqa: E402
from transformers import (  # noqa: E402
    CLIPVisionConfig,
    LlamaConfig,
    LlavaConfig,
    LlavaForConditionalGeneration,
    PreTrainedTokenizerFast,
)

from .scenes import IMAGE_SIZE  # noqa: E402

PAD, BOS, EOS, UNK, IMAGE = "<pad>", "<s>", "</s>", "<unk>", "<image>"
SPECIAL_TOKENS = [PAD, BOS, EOS, UNK, IMAGE]
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
PROMPT_FORMAT = "\nUSER: {prompt}\nASSISTANT:"


# --------------------------------------------------------------------------- tokenizer


def corpus_texts(examples: Sequence[dict]) -> list[str]:
    """The strings a tokenizer should cover: formatted prompts and every reference answer."""
    out = []
    for e in examples:
        out.append(PROMPT_FORMAT.format(prompt=e["prompt"]))
        out.extend(" " + r for r in e.get("references") or [e["answer"]])
    return out


def train_tokenizer(
    texts: Sequence[str], vocab_size: int = 512, path: str | Path | None = None
) -> PreTrainedTokenizerFast:
    """A byte-level BPE trained on `texts` with the special tokens pad, bos, eos, unk, <image>
    (ids 0-4). Any string round-trips (byte-level alphabet). Saved to `path` if given
    (reload with `transformers.AutoTokenizer.from_pretrained(path)`)."""
    tok = Tokenizer(models.BPE(unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        extra_special_tokens=[IMAGE],
    )
    if path is not None:
        fast.save_pretrained(str(path))
    return fast


def image_token_id(tokenizer) -> int:
    return int(tokenizer.convert_tokens_to_ids(IMAGE))


# ------------------------------------------------------------------------------- model


def build_model(
    tokenizer,
    image_size: int = IMAGE_SIZE,
    patch_size: int = 12,
    vision_width: int = 64,
    vision_layers: int = 2,
    text_width: int = 96,
    text_layers: int = 4,
    heads: int = 4,
    max_positions: int = 256,
    position_init_std: float = 1.0,
    patch_init_std: float = 0.04,
    seed: int = 0,
) -> LlavaForConditionalGeneration:
    """A randomly initialised LLaVA (CLIP vision tower -> gelu MLP projector -> LLaMA) whose
    initial weights depend only on the arguments and `seed` (the global torch RNG is left as
    it was). Defaults: 36 px images in 12 px patches (9 image tokens, one per grid cell),
    a 2-layer 64-wide CLIP, a 4-layer 96-wide LLaMA with 4 heads (~0.84 M parameters with a
    600-token vocabulary)."""
    if image_size % patch_size:
        raise ValueError("image_size must be a multiple of patch_size")
    vision = CLIPVisionConfig(
        hidden_size=vision_width,
        intermediate_size=4 * vision_width,
        num_hidden_layers=vision_layers,
        num_attention_heads=heads,
        image_size=image_size,
        patch_size=patch_size,
        num_channels=3,
        hidden_act="quick_gelu",
    )
    text = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=text_width,
        intermediate_size=4 * text_width,
        num_hidden_layers=text_layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=max_positions,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=image_token_id(tokenizer),
        image_seq_length=(image_size // patch_size) ** 2,
        projector_hidden_act="gelu",
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
        tie_word_embeddings=False,
    )
    config.pad_token_id = tokenizer.pad_token_id
    config.bos_token_id = tokenizer.bos_token_id
    config.eos_token_id = tokenizer.eos_token_id
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlavaForConditionalGeneration(config)
        # Two re-initialisations of the CLIP embeddings (0 keeps CLIP's std of 0.02 for both).
        # With CLIP's 0.02 the position embedding is tiny next to the patch embedding
        # (~0.6 on our images), and a from-scratch tower needs many hundreds of Adam steps
        # before "where" is readable from its features (a one-object "where is it?" task
        # stayed at chance for 400 steps; with std 1.0 it was solved in 300). But position
        # then drowns the content (colour/shape varies by ~0.2 across patches): in a 3,600-step
        # run of the full mixture the model learned where objects are and not what they are.
        # A patch std of 0.04 (content ~0.45) balanced the two best in 600-step probes.
        emb = model.model.vision_tower.embeddings
        with torch.no_grad():
            if patch_init_std:
                emb.patch_embedding.weight.normal_(0.0, patch_init_std)
            if position_init_std:
                emb.position_embedding.weight.normal_(0.0, position_init_std)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


def num_image_tokens(model) -> int:
    """Image patch features per image = copies of <image> in the input ids."""
    v = model.config.vision_config
    n = (v.image_size // v.patch_size) ** 2
    return n if model.config.vision_feature_select_strategy == "default" else n + 1


def count_parameters(model) -> dict[str, int]:
    m = model.model
    parts = {
        "vision_tower": m.vision_tower,
        "projector": m.multi_modal_projector,
        "language_model": m.language_model,
        "lm_head": model.lm_head,
    }
    out = {k: sum(p.numel() for p in v.parameters()) for k, v in parts.items()}
    out["total"] = sum(p.numel() for p in model.parameters())
    return out


# ---------------------------------------------------------------------------- encoding


def pixel_values(images: Sequence[np.ndarray]) -> torch.Tensor:
    """uint8 (H, W, 3) images -> float (B, 3, H, W) normalised with the CLIP mean/std."""
    x = torch.from_numpy(np.stack([np.asarray(im) for im in images])).float().div_(255.0)
    x = x.permute(0, 3, 1, 2)
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    return ((x - mean) / std).contiguous()


def _ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def encode(
    examples: Sequence[dict],
    tokenizer,
    n_image_tokens: int,
    with_answer: bool = True,
    padding_side: str = "right",
) -> dict[str, torch.Tensor]:
    """A batch: input_ids, attention_mask, pixel_values and (with_answer) labels, with -100 on
    padding, <s>, the image tokens and the prompt. Without the answer (generation) the
    sequence ends at "ASSISTANT:"; use padding_side="left" then."""
    img = image_token_id(tokenizer)
    seqs, labs = [], []
    for e in examples:
        prompt = [tokenizer.bos_token_id] + [img] * n_image_tokens
        prompt += _ids(tokenizer, PROMPT_FORMAT.format(prompt=e["prompt"]))
        if with_answer:
            answer = _ids(tokenizer, " " + e["answer"]) + [tokenizer.eos_token_id]
            seqs.append(prompt + answer)
            labs.append([-100] * len(prompt) + answer)
        else:
            seqs.append(prompt)
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    labels = torch.full((len(seqs), width), -100, dtype=torch.long)
    for i, s in enumerate(seqs):
        sl = slice(0, len(s)) if padding_side == "right" else slice(width - len(s), width)
        ids[i, sl] = torch.tensor(s)
        mask[i, sl] = 1
        if with_answer:
            labels[i, sl] = torch.tensor(labs[i])
    batch = {
        "input_ids": ids,
        "attention_mask": mask,
        "pixel_values": pixel_values([e["image"] for e in examples]),
    }
    if with_answer:
        batch["labels"] = labels
    return batch


class Collator:
    """`encode` as a DataLoader/Trainer collate function."""

    def __init__(self, tokenizer, n_image_tokens: int, with_answer: bool = True, padding_side: str = "right"):
        self.tokenizer = tokenizer
        self.n_image_tokens = n_image_tokens
        self.with_answer = with_answer
        self.padding_side = padding_side

    def __call__(self, examples: Sequence[dict]) -> dict[str, torch.Tensor]:
        return encode(examples, self.tokenizer, self.n_image_tokens, self.with_answer, self.padding_side)


# -------------------------------------------------------------------------- generation


def default_max_new_tokens(examples: Sequence[dict], tokenizer, margin: int = 4) -> int:
    """Longest reference answer in tokens (+ eos) plus a margin."""
    refs = [r for e in examples for r in (e.get("references") or [e["answer"]])]
    return max(len(_ids(tokenizer, " " + r)) for r in refs) + 1 + margin


@torch.no_grad()
def generate_answers(
    model,
    tokenizer,
    examples: Sequence[dict],
    max_new_tokens: int | None = None,
    batch_size: int = 64,
) -> list[str]:
    """Greedy answers (left-padded batches, KV cache), decoded without special tokens."""
    if max_new_tokens is None:
        max_new_tokens = default_max_new_tokens(examples, tokenizer)
    was_training = model.training
    model.eval()
    n_img = num_image_tokens(model)
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    out: list[str] = []
    for i in range(0, len(examples), batch_size):
        chunk = examples[i : i + batch_size]
        batch = encode(chunk, tokenizer, n_img, with_answer=False, padding_side="left")
        batch = {k: v.to(device) for k, v in batch.items()}
        batch["pixel_values"] = batch["pixel_values"].to(dtype)
        gen = model.generate(
            **batch,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            num_beams=1,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        new = gen[:, batch["input_ids"].shape[1] :]
        for row in new.tolist():
            if tokenizer.eos_token_id in row:
                row = row[: row.index(tokenizer.eos_token_id)]
            out.append(tokenizer.decode(row, skip_special_tokens=True).strip())
    model.train(was_training)
    return out


def evaluate_tasks(
    model, tokenizer, eval_sets: dict[str, Sequence[dict]], batch_size: int = 64
) -> dict[str, float]:
    """Score per task (`corpora.score`: accuracy in [0, 1], CIDEr-D for captions)."""
    from .corpora import score

    return {
        task: score(exs, generate_answers(model, tokenizer, exs, batch_size=batch_size))
        for task, exs in eval_sets.items()
    }


# ---------------------------------------------------------------- trainable parameters


def trainable_parameters(model, last_layers: int = 2, named: bool = False):
    """(projector parameters, parameters of the last `last_layers` LM decoder layers), the
    subset the paper fine-tunes (lr 2e-5 for the projector, 2e-4 for the LM layers). With
    `named`, lists of (qualified name, parameter)."""
    proj = list(model.model.multi_modal_projector.named_parameters(prefix="model.multi_modal_projector"))
    layers = model.model.language_model.layers
    n = len(layers)
    if not 1 <= last_layers <= n:
        raise ValueError(f"last_layers must be in 1..{n}")
    lm = []
    for i in range(n - last_layers, n):
        lm.extend(layers[i].named_parameters(prefix=f"model.language_model.layers.{i}"))
    if named:
        return proj, lm
    return [p for _, p in proj], [p for _, p in lm]


def freeze_for_finetuning(model, last_layers: int = 2, named: bool = False):
    """requires_grad only on `trainable_parameters`; returns them (two groups, named with
    `named`)."""
    proj, lm = trainable_parameters(model, last_layers, named=named)
    keep = {id(p if not named else p[1]) for p in proj + lm}
    for p in model.parameters():
        p.requires_grad_(id(p) in keep)
    return proj, lm


def param_groups(model, lm_lr: float = 2e-4, projector_lr_ratio: float = 0.1, last_layers: int = 2) -> list[dict]:
    """Optimizer groups with the paper's ratio (projector 2e-5 : LM layers 2e-4)."""
    proj, lm = trainable_parameters(model, last_layers)
    return [
        {"params": proj, "lr": lm_lr * projector_lr_ratio, "name": "projector"},
        {"params": lm, "lr": lm_lr, "name": "lm_last_layers"},
    ]


# ---------------------------------------------------------------------------- training


def warmup_cosine(step: int, total: int, warmup: int) -> float:
    """LR multiplier: linear warmup over `warmup` steps, then cosine decay to 0 at `total`."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def length_grouped_batches(
    n: int, batch_size: int, generator: torch.Generator, lengths: Sequence[int] | None = None, mega: int = 16
) -> list[list[int]]:
    """One epoch of index batches from a seeded permutation. With `lengths`, each run of
    `mega` batches is sorted by length before splitting and the batches are shuffled again,
    so a batch holds examples of similar length. The last partial batch is dropped unless it
    is the only one."""
    perm = torch.randperm(n, generator=generator).tolist()
    if lengths is not None:
        chunk = batch_size * mega
        perm = [i for s in range(0, n, chunk) for i in sorted(perm[s : s + chunk], key=lambda j: lengths[j])]
    batches = [perm[s : s + batch_size] for s in range(0, n, batch_size)]
    if len(batches) > 1 and len(batches[-1]) < batch_size:
        batches.pop()
    order = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in order]


def pretrain(
    model,
    tokenizer,
    examples: Sequence[dict],
    steps: int,
    lr: float = 3e-4,
    batch_size: int = 32,
    seed: int = 0,
    log_every: int = 0,
    warmup: float = 0.03,
    weight_decay: float = 0.0,
    grad_clip: float = 1.0,
    group_by_length: bool = True,
    callback: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Full-parameter pre-training with AdamW, warmup + cosine, gradient clipping; batches are
    drawn epoch by epoch from a seeded permutation (`length_grouped_batches`: answers of similar
    length batched together, which cuts padding several-fold on the caption/VQA mixture).
    Returns the loss of every step. `warmup` is a fraction of `steps` if < 1, else a number of
    steps. The loss is the mean over supervised tokens of the batch (as in HF)."""
    model.train()
    device = next(model.parameters()).device
    n_img = num_image_tokens(model)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    n_warm = int(round(warmup * steps)) if warmup < 1 else int(warmup)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(s, steps, n_warm))
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    lengths = None
    if group_by_length:
        lengths = [len(_ids(tokenizer, e["prompt"] + " " + e["answer"])) for e in examples]
    queue: list[list[int]] = []
    losses: list[float] = []
    t0 = time.time()
    for step in range(steps):
        if not queue:
            queue = length_grouped_batches(len(examples), batch_size, gen, lengths)
        idx = queue.pop(0)
        batch = encode([examples[i] for i in idx], tokenizer, n_img)
        batch = {k: v.to(device) for k, v in batch.items()}
        loss = model(**batch).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if callback is not None:
            callback(step, losses[-1])
        if log_every and (step + 1) % log_every == 0:
            recent = losses[-log_every:]
            print(
                f"pretrain step {step + 1}/{steps} loss {sum(recent) / len(recent):.4f} "
                f"lr {sched.get_last_lr()[0]:.2e} {time.time() - t0:.0f}s",
                flush=True,
            )
    return losses
