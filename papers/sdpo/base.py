"""The tiny few-step text-to-image model that plays SD-Turbo's role (brief, small-scale shape).

A `shared.t2i.backbone.PixelBackbone`: a pixel-space `UNet2DConditionModel` (the "latents"
are RGB images in [-1, 1]) conditioned through cross-attention on a small CLIP text encoder
with a word-level tokenizer over the shapes grammar's vocabulary (`shared.t2i.text`,
`shared.t2i.scenes`). It is built in two stages:

1. DDPM pre-training (`shared.t2i.training.train_epsilon`): text encoder and UNet jointly,
   epsilon-prediction MSE, t ~ U{0..999}, on `scenes.make_dataset` images and captions.
2. Few-step distillation (one stage, in place of SD-Turbo's adversarial distillation): the
   pre-trained teacher runs deterministic DDIM (eta = 0, trailing spacing) for
   `distill_teacher_steps` steps from x_T; the student (the teacher's weights, text encoder
   frozen from here on) learns, at the teacher's states x_t on the 1/2/4/8-step trailing
   grids, an epsilon whose x0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t) matches the
   teacher's final sample (loss in x0 space).

With `base.prediction=v_prediction` (the default) the UNet's raw output is v, wrapped to ε
(`param.VPredictionUNet`), pre-trained on the v-MSE and distilled through the same x0 loss; the
RL code sees an ε-predictor either way. `base.prediction=epsilon` is the earlier base, whose
1-step samples are coloured noise (ε errors magnified ~15× at ᾱ ≈ 0.005).

`load_base` builds once per (data, text, base) config, vocabulary and package versions, and
caches the weights under `<data_dir>/sdpo-base/<key>/` (`shared.t2i.cache`: locked,
checksummed, written atomically).
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from papers.sdpo.config import SDPOExperimentConfig
from papers.sdpo.param import VPredictionUNet, v_loss_correction
from shared import UserError
from shared.cache import cache_key
from shared.runs import package_versions
from shared.t2i.backbone import (
    PixelBackbone,
    build_scheduler,
    build_unet,
    load_pixel_backbone,
    save_pixel_backbone,
    trailing_timesteps,
)
from shared.t2i.cache import build_once, open_cache
from shared.t2i.scenes import make_dataset, random_caption, sample_scene, vocabulary
from shared.t2i.text import build_text_encoder, build_tokenizer
from shared.t2i.training import make_optimizer, optimizer_step, torch_threads, train_epsilon
from shared.tracking import progress

DISTILL_BUDGETS = (1, 2, 4, 8)  # step counts the student is distilled for (the eval budgets)
BUILD = "build.json"


def new_backbone(cfg: SDPOExperimentConfig, words: list[str] | None = None) -> PixelBackbone:
    """An untrained backbone of `cfg`'s sizes over the grammar's vocabulary (or `words`);
    seed torch's global RNG first for a reproducible init."""
    tokenizer = build_tokenizer(vocabulary() if words is None else words, cfg.text.max_length)
    unet = build_unet(cfg.data.image_size, cfg.base.block_out_channels, cfg.base.layers_per_block,
                      cfg.base.attention_head_dim, cross_attention_dim=cfg.text.hidden)
    text_encoder = build_text_encoder(tokenizer, cfg.text.hidden, cfg.text.layers, cfg.text.heads)
    scheduler = build_scheduler(cfg.base.beta_schedule, cfg.base.beta_start, cfg.base.beta_end)
    if cfg.base.prediction == "v_prediction":
        unet = VPredictionUNet(unet, scheduler.alphas_cumprod)
    return PixelBackbone(unet, text_encoder, tokenizer, scheduler)


def pretrain(backbone: PixelBackbone, cfg: SDPOExperimentConfig,
             generator: torch.Generator) -> list[float]:
    """DDPM pre-training (epsilon MSE) of text encoder and UNet on the procedural captioned
    images; returns the losses."""
    images, captions = make_dataset(cfg.data.images, cfg.data.image_size, cfg.data.seed)
    return train_epsilon(backbone, images, captions, steps=cfg.base.pretrain_steps,
                         batch_size=cfg.base.pretrain_batch, lr=cfg.base.pretrain_lr,
                         generator=generator, desc="sdpo base: pre-train",
                         extra_loss=v_loss_correction if cfg.base.prediction == "v_prediction" else None)


