"""The tiny few-step text-to-image model that plays SD-Turbo's role (brief, small-scale shape).

A pixel-space `UNet2DConditionModel` (the "latents" are RGB images in [-1, 1]) conditioned
through cross-attention on a small CLIP text encoder (`text.py`). It is built in two stages:

1. DDPM pre-training: text encoder and UNet jointly, epsilon-prediction MSE, t ~ U{0..999},
   on `make_dataset` images and captions.
2. Few-step distillation (one stage, in place of SD-Turbo's adversarial distillation): the
   pre-trained teacher runs deterministic DDIM (eta = 0, trailing spacing) for
   `distill_teacher_steps` steps from x_T; the student (the teacher's weights, text encoder
   frozen from here on) learns, at the teacher's states x_t on the 1/2/4/8-step trailing
   grids, an epsilon whose x0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t) matches the
   teacher's final sample (loss in x0 space). It stays an epsilon predictor, as the RL
   code's DDIM formulas assume.

`load_base` builds once per (data, text, base) config, vocabulary and package versions, and
caches the weights under `<data_dir>/sdpo-base/<key>/` (checksummed, written atomically).
"""

from __future__ import annotations

import copy
import fcntl
import json
import math
import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from diffusers import DDIMScheduler, UNet2DConditionModel
from diffusers.optimization import get_cosine_schedule_with_warmup
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from transformers import CLIPTextModel, PreTrainedTokenizerFast

from papers.sdpo.config import BaseConfig, SDPOExperimentConfig
from papers.sdpo.data import make_dataset, random_caption, sample_scene, vocabulary
from papers.sdpo.model import Backbone
from papers.sdpo.text import build_text_encoder, build_tokenizer, token_list, tokenize
from shared import UserError
from shared.cache import cache_key, file_sha256
from shared.checkpoint import CheckpointError, verify_checkpoint
from shared.runs import package_versions
from shared.tracking import progress

DISTILL_BUDGETS = (1, 2, 4, 8)  # step counts the student is distilled for (the eval budgets)
WEIGHTS, VOCAB, BUILD = "weights.safetensors", "vocab.json", "build.json"
WARMUP_FRACTION = 0.05  # of each stage's steps, linear learning-rate warm-up before cosine decay


class PixelBackbone(Backbone):
    """The tiny model behind the `Backbone` contract: latents are images in [-1, 1]."""

    def __init__(self, unet: UNet2DConditionModel, text_encoder: CLIPTextModel,
                 tokenizer: PreTrainedTokenizerFast, scheduler: DDIMScheduler) -> None:
        super().__init__()
        self.unet = unet
        self.text_encoder = text_encoder
        self.tokenizer = tokenizer
        self.scheduler = scheduler
        size = unet.config.sample_size
        self.latent_shape = (unet.config.in_channels, size, size)

    def encode_prompts(self, prompts: list[str]) -> torch.Tensor:
        with torch.no_grad():
            ids = tokenize(self.tokenizer, prompts).to(self.device)
            return self.text_encoder(input_ids=ids).last_hidden_state

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return (latents.detach().clamp(-1, 1) + 1) / 2


