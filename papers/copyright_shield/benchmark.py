"""Throughput of the small configuration's model (random weights: speed does not depend on
them): fine-tuning steps/s (the ε-MSE step of train.py, with and without the differentiable
L_protect) and trigger-generation images/s (guided DDIM, eval.sample_steps steps).

    python -m papers.copyright_shield.benchmark [--config small] [--steps 20] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from papers.copyright_shield.config import CopyrightShieldConfig
from papers.copyright_shield.model import new_backbone
from papers.copyright_shield.protect import protection
from papers.copyright_shield.sampling import guided_sample
from papers.copyright_shield.train import _step
from shared.config import load_config
from shared.t2i.text import tokenize
from shared.t2i.training import make_optimizer


def measure(cfg: CopyrightShieldConfig, steps: int) -> dict:
    torch.manual_seed(0)
    backbone = new_backbone(cfg)
    size, n = cfg.data.image_size, 256
    latents = torch.rand(n, 3, size, size) * 2 - 1
    captions = ["an image with a plain red circle , a striped blue square"] * n
    ids = tokenize(backbone.tokenizer, captions)
    empty = tokenize(backbone.tokenizer, [""])[0]
    params = list(backbone.unet.parameters()) + list(backbone.text_encoder.parameters())
    backbone.train().requires_grad_(True)
    alphas = backbone.scheduler.alphas_cumprod
    out = {}
    detected = torch.zeros(n, dtype=torch.bool)
    detected[: n // 5] = True
    for name, extra in (("plain", None), ("differentiable", protection(detected, "differentiable", 0.05, 0.5))):
        opt, sched = make_optimizer(params, 1e-3, steps + 2)
        gen = torch.Generator().manual_seed(0)
        _step(backbone, latents, ids, empty, captions, params, opt, sched, gen, alphas, 0,
              cfg.train.batch_size, cfg.train.caption_dropout, extra)  # warm-up
        start = time.perf_counter()
        for i in range(steps):
            _step(backbone, latents, ids, empty, captions, params, opt, sched, gen, alphas, i,
                  cfg.train.batch_size, cfg.train.caption_dropout, extra)
        out[f"finetune_steps_per_s_{name}"] = steps / (time.perf_counter() - start)
    backbone.eval()
    batch = cfg.data.targets * cfg.eval.fae_generations
    prompts = captions[:batch]
    guided_sample(backbone, prompts[:2], cfg.eval.sample_steps, torch.Generator().manual_seed(0), cfg.eval.guidance)
    start = time.perf_counter()
    guided_sample(backbone, prompts, cfg.eval.sample_steps, torch.Generator().manual_seed(0), cfg.eval.guidance)
    out["generation_images_per_s"] = batch / (time.perf_counter() - start)
    out.update({"batch_size": cfg.train.batch_size, "generation_batch": batch, "image_size": size,
                "sample_steps": cfg.eval.sample_steps, "guidance": cfg.eval.guidance,
                "threads": torch.get_num_threads(),
                "unet_parameters": sum(p.numel() for p in backbone.unet.parameters())})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m papers.copyright_shield.benchmark")
    parser.add_argument("--config", default="small")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = load_config(CopyrightShieldConfig, Path(__file__).parent / "configs", args.config, [])
    print(json.dumps(measure(cfg, args.steps), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
