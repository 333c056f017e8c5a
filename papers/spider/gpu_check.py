"""The prepared GPU check of SPIDER's paper path: LLaVA-1.5-7B's architecture (CLIP ViT-L/14 at
336 px, the 2-layer GELU projector, a 32-layer 4096-wide LLaMA) with random weights in bf16
(nothing is downloaded), the trained tensors (projector + last 2 decoder layers) in fp32, and
the paper path's training step: `finetune._shared_step` under an `accelerate.Accelerator`
(bf16 autocast), clipping, SPIDER's rule around AdamW, the warm-up + cosine schedule.

    python -m papers.spider.gpu_check --size paper --steps 200   # one GPU, about a minute
    python -m papers.spider.gpu_check --size tiny --steps 3      # CPU (the test)

A step is one per-GPU batch of the paper config (16 global over 4 GPUs = 4 examples) of 576
image tokens + 64 prompt tokens + 16 answer tokens. FLOPs per step are counted once with
torch.utils.flop_counter.FlopCounterMode (forward through every layer, backward down to the
projector, weight gradients only for the trained tensors), so MFU is against what the step
really computes, not 6 × params × tokens.
"""

from __future__ import annotations

import sys

import torch

SIZES = {
    "paper": {
        "vision": dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                       image_size=336, patch_size=14, projection_dim=768, hidden_act="quick_gelu"),
        "text": dict(vocab_size=32064, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                     num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096),
        "batch": 4, "prompt_tokens": 64, "answer_tokens": 16, "precision": "bf16", "feature_layer": -2,
    },
    "tiny": {
        "vision": dict(hidden_size=16, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                       image_size=16, patch_size=8, projection_dim=16, hidden_act="quick_gelu"),
        "text": dict(vocab_size=300, hidden_size=32, intermediate_size=128, num_hidden_layers=3,
                     num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256),
        "batch": 2, "prompt_tokens": 8, "answer_tokens": 4, "precision": "no", "feature_layer": -1,
    },
}


def build(size: str, device: torch.device):
    """A random LlavaForConditionalGeneration of `size`, built on `device` in the run dtype."""
    from transformers import (
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
    )

    spec = SIZES[size]
    text = LlamaConfig(**spec["text"], bos_token_id=1, eos_token_id=2, pad_token_id=0, tie_word_embeddings=False)
    vision = CLIPVisionConfig(**spec["vision"])
    n_image = (vision.image_size // vision.patch_size) ** 2
    config = LlavaConfig(vision_config=vision, text_config=text, image_token_index=text.vocab_size - 1,
                         image_seq_length=n_image, projector_hidden_act="gelu",
                         vision_feature_layer=spec["feature_layer"], vision_feature_select_strategy="default",
                         tie_word_embeddings=False)
    dtype = torch.bfloat16 if spec["precision"] == "bf16" else torch.float32
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = LlavaForConditionalGeneration(config)
    finally:
        torch.set_default_dtype(default)
    return model, n_image


def inputs(size: str, model, n_image: int, device: torch.device) -> dict:
    """One per-GPU batch: <s>, the image tokens, a random prompt and a supervised answer."""
    spec = SIZES[size]
    gen = torch.Generator().manual_seed(0)
    b, p, a = spec["batch"], spec["prompt_tokens"], spec["answer_tokens"]
    image_id = model.config.image_token_index
    text = torch.randint(5, image_id, (b, p + a), generator=gen)
    ids = torch.cat([torch.ones(b, 1, dtype=torch.long), torch.full((b, n_image), image_id), text], dim=1)
    labels = torch.full_like(ids, -100)
    labels[:, -a:] = ids[:, -a:]
    side = model.config.vision_config.image_size
    pixels = torch.randn(b, 3, side, side, generator=gen)
    vision_dtype = next(model.model.vision_tower.parameters()).dtype
    return {"input_ids": ids.to(device), "attention_mask": torch.ones_like(ids).to(device),
            "pixel_values": pixels.to(device, vision_dtype), "labels": labels.to(device)}


def run(size: str, steps: int, device: torch.device) -> list[dict]:
    from torch.utils.flop_counter import FlopCounterMode

    from papers.spider.baselines import build_rule
    from papers.spider.finetune import _shared_step, cosine_with_warmup
    from papers.spider.local import llava_groups
    from shared.device import make_accelerator
    from shared.gpu_check import measure

    if size == "paper" and device.type != "cuda":
        print("error: --size paper builds LLaVA-1.5-7B (about 30 GB with training state) and needs a "
              "GPU; use --size tiny on a CPU", file=sys.stderr)
        raise SystemExit(2)
    spec = SIZES[size]
    accelerator = make_accelerator(str(device), spec["precision"])
    model, n_image = build(size, device)
    projector, layers = llava_groups(model, last_layers=2)  # fp32 master copies, the rest frozen
    named = projector + layers
    lr = 2e-4  # configs/paper.yaml: LM layers 2e-4, projector 0.1 x
    opt = torch.optim.AdamW([{"params": [p for _, p in projector], "lr": lr * 0.1},
                             {"params": [p for _, p in layers], "lr": lr}], weight_decay=0.0)
    warmup = 10 if size == "paper" else 1
    sched = cosine_with_warmup(opt, steps + warmup + 1, 0.03)
    train_model, opt = accelerator.prepare(model, opt)
    rule = build_rule("spider")
    rule.start(named)
    batch = inputs(size, model, n_image, accelerator.device)
    model.train()

    def step():
        _shared_step(accelerator, train_model, lambda _: dict(batch), [0], named, 1.0)
        rule.before_step()
        opt.step()
        rule.after_step()
        sched.step()
        opt.zero_grad(set_to_none=True)

    counter = FlopCounterMode(display=False)
    with counter:
        step()
    flops = float(counter.get_total_flops())
    n_params = sum(p.numel() for p in model.parameters())
    trained = sum(p.numel() for _, p in named)
    tokens = batch["input_ids"].numel()
    row = measure(step, steps=steps, device=accelerator.device, warmup=warmup, flops_per_step=flops,
                  dtype="bf16" if spec["precision"] == "bf16" else "fp32",
                  name="spider paper path (LLaVA-1.5-7B architecture)" if size == "paper" else "spider tiny",
                  params=n_params, trained_params=trained, rule_extra_bytes=rule.extra_bytes(),
                  tokens_per_step=tokens, batch=spec["batch"], precision=spec["precision"])
    row["tokens_per_s"] = tokens * row["steps_per_s"]
    return [row]


def main(argv: list[str] | None = None) -> int:
    from shared.gpu_check import paper_main

    return paper_main("spider", run, argv)


if __name__ == "__main__":
    sys.exit(main())