def build_unet(cfg: SDPOExperimentConfig) -> UNet2DConditionModel:
    """Cross-attention only at the lowest resolution and in the mid block (randomly
    initialised from torch's global RNG)."""
    widths = list(cfg.base.block_out_channels)
    plain = len(widths) - 1
    return UNet2DConditionModel(
        sample_size=cfg.data.image_size, in_channels=3, out_channels=3,
        block_out_channels=widths, layers_per_block=cfg.base.layers_per_block,
        down_block_types=("DownBlock2D",) * plain + ("CrossAttnDownBlock2D",),
        up_block_types=("CrossAttnUpBlock2D",) + ("UpBlock2D",) * plain,
        # diffusers reads `attention_head_dim` as the number of heads (its naming quirk).
        attention_head_dim=[max(1, w // cfg.base.attention_head_dim) for w in widths],
        cross_attention_dim=cfg.text.hidden, norm_num_groups=math.gcd(8, *widths),
    )


def build_scheduler(cfg: BaseConfig) -> DDIMScheduler:
    return DDIMScheduler(
        num_train_timesteps=1000, beta_schedule=cfg.beta_schedule, beta_start=cfg.beta_start,
        beta_end=cfg.beta_end, prediction_type="epsilon", timestep_spacing="trailing",
        clip_sample=False, set_alpha_to_one=False,
    )


def new_backbone(cfg: SDPOExperimentConfig, words: list[str] | None = None) -> PixelBackbone:
    """An untrained backbone; seed torch's global RNG first for a reproducible init."""
    tokenizer = build_tokenizer(cfg.text, words)
    return PixelBackbone(build_unet(cfg), build_text_encoder(cfg.text, tokenizer), tokenizer,
                         build_scheduler(cfg.base))


def _step(loss: torch.Tensor, params: list[torch.nn.Parameter], opt, schedule) -> float:
    """One clipped AdamW step with its learning-rate schedule; returns the loss."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    schedule.step()
    return loss.item()


def _optimizer(params: list[torch.nn.Parameter], lr: float, steps: int):
    opt = torch.optim.AdamW(params, lr=lr)
    return opt, get_cosine_schedule_with_warmup(opt, int(WARMUP_FRACTION * steps), steps)


def pretrain(backbone: PixelBackbone, cfg: SDPOExperimentConfig,
             generator: torch.Generator) -> list[float]:
    """DDPM pre-training (epsilon MSE) of text encoder and UNet; returns the losses."""
    base, device = cfg.base, backbone.device
    images, captions = make_dataset(cfg.data.images, cfg.data.image_size, cfg.data.seed)
    ids = tokenize(backbone.tokenizer, captions)
    params = [*backbone.unet.parameters(), *backbone.text_encoder.parameters()]
    opt, schedule = _optimizer(params, base.pretrain_lr, base.pretrain_steps)
    alphas = backbone.scheduler.alphas_cumprod.to(device)
    backbone.train().requires_grad_(True)
    losses = []
    for _ in progress(range(base.pretrain_steps), desc="sdpo base: pre-train"):
        pick = torch.randint(len(images), (base.pretrain_batch,), generator=generator)
        x0 = images[pick].to(device)
        t = torch.randint(1000, (len(pick),), generator=generator).to(device)
        noise = torch.randn(x0.shape, generator=generator).to(device)
        abar = alphas[t].view(-1, 1, 1, 1)
        x_t = abar.sqrt() * x0 + (1 - abar).sqrt() * noise
        cond = backbone.text_encoder(input_ids=ids[pick].to(device)).last_hidden_state
        loss = torch.nn.functional.mse_loss(backbone.unet(x_t, t, cond).sample, noise)
        losses.append(_step(loss, params, opt, schedule))
    return losses


def trailing_timesteps(scheduler: DDIMScheduler, steps: int) -> list[int]:
    grid = copy.deepcopy(scheduler)
    grid.set_timesteps(steps)
    return [int(t) for t in grid.timesteps]


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
    opt, schedule = _optimizer(params, base.distill_lr, base.distill_steps)
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
        losses.append(_step(loss, params, opt, schedule))
    return losses


@torch.no_grad()
def sample(backbone: Backbone, prompts: list[str], steps: int, generator: torch.Generator,
           eta: float = 0.0) -> torch.Tensor:
    """(B, 3, H, W) images in [0, 1] from `steps` steps of diffusers' DDIM (no CFG)."""
    scheduler = copy.deepcopy(backbone.scheduler)
    scheduler.set_timesteps(steps)
    cond = backbone.encode_prompts(prompts)
    x = torch.randn((len(prompts), *backbone.latent_shape), generator=generator).to(backbone.device)
    for t in scheduler.timesteps:
        eps = backbone.unet(x, t, cond).sample
        x = scheduler.step(eps, t, x, eta=eta, generator=generator).prev_sample
    return backbone.decode(x)


def cache_dir(cfg: SDPOExperimentConfig) -> Path:
    key = cache_key(data=asdict(cfg.data), text=asdict(cfg.text), base=asdict(cfg.base),
                    vocabulary=vocabulary(), versions=package_versions())
    return Path(cfg.data_dir) / "sdpo-base" / key


@contextmanager
def _threads(n: int):
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def build_base(cfg: SDPOExperimentConfig, device: str | torch.device = "cpu") -> tuple[PixelBackbone, dict]:
    """Pre-train and distil a backbone (no caching); returns it and the build's statistics.
    Torch's global RNG is left as it was."""
    with _threads(cfg.base.threads), torch.random.fork_rng(devices=[]):
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


def _weights(backbone: PixelBackbone) -> dict[str, torch.Tensor]:
    tensors = {f"unet.{k}": v for k, v in backbone.unet.state_dict().items()}
    tensors.update({f"text_encoder.{k}": v for k, v in backbone.text_encoder.state_dict().items()})
    return {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}


def save_base(backbone: PixelBackbone, path: Path, stats: dict) -> None:
    """Weights, vocabulary and build statistics, then a sha256 manifest, into a temporary
    directory renamed into place (a kill leaves no half-written cache)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(_weights(backbone), str(tmp / WEIGHTS))
    (tmp / VOCAB).write_text(json.dumps(token_list(), indent=0) + "\n")
    (tmp / BUILD).write_text(json.dumps(stats, indent=2) + "\n")
    files = {name: {"bytes": (tmp / name).stat().st_size, "sha256": file_sha256(tmp / name)}
             for name in (WEIGHTS, VOCAB, BUILD)}
    (tmp / "manifest.json").write_text(json.dumps({"files": files}, indent=2) + "\n")
    os.replace(tmp, path)


def load_cached(cfg: SDPOExperimentConfig, path: Path, device: str | torch.device) -> PixelBackbone:
    """The verified backbone cached at `path`; a corrupt cache is a one-line UserError."""
    hint = f"delete {path} to rebuild the sdpo base model"
    try:
        verify_checkpoint(path)
        tensors = load_file(str(path / WEIGHTS))
        words = json.loads((path / VOCAB).read_text())
    except CheckpointError as exc:
        raise UserError(f"{exc}; {hint}") from None
    except (SafetensorError, OSError, json.JSONDecodeError) as exc:
        raise UserError(f"cached base model {path} cannot be read ({type(exc).__name__}); {hint}") from None
    if words[:len(token_list([]))] != token_list([]):
        raise UserError(f"cached base model {path} has an unexpected vocabulary; {hint}")
    backbone = new_backbone(cfg, words[len(token_list([])):])
    try:
        for prefix, module in (("unet", backbone.unet), ("text_encoder", backbone.text_encoder)):
            module.load_state_dict({k[len(prefix) + 1:]: v for k, v in tensors.items()
                                    if k.startswith(prefix + ".")})
    except RuntimeError as exc:
        first = (str(exc).splitlines() or [""])[0]
        raise UserError(f"cached base model {path} does not fit the config ({first}); {hint}") from None
    return backbone.to(device).eval().requires_grad_(False)


def load_base(cfg: SDPOExperimentConfig, device: str | torch.device = "cpu") -> PixelBackbone:
    """The base model of `cfg`, built once (minutes) and loaded from the cache afterwards.
    A lock file makes concurrent callers wait for one build instead of each building."""
    path = cache_dir(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.exists():
            backbone, stats = build_base(cfg, device)
            save_base(backbone, path, stats)
    return load_cached(cfg, path, device)
