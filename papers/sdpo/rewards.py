"""Rewards on decoded images: `Reward(images (B, 3, H, W) in [0, 1], prompts) -> (B,)`.

Offline rewards (no weights needed):
- "jpeg-compressibility" / "jpeg-incompressibility" (DDPO's convention): the size in kB
  (bytes / 1000) of the image as a quality-95 JPEG, negated for compressibility.
- "match": a small frozen CNN classifies the object's colour and shape; the reward is
  p(prompt's colour) + p(prompt's shape), in [0, 2] (an attribute the prompt does not name
  counts 1).
- "aesthetic": the stand-in for the LAION aesthetic predictor, a small frozen CNN regressor
  of the hand-written target `aesthetic_score` (0-10, below).

Both scorers are trained once on procedural renders of `shared.t2i.scenes` scenes, varied the way a
generator's samples vary (continuous scale and shift of the object, jittered object and
background colours, Gaussian blur, Gaussian noise), and cached under `<data_dir>/sdpo-rewards/<kind>-<key>/` as a checksummed checkpoint.

The aesthetic target of an object of RGB colour f with half-extent r, centred at distance d
(fractions of the side) from the image centre, on a background of colour b, after blur of
std s_b pixels and additive noise of std s_n, is

    10 * (0.45 * |f - b| / sqrt(3) + 0.30 * clip((r - 0.12) / 0.20, 0, 1)
          + 0.25 * clip(1 - d / 0.20, 0, 1)) - 20 * s_n - 2 * s_b,   clipped to [0, 10]:

contrast, a large object, and a centred one are "beautiful"; noise and blur are not. Clean
renders of those scenes score 1.6-9.6 (mean 4.7); the best scene of an RL prompt 7.7-9.6,
so a policy can raise the score by choosing size, position and background and by sharpening.
The scorer's output is not clipped (blank or pure-noise images score about 0).

The real reward models (local weights only) live in `reward_models.py`.
"""

from __future__ import annotations

import functools
import io
import math
import os
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from papers.sdpo.config import RewardConfig, SDPOExperimentConfig
from shared import UserError
from shared.cache import cache_key
from shared.checkpoint import CheckpointError, list_checkpoints, load_checkpoint, save_checkpoint
from shared.runs import package_versions
from shared.t2i import scenes as shapes
from shared.tracking import progress

JPEG_QUALITY = 95
SCORER_VERSION = 1  # part of the cache key: bump when the scorer network or the renders change

# The aesthetic target (module docstring); changing any constant changes the cache key.
CONTRAST_WEIGHT, SIZE_WEIGHT, CENTRE_WEIGHT = 0.45, 0.30, 0.25
SIZE_RANGE = (0.12, 0.32)  # half-extent scoring 0 .. 1
CENTRE_RADIUS = 0.20  # distance from the centre scoring 0 (the scenes' off-centre positions)
NOISE_PENALTY, BLUR_PENALTY = 20.0, 2.0  # points per unit of noise std / blur std (pixels)
# How training renders vary: each factor is applied to half of the renders, uniformly in range.
SCALE_RANGE = (0.75, 1.25)  # object scale about its centre
MAX_SHIFT = 0.08  # object shift per axis (fraction of the side)
MAX_NOISE = 0.15  # std of additive Gaussian noise
MAX_BLUR = 1.5  # std of Gaussian blur (pixels)
COLOUR_JITTER = 0.08  # object RGB moves up to this per channel (it stays nearest its name)
BACKGROUND_JITTER = 0.2  # background RGB moves up to this per channel
TARGET_SPEC = dict(
    weights=(CONTRAST_WEIGHT, SIZE_WEIGHT, CENTRE_WEIGHT), size_range=SIZE_RANGE,
    centre_radius=CENTRE_RADIUS, penalties=(NOISE_PENALTY, BLUR_PENALTY), scale=SCALE_RANGE,
    shift=MAX_SHIFT, noise=MAX_NOISE, blur=MAX_BLUR, jitter=(COLOUR_JITTER, BACKGROUND_JITTER),
)
COLOURS, SHAPES = list(shapes.COLOURS), list(shapes.SHAPES)
SIZES, POSITIONS, BACKGROUNDS = list(shapes.SIZES), list(shapes.POSITIONS), list(shapes.BACKGROUNDS)


