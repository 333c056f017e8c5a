"""The text-to-image model the attack fine-tunes.

`tiny`: a `shared.t2i.backbone.PixelBackbone` (pixel-space UNet2DConditionModel + small CLIP
text encoder over `scenes.vocabulary()`), pre-trained from scratch with ε-MSE on clean
textured compositions that contain no target element kind (`shared.t2i.training`), cached
once per config under `<data_dir>/copyright_shield-base/<key>/` (locked, checksummed).
It plays SD v1.4's pre-trained weights. `stable-diffusion`: a local SD v1.4 directory
through `shared.t2i.sd` (the paper path).

Skip preconditioning of the tiny UNet [recon] (`model.skip`; off in the recorded small run): the network F
is wrapped so that the model is still an ε-predictor, trained with the ordinary ε-MSE,

    ε̂(x_t, t, c) = √ᾱ_t · F(x_t, t, c) + √(1 − ᾱ_t) · x_t

(F is then a v-prediction: v = √ᾱ ε − √(1 − ᾱ) x_0 gives ε = √ᾱ v + √(1 − ᾱ) x_t). Without
it the tiny UNet must copy its input through to its output almost exactly at high noise
(ε ≈ x_t there), and its x_0 estimate at t = 999 was worse than the data mean (x_0-MSE
1.55 against 0.19 with the skip after the same 1000 pre-training steps): its samples were
colour blobs on a grey field. With it the samples are shapes on black, but 1200 fine-tuning
steps still did not make the undefended attack infringe (README: "Why the undefended attack
does not infringe"). SD's own UNet needs no such help and is left as it is.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from papers.copyright_shield.config import CopyrightShieldConfig
from papers.copyright_shield.scenes import (
    clean_caption,
    random_scene,
    render,
    to_tensor,
    vocabulary,
)
from shared.cache import cache_key
from shared.runs import package_versions
from shared.t2i.backbone import (
    Backbone,
    PixelBackbone,
    build_scheduler,
    build_unet,
    load_pixel_backbone,
    save_pixel_backbone,
)
from shared.t2i.cache import cached
from shared.t2i.text import build_text_encoder, build_tokenizer
from shared.t2i.training import torch_threads, train_epsilon


@dataclass
class UNetOutput:
    sample: torch.Tensor


class SkipUNet(torch.nn.Module):
    """ε̂ = √ᾱ_t · F(x_t, t, c) + √(1 − ᾱ_t) · x_t around a UNet F (module docstring); its
    weights are F's (under `inner.`), ᾱ a non-persistent buffer of the scheduler's."""

    def __init__(self, inner: torch.nn.Module, alphas_cumprod: torch.Tensor) -> None:
        super().__init__()
        self.inner = inner
        self.config = inner.config
        self.register_buffer("abar", alphas_cumprod.detach().clone().float(), persistent=False)

    def forward(self, x: torch.Tensor, t, cond: torch.Tensor) -> UNetOutput:
        out = self.inner(x, t, cond).sample
        steps = torch.as_tensor(t, device=x.device).long().reshape(-1)
        abar = self.abar[steps].view(-1, *([1] * (x.dim() - 1)))
        return UNetOutput(abar.sqrt() * out + (1 - abar).sqrt() * x)


def new_backbone(cfg: CopyrightShieldConfig, words: list[str] | None = None) -> PixelBackbone:
    """An untrained tiny backbone (seed torch's global RNG first); its UNet skip-
    preconditioned with `model.skip` (module docstring)."""
    tokenizer = build_tokenizer(vocabulary() if words is None else words, cfg.text.max_length)
    m = cfg.model
    unet = build_unet(cfg.data.image_size, m.block_out_channels, m.layers_per_block,
                      m.attention_head_dim, cross_attention_dim=cfg.text.hidden,
                      cross_attention_levels=m.cross_attention_levels)
    text_encoder = build_text_encoder(tokenizer, cfg.text.hidden, cfg.text.layers, cfg.text.heads)
    backbone = PixelBackbone(unet, text_encoder, tokenizer, build_scheduler(m.beta_schedule, m.beta_start, m.beta_end))
    if m.skip:
        backbone.unet = SkipUNet(unet, backbone.scheduler.alphas_cumprod)
    return backbone


def base_data(cfg: CopyrightShieldConfig, avoid: frozenset) -> tuple[torch.Tensor, list[str]]:
    """Clean compositions of pre-training: images in [0, 1] and captions (half of them
    listings "an image with ..."; a `train.caption_dropout` share empty, for guidance)."""
    rng = np.random.default_rng(cfg.base.seed + 1)
    scenes = [random_scene(rng, 1, 3, avoid) for _ in range(cfg.base.images)]
    captions = [clean_caption(s, listing=bool(rng.random() < 0.5)) for s in scenes]
    drop = rng.random(len(captions)) < cfg.train.caption_dropout  # unconditional entries (guidance)
    captions = ["" if d else c for c, d in zip(captions, drop, strict=True)]
    return to_tensor([render(s, cfg.data.image_size)[0] for s in scenes]), captions


def base_key(cfg: CopyrightShieldConfig, avoid: frozenset) -> str:
    model = asdict(cfg.model)
    if model["cross_attention_levels"] == 1:  # the default: the key of the bases built before the option
        del model["cross_attention_levels"]
    return cache_key(data=cfg.data.image_size, text=asdict(cfg.text), model=model,
                     base=asdict(cfg.base), dropout=cfg.train.caption_dropout, avoid=sorted(avoid), vocab=vocabulary(),
                     versions=package_versions(("torch", "diffusers", "transformers")))


def load_base(cfg: CopyrightShieldConfig, avoid: frozenset, device: torch.device) -> PixelBackbone:
    """The cached clean base model (built on first use)."""
    path = Path(cfg.data_dir) / "copyright_shield-base" / base_key(cfg, avoid)

    def build(tmp: Path) -> None:
        torch.manual_seed(cfg.base.seed)
        backbone = new_backbone(cfg)
        images, captions = base_data(cfg, avoid)
        generator = torch.Generator().manual_seed(cfg.base.seed)
        with torch_threads(cfg.base.threads):
            losses = train_epsilon(backbone, images * 2 - 1, captions, steps=cfg.base.steps,
                                   batch_size=cfg.base.batch, lr=cfg.base.lr, generator=generator,
                                   desc="copyright_shield base: pre-train")
        save_pixel_backbone(backbone, tmp)
        (tmp / "losses.txt").write_text("\n".join(f"{v:.6f}" for v in losses) + "\n")

    backbone = cached(path, build, lambda p: load_pixel_backbone(p, lambda w: new_backbone(cfg, w)),
                      "base model")
    return backbone.to(device)


def load_backbone(cfg: CopyrightShieldConfig, avoid: frozenset, device: torch.device) -> Backbone:
    """A fresh copy of the model every fine-tune starts from."""
    if cfg.model.name == "stable-diffusion":
        from shared.t2i.sd import load_stable_diffusion

        return load_stable_diffusion(cfg.model.path, device, torch.float32)
    return copy.deepcopy(load_base(cfg, avoid, device))