@torch.no_grad()
def teacher_trajectories(backbone: PixelBackbone, cfg: SDPOExperimentConfig,
                         generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Deterministic DDIM of the teacher from x_T for `distill_samples` random captions.

    Returns `states` (K, N, C, H, W): x_t at the K timesteps of the distilled grids
    (`timesteps`, descending), `targets` (N, C, H, W): the teacher's final clean samples,
    and `cond` (N, L, D): the captions' encoder states.
    """
    base = cfg.base
    teacher_grid = trailing_timesteps(backbone.scheduler, base.distill_teacher_steps)
    wanted = sorted({t for n in DISTILL_BUDGETS for t in trailing_timesteps(backbone.scheduler, n)},
                    reverse=True)
    if not set(wanted) <= set(teacher_grid):
        raise UserError(f"config key 'base.distill_teacher_steps': {base.distill_teacher_steps} "
                        f"steps miss timesteps of the {DISTILL_BUDGETS}-step grids; use a multiple of 8")
    rng = np.random.default_rng(base.seed)
    captions = [random_caption(sample_scene(rng), rng) for _ in range(base.distill_samples)]
    backbone.eval()
    cond = torch.cat([backbone.encode_prompts(captions[i:i + 256])
                      for i in range(0, len(captions), 256)])
    scheduler = copy.deepcopy(backbone.scheduler)
    scheduler.set_timesteps(base.distill_teacher_steps)
    states, targets = [], []
    for start in progress(range(0, len(captions), 256), desc="sdpo base: teacher DDIM"):
        c = cond[start:start + 256]
        x = torch.randn((len(c), *backbone.latent_shape), generator=generator).to(backbone.device)
        kept = []
        for t in scheduler.timesteps:
            if int(t) in wanted:
                kept.append(x)
            step = scheduler.step(backbone.unet(x, t, c).sample, t, x, eta=0.0)
            x = step.prev_sample
        states.append(torch.stack(kept))
        targets.append(step.pred_original_sample.clamp(-1, 1))
    return {"states": torch.cat(states, 1), "targets": torch.cat(targets), "cond": cond,
            "timesteps": torch.tensor(wanted)}


def distill(backbone: PixelBackbone, cfg: SDPOExperimentConfig, data: dict[str, torch.Tensor],
            generator: torch.Generator) -> list[float]:
    """Train the UNet so one epsilon step from a teacher state lands on the teacher's final
    sample (x0-space MSE). A step budget is drawn uniformly from DISTILL_BUDGETS, then a
    timestep uniformly from its grid, so x_T (in every grid) gets about half the weight."""
    base, device = cfg.base, backbone.device
    timesteps = data["timesteps"].tolist()
    grids = [[timesteps.index(t) for t in trailing_timesteps(backbone.scheduler, n)]
             for n in DISTILL_BUDGETS]
    alphas = backbone.scheduler.alphas_cumprod.to(device)
    backbone.text_encoder.requires_grad_(False).eval()
    backbone.unet.train().requires_grad_(True)
    params = list(backbone.unet.parameters())
    opt, schedule = make_optimizer(params, base.distill_lr, base.distill_steps)
    n = data["targets"].shape[0]
    losses = []
    for _ in progress(range(base.distill_steps), desc="sdpo base: distil"):
        pick = torch.randint(n, (base.distill_batch,), generator=generator)
        budget = torch.randint(len(grids), (len(pick),), generator=generator).tolist()
        k = torch.tensor([g[int(torch.randint(len(g), (1,), generator=generator))]
                          for g in (grids[b] for b in budget)])
        x_t = data["states"][k, pick].to(device)
        t = data["timesteps"][k].to(device)
        abar = alphas[t].view(-1, 1, 1, 1)
        eps = backbone.unet(x_t, t, data["cond"][pick].to(device)).sample
        x0 = (x_t - (1 - abar).sqrt() * eps) / abar.sqrt()
        loss = torch.nn.functional.mse_loss(x0, data["targets"][pick].to(device))
        losses.append(optimizer_step(loss, params, opt, schedule))
    return losses


def cache_dir(cfg: SDPOExperimentConfig) -> Path:
    key = cache_key(data=asdict(cfg.data), text=asdict(cfg.text), base=asdict(cfg.base),
                    vocabulary=vocabulary(), versions=package_versions())
    return Path(cfg.data_dir) / "sdpo-base" / key


def build_base(cfg: SDPOExperimentConfig, device: str | torch.device = "cpu") -> tuple[PixelBackbone, dict]:
    """Pre-train and distil a backbone (no caching); returns it and the build's statistics.
    Torch's global RNG is left as it was."""
    with torch_threads(cfg.base.threads), torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.base.seed)
        backbone = new_backbone(cfg).to(device)
        generator = torch.Generator().manual_seed(cfg.base.seed)
        start = time.time()
        pre = pretrain(backbone, cfg, generator)
        mid = time.time()
        data = teacher_trajectories(backbone, cfg, generator)
        post = distill(backbone, cfg, data, generator)
        end = time.time()
    backbone.eval().requires_grad_(False)
    stats = {"pretrain_seconds": mid - start, "distill_seconds": end - mid,
             "pretrain_loss_last100": float(np.mean(pre[-100:])),
             "distill_loss_last100": float(np.mean(post[-100:]))}
    return backbone, stats


def load_cached(cfg: SDPOExperimentConfig, path: Path, device: str | torch.device) -> PixelBackbone:
    """The verified backbone cached at `path`; a corrupt cache is a one-line UserError."""

    def read(directory: Path) -> PixelBackbone:
        return load_pixel_backbone(directory, lambda words: new_backbone(cfg, words))

    backbone = open_cache(path, "sdpo base model", read)
    return backbone.to(device).eval().requires_grad_(False)


def load_base(cfg: SDPOExperimentConfig, device: str | torch.device = "cpu") -> PixelBackbone:
    """The base model of `cfg`, built once (minutes) and loaded from the cache afterwards
    (weights, vocabulary and the build's statistics; locked, checksummed, written atomically)."""

    def build(directory: Path) -> None:
        backbone, stats = build_base(cfg, device)
        save_pixel_backbone(backbone, directory)
        (directory / BUILD).write_text(json.dumps(stats, indent=2) + "\n")

    path = build_once(cache_dir(cfg), build)
    return load_cached(cfg, path, device)