class Reward:
    """Scores images for prompts in chunks of `batch`, without gradients, on the images' device."""

    name = ""

    def __init__(self, batch: int) -> None:
        self.batch = max(1, batch)

    def score(self, images: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be (B, 3, H, W), got {tuple(images.shape)}")
        if len(prompts) != len(images):
            raise ValueError(f"{len(images)} images but {len(prompts)} prompts")
        chunks = [
            self.score(images[i:i + self.batch].detach().float(), list(prompts[i:i + self.batch]))
            for i in range(0, len(images), self.batch)
        ]
        if not chunks:
            return torch.zeros(0, device=images.device)
        return torch.cat([c.float().to(images.device) for c in chunks])


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(B, H, W, 3) uint8 of (B, 3, H, W) images in [0, 1]."""
    return (images * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def jpeg_kilobytes(image: np.ndarray) -> float:
    """Size in kB (1000 bytes) of one (H, W, 3) uint8 image as a quality-95 JPEG."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.tell() / 1000


class JpegReward(Reward):
    def __init__(self, name: str, batch: int) -> None:
        super().__init__(batch)
        self.name = name
        self.sign = -1.0 if name == "jpeg-compressibility" else 1.0

    def score(self, images: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        sizes = [jpeg_kilobytes(image) for image in to_uint8(images)]
        return self.sign * torch.tensor(sizes, dtype=torch.float32)


# ---- the aesthetic target and the procedural training renders ----

def aesthetic_score(contrast: torch.Tensor, radius: torch.Tensor, offset: torch.Tensor,
                    noise: torch.Tensor, blur: torch.Tensor) -> torch.Tensor:
    """The target of the module docstring from its factors (broadcasting tensors)."""
    lo, hi = SIZE_RANGE
    size_term = ((radius - lo) / (hi - lo)).clamp(0, 1)
    centre_term = (1 - offset / CENTRE_RADIUS).clamp(0, 1)
    clean = 10 * (CONTRAST_WEIGHT * contrast + SIZE_WEIGHT * size_term + CENTRE_WEIGHT * centre_term)
    return (clean - NOISE_PENALTY * noise - BLUR_PENALTY * blur).clamp(0, 10)


def colour_contrast(colour, background) -> float:
    """RGB distance of object and background colours (RGB triples) over its maximum sqrt(3)."""
    return float(np.linalg.norm(np.subtract(colour, background)) / math.sqrt(3))


def aesthetic_target(scene: shapes.Scene, scale: float = 1.0, shift: tuple[float, float] = (0.0, 0.0),
                     noise: float = 0.0, blur: float = 0.0, rgb: tuple | None = None) -> float:
    """The target of a scene whose object is scaled by `scale` and moved by `shift`
    (fractions of the side), blurred (std in pixels) and noised (std); `rgb` = (object,
    background) RGB when they differ from the scene's named colours."""
    cx, cy = shapes.POSITIONS[scene.position]
    offset = math.hypot(cx + shift[0] - 0.5, cy + shift[1] - 0.5)
    fg, bg = rgb or (shapes.COLOURS[scene.colour], shapes.BACKGROUNDS[scene.background])
    factors = [colour_contrast(fg, bg), shapes.SIZES[scene.size] * scale,
               offset, noise, blur]
    return float(aesthetic_score(*(torch.tensor(f, dtype=torch.float64) for f in factors)))


@functools.lru_cache(maxsize=4)
def _coverages(size: int) -> torch.Tensor:
    """(shapes, sizes, positions, size, size) object coverage of `shapes.render`'s scenes."""
    return torch.from_numpy(np.stack([
        shapes.coverage(shapes.Scene(shape, COLOURS[0], s, pos, BACKGROUNDS[0]), size)
        for shape in SHAPES for s in SIZES for pos in POSITIONS
    ])).reshape(len(SHAPES), len(SIZES), len(POSITIONS), size, size)


def _object_colours(background: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """A colour index per background, uniform over the colours not named like it (as
    `shapes.sample_scene`)."""
    allowed = [[i for i, c in enumerate(COLOURS) if c != b] for b in BACKGROUNDS]
    counts = torch.tensor([len(a) for a in allowed])[background]
    table = torch.tensor([a + [a[0]] * (len(COLOURS) - len(a)) for a in allowed])
    pick = (torch.rand(len(background), generator=gen) * counts).long().clamp_max(counts - 1)
    return table[background, pick]


def _gaussian_blur(images: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian blur with a per-image std (pixels; 0 = unchanged), its weights
    renormalised at the edges, as two batched matrix products."""
    h, w = images.shape[-2:]
    def blur_matrix(n: int) -> torch.Tensor:
        i = torch.arange(n, dtype=images.dtype)
        weights = torch.exp(-(i[:, None] - i[None, :]) ** 2 / (2 * std.clamp_min(1e-3)[:, None, None] ** 2))
        return (weights / weights.sum(-1, keepdim=True))[:, None]  # (b, 1, n, n)
    return blur_matrix(h) @ images @ blur_matrix(w).transpose(-1, -2)


def _half(n: int, low: float, high: float, gen: torch.Generator, neutral: float) -> torch.Tensor:
    """Uniform in [low, high] for a random half of n samples, `neutral` for the rest."""
    values = low + (high - low) * torch.rand(n, generator=gen)
    return torch.where(torch.rand(n, generator=gen) < 0.5, values, torch.full((n,), neutral))


def _rgb_jitter(n: int, amount: float, gen: torch.Generator) -> torch.Tensor:
    """(n, 3) uniform offsets in [-amount, amount] for a random half of n colours, 0 for the rest."""
    offsets = (torch.rand(n, 3, generator=gen) * 2 - 1) * amount
    return offsets * (torch.rand(n, 1, generator=gen) < 0.5)


def synth_batch(n: int, size: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """n varied renders: images (n, 3, size, size) in [0, 1], their aesthetic targets, and
    the factors that made them (indices into COLOURS, SHAPES, ...; scale, shift, noise, blur,
    and the object and background RGB `fg`, `bg`)."""
    shape = torch.randint(len(SHAPES), (n,), generator=gen)
    size_i = torch.randint(len(SIZES), (n,), generator=gen)
    pos = torch.randint(len(POSITIONS), (n,), generator=gen)
    background = torch.randint(len(BACKGROUNDS), (n,), generator=gen)
    colour = _object_colours(background, gen)
    scale = _half(n, *SCALE_RANGE, gen, 1.0)
    jitter = torch.rand(n, generator=gen) < 0.5
    shift = (torch.rand(n, 2, generator=gen) * 2 - 1) * MAX_SHIFT * jitter[:, None]
    noise, blur = _half(n, 0.0, MAX_NOISE, gen, 0.0), _half(n, 0.0, MAX_BLUR, gen, 0.0)

    centre = torch.tensor([shapes.POSITIONS[p] for p in POSITIONS], dtype=torch.float32)[pos]
    # affine_grid maps output to input coordinates (in [-1, 1]): the object centred at c in the
    # render appears at c + shift, scaled by `scale`.
    c, moved = 2 * centre - 1, 2 * (centre + shift) - 1
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1 / scale
    theta[:, :, 2] = c - moved / scale[:, None]
    coverage = _coverages(size)[shape, size_i, pos][:, None]
    grid = F.affine_grid(theta, list(coverage.shape), align_corners=False)
    alpha = F.grid_sample(coverage, grid, align_corners=False)  # unwarped: exactly shapes.render

    fg = torch.tensor([shapes.COLOURS[k] for k in COLOURS], dtype=torch.float32)[colour]
    bg = torch.tensor([shapes.BACKGROUNDS[k] for k in BACKGROUNDS], dtype=torch.float32)[background]
    fg = (fg + _rgb_jitter(n, COLOUR_JITTER, gen)).clamp(0, 1)
    bg = (bg + _rgb_jitter(n, BACKGROUND_JITTER, gen)).clamp(0, 1)
    images = bg[:, :, None, None] + alpha * (fg - bg)[:, :, None, None]
    images = _gaussian_blur(images, blur)
    images = (images + noise[:, None, None, None] * torch.randn(images.shape, generator=gen)).clamp(0, 1)

    radius = torch.tensor([shapes.SIZES[s] for s in SIZES])[size_i] * scale
    contrast = (fg - bg).norm(dim=1) / math.sqrt(3)
    target = aesthetic_score(contrast, radius, (centre + shift - 0.5).norm(dim=1), noise, blur)
    return {"images": images, "target": target, "colour": colour, "shape": shape, "size": size_i,
            "position": pos, "background": background, "scale": scale, "shift": shift,
            "noise": noise, "blur": blur, "fg": fg, "bg": bg}


def render_pool(n: int, size: int, gen: torch.Generator, chunk: int = 4096) -> dict[str, torch.Tensor]:
    """`synth_batch` of n renders, made in chunks (rendering per step would cost as much as
    the training itself)."""
    parts = [synth_batch(min(chunk, n - i), size, gen) for i in range(0, n, chunk)]
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


# ---- the small frozen scorers ----

class ScorerNet(nn.Module):
    """A small CNN over images (with x/y coordinate channels, so it sees where the object
    is), resized to the size it was trained at; `outputs` logits or scores."""

    def __init__(self, size: int, outputs: int, width: int = 24) -> None:
        super().__init__()
        self.size = size
        stem_stride = max(1, size // 16)  # 32-pixel images cost about what 16-pixel ones do
        self.features = nn.Sequential(
            nn.Conv2d(5, width, 3, stride=stem_stride, padding=1), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(2 * width, 2 * width, 3, stride=2, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(4), nn.Flatten(),
            nn.Linear(32 * width, 64), nn.ReLU(), nn.Linear(64, outputs),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[-2:] != (self.size, self.size):
            images = F.interpolate(images, size=(self.size, self.size), mode="bilinear",
                                   antialias=True, align_corners=False)
        b, _, h, w = images.shape
        ys = torch.linspace(-1, 1, h, device=images.device)[:, None].expand(h, w)
        xs = torch.linspace(-1, 1, w, device=images.device)[None, :].expand(h, w)
        coords = torch.stack([xs, ys]).expand(b, 2, h, w)
        return self.features(torch.cat([(images - 0.5) / 0.25, coords], 1))


# The aesthetic net predicts (target - 5) / 2.5, kept near unit scale for training.
TARGET_CENTRE, TARGET_SPREAD = 5.0, 2.5
OUTPUTS = {"aesthetic": 1, "match": len(COLOURS) + len(SHAPES)}


def scorer_loss(kind: str, out: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    if kind == "aesthetic":
        return F.mse_loss(out[:, 0], (batch["target"] - TARGET_CENTRE) / TARGET_SPREAD)
    return (F.cross_entropy(out[:, :len(COLOURS)], batch["colour"])
            + F.cross_entropy(out[:, len(COLOURS):], batch["shape"]))


def clean_renders(size: int) -> tuple[list[shapes.Scene], torch.Tensor]:
    """Every scene `shapes.sample_scene` can draw, rendered by `shapes.render`."""
    scenes = [shapes.Scene(sh, c, s, p, b) for sh in SHAPES for c in COLOURS for s in SIZES
              for p in POSITIONS for b in BACKGROUNDS if c != b]
    images = torch.from_numpy(np.stack([shapes.render(s, size) for s in scenes])).permute(0, 3, 1, 2)
    return scenes, images.contiguous()


@torch.no_grad()
def evaluate_scorer(kind: str, net: ScorerNet, size: int, seed: int) -> dict[str, float]:
    """Held-out quality: on fresh varied renders (seed) and on every clean scene."""
    from scipy.stats import pearsonr, spearmanr

    held = synth_batch(2048, size, torch.Generator().manual_seed(seed))
    scenes, clean = clean_renders(size)
    out, out_clean = net(held["images"]), net(clean)
    if kind == "aesthetic":
        pred = (out[:, 0] * TARGET_SPREAD + TARGET_CENTRE).numpy()
        pred_clean = (out_clean[:, 0] * TARGET_SPREAD + TARGET_CENTRE).numpy()
        target_clean = np.array([aesthetic_target(s) for s in scenes])
        return {
            "spearman": float(spearmanr(pred, held["target"].numpy())[0]),
            "pearson": float(pearsonr(pred, held["target"].numpy())[0]),
            "mae": float(np.abs(pred - held["target"].numpy()).mean()),
            "spearman_clean": float(spearmanr(pred_clean, target_clean)[0]),
            "clean_min": float(pred_clean.min()), "clean_mean": float(pred_clean.mean()),
            "clean_max": float(pred_clean.max()), "target_clean_mean": float(target_clean.mean()),
        }
    colour = torch.tensor([COLOURS.index(s.colour) for s in scenes])
    shape = torch.tensor([SHAPES.index(s.shape) for s in scenes])
    k = len(COLOURS)
    return {
        "colour_accuracy": float((out[:, :k].argmax(1) == held["colour"]).float().mean()),
        "shape_accuracy": float((out[:, k:].argmax(1) == held["shape"]).float().mean()),
        "clean_colour_accuracy": float((out_clean[:, :k].argmax(1) == colour).float().mean()),
        "clean_shape_accuracy": float((out_clean[:, k:].argmax(1) == shape).float().mean()),
    }


def train_scorer(kind: str, size: int, rc: RewardConfig) -> tuple[ScorerNet, dict[str, float]]:
    """Train the `kind` scorer on varied renders; deterministic in `rc.scorer_seed`."""
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, rc.scorer_threads))
    start = time.perf_counter()
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(rc.scorer_seed)
            net = ScorerNet(size, OUTPUTS[kind])
        gen = torch.Generator().manual_seed(rc.scorer_seed)
        pool = render_pool(rc.scorer_pool, size, gen)
        opt = torch.optim.AdamW(net.parameters(), lr=rc.scorer_lr, weight_decay=1e-4)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, rc.scorer_steps))
        for _ in progress(range(rc.scorer_steps), desc=f"reward scorer ({kind})", leave=False):
            pick = torch.randint(rc.scorer_pool, (rc.scorer_batch,), generator=gen)
            batch = {k: v[pick] for k, v in pool.items()}
            loss = scorer_loss(kind, net(batch["images"]), batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        net.eval().requires_grad_(False)
        metrics = {"train_seconds": time.perf_counter() - start, "final_loss": float(loss.detach())}
        metrics.update(evaluate_scorer(kind, net, size, rc.scorer_seed + 1))
    finally:
        torch.set_num_threads(threads)
    return net, metrics


def scorer_dir(cfg: SDPOExperimentConfig, kind: str) -> Path:
    rc = cfg.reward
    key = cache_key(
        kind=kind, version=SCORER_VERSION, image_size=cfg.data.image_size, target=TARGET_SPEC,
        scorer={k: v for k, v in asdict(rc).items() if k.startswith("scorer_") and k != "scorer_threads"},
        scenes=[shapes.COLOURS, shapes.SHAPES, shapes.SIZES, shapes.POSITIONS, shapes.BACKGROUNDS,
                shapes.SUPERSAMPLE],
        versions=package_versions(("torch", "numpy"), with_python=False),
    )
    return Path(cfg.data_dir) / "sdpo-rewards" / f"{kind}-{key}"


def load_or_train_scorer(cfg: SDPOExperimentConfig, kind: str) -> tuple[ScorerNet, dict[str, float]]:
    """The cached scorer, or a freshly trained one stored atomically (temp dir + rename)."""
    root = scorer_dir(cfg, kind)
    if not root.exists():
        net, metrics = train_scorer(kind, cfg.data.image_size, cfg.reward)
        tmp = root.with_name(f".tmp-{root.name}-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        save_checkpoint(tmp, cfg.reward.scorer_steps, net.state_dict(), {"metrics": metrics})
        try:
            os.replace(tmp, root)
        except OSError:  # another process stored the same scorer first: use theirs
            shutil.rmtree(tmp, ignore_errors=True)
    found = list_checkpoints(root)
    if len(found) != 1:
        raise UserError(f"reward scorer cache {root} is incomplete: delete it to retrain")
    try:
        tensors, state = load_checkpoint(found[0])
    except CheckpointError as exc:
        raise UserError(f"reward scorer cache: {exc}; delete {root} to retrain") from None
    net = ScorerNet(cfg.data.image_size, OUTPUTS[kind])
    try:
        net.load_state_dict(tensors)
    except RuntimeError:
        raise UserError(f"reward scorer cache {root} does not fit the scorer: delete it to retrain") from None
    return net.eval().requires_grad_(False), dict(state["metrics"])


class AestheticReward(Reward):
    """The small frozen aesthetic scorer (0-10-like scale)."""

    name = "aesthetic"

    def __init__(self, net: ScorerNet, metrics: dict[str, float], batch: int) -> None:
        super().__init__(batch)
        self.net, self.metrics = net, metrics

    def score(self, images: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        device = next(self.net.parameters()).device
        return self.net(images.to(device))[:, 0] * TARGET_SPREAD + TARGET_CENTRE


class MatchReward(Reward):
    """p(prompt's colour) + p(prompt's shape) under the frozen attribute classifier."""

    name = "match"

    def __init__(self, net: ScorerNet, metrics: dict[str, float], batch: int) -> None:
        super().__init__(batch)
        self.net, self.metrics = net, metrics

    def score(self, images: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        device = next(self.net.parameters()).device
        logits = self.net(images.to(device))
        return match_score(logits[:, :len(COLOURS)].softmax(1), logits[:, len(COLOURS):].softmax(1),
                           prompts)


def match_score(p_colour: torch.Tensor, p_shape: torch.Tensor, prompts: list[str]) -> torch.Tensor:
    """p(colour named) + p(shape named) per image; an attribute not named counts 1."""
    wanted = [shapes.parse_prompt(p) for p in prompts]
    total = torch.zeros(len(prompts), device=p_colour.device)
    for probs, key, names in ((p_colour, "colour", COLOURS), (p_shape, "shape", SHAPES)):
        index = torch.tensor([names.index(w[key]) if w[key] else 0 for w in wanted], device=probs.device)
        named = torch.tensor([w[key] is not None for w in wanted], device=probs.device)
        total += torch.where(named, probs.gather(1, index[:, None])[:, 0], torch.ones_like(total))
    return total


def build_reward(cfg: SDPOExperimentConfig, device: str | torch.device) -> Reward:
    """The reward `cfg.reward.name` on `device` (scorers are trained on CPU, then moved)."""
    name, batch = cfg.reward.name, cfg.reward.batch
    if name in ("jpeg-compressibility", "jpeg-incompressibility"):
        return JpegReward(name, batch)
    if name in ("aesthetic", "match"):
        net, metrics = load_or_train_scorer(cfg, name)
        cls = AestheticReward if name == "aesthetic" else MatchReward
        return cls(net.to(device), metrics, batch)
    from papers.sdpo import reward_models

    return reward_models.build_pretrained(name, cfg.reward, device)
