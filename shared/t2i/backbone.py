"""The text-to-image model contract (`Backbone`) and the tiny pixel-space model behind it.

A `Backbone` is a UNet ε-predictor over latents, a prompt encoder, a DDIM scheduler with
trailing spacing, and the maps between images in [0, 1] and latents (`encode_images`,
`decode`). Two implement it:
- `PixelBackbone` (here): the "latents" are RGB images in [-1, 1], the UNet a small
  `UNet2DConditionModel` (`build_unet`) conditioned by cross-attention on the tiny CLIP text
  encoder of `text.py`, trained from scratch;
- `StableDiffusionBackbone` (`sd.py`): a local Stable-Diffusion-style pipeline, VAE latents.

`save_pixel_backbone` / `load_pixel_backbone` store a pixel backbone's weights and vocabulary
(for the checksummed build cache of `cache.py`).
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from pathlib import Path

import torch
from diffusers import DDIMScheduler, UNet2DConditionModel
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import CLIPTextModel, PreTrainedTokenizerFast

from shared.t2i.cache import CacheMismatch
from shared.t2i.text import SPECIAL_TOKENS, tokenize, tokens_of

WEIGHTS, VOCAB = "weights.safetensors", "vocab.json"


class Backbone(nn.Module):
    """A UNet denoiser over latents, a prompt encoder and the latent <-> image maps.

    Subclasses set `unet`, `text_encoder`, `tokenizer`, `scheduler` (a DDIMScheduler with
    trailing spacing) and `latent_shape` (C, H, W), and implement `encode_prompts`, `decode`
    and `encode_images`.
    """

    unet: UNet2DConditionModel
    text_encoder: nn.Module
    tokenizer: object
    scheduler: DDIMScheduler
    latent_shape: tuple[int, int, int]

    def encode_prompts(self, prompts: list[str]) -> torch.Tensor:
        """(B, L, D) encoder hidden states for the UNet's cross-attention (no gradient)."""
        raise NotImplementedError

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) images in [0, 1] from (B, *latent_shape) latents (no gradient)."""
        raise NotImplementedError

    def encode_images(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """(B, *latent_shape) latents of (B, 3, H, W) images in [0, 1] (no gradient)."""
        raise NotImplementedError

    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device


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

    def encode_images(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return images.detach().to(self.device) * 2 - 1


def build_unet(image_size: int, block_out_channels: list[int], layers_per_block: int,
               attention_head_dim: int, cross_attention_dim: int, channels: int = 3,
               cross_attention_levels: int = 1) -> UNet2DConditionModel:
    """A UNet with cross-attention in the mid block and at the `cross_attention_levels` lowest
    resolutions (1: the lowest only; len(block_out_channels): every resolution, down to the
    full image size), `attention_head_dim` channels per head, GroupNorm groups gcd(8, widths).
    Randomly initialised from torch's global RNG: seed it first."""
    widths = list(block_out_channels)
    if not 1 <= cross_attention_levels <= len(widths):
        raise ValueError(f"cross_attention_levels={cross_attention_levels}: needs 1 to "
                         f"{len(widths)} (the number of resolutions)")
    plain = len(widths) - cross_attention_levels
    return UNet2DConditionModel(
        sample_size=image_size, in_channels=channels, out_channels=channels,
        block_out_channels=widths, layers_per_block=layers_per_block,
        down_block_types=("DownBlock2D",) * plain + ("CrossAttnDownBlock2D",) * cross_attention_levels,
        up_block_types=("CrossAttnUpBlock2D",) * cross_attention_levels + ("UpBlock2D",) * plain,
        # diffusers reads `attention_head_dim` as the number of heads (its naming quirk).
        attention_head_dim=[max(1, w // attention_head_dim) for w in widths],
        cross_attention_dim=cross_attention_dim, norm_num_groups=math.gcd(8, *widths),
    )


def build_scheduler(beta_schedule: str = "scaled_linear", beta_start: float = 0.00085,
                    beta_end: float = 0.012) -> DDIMScheduler:
    """DDIM over 1000 training steps, ε-prediction, trailing spacing, no x0 clipping, and the
    last step landing on ᾱ_0 (set_alpha_to_one false), as Stable Diffusion's config."""
    return DDIMScheduler(
        num_train_timesteps=1000, beta_schedule=beta_schedule, beta_start=beta_start,
        beta_end=beta_end, prediction_type="epsilon", timestep_spacing="trailing",
        clip_sample=False, set_alpha_to_one=False,
    )


def trailing_timesteps(scheduler: DDIMScheduler, steps: int) -> list[int]:
    """The timesteps of a `steps`-step sampler (the scheduler itself is left as it was)."""
    grid = copy.deepcopy(scheduler)
    grid.set_timesteps(steps)
    return [int(t) for t in grid.timesteps]


def pixel_weights(backbone: PixelBackbone) -> dict[str, torch.Tensor]:
    """CPU copies of the UNet's ("unet.*") and text encoder's ("text_encoder.*") weights."""
    tensors = {f"unet.{k}": v for k, v in backbone.unet.state_dict().items()}
    tensors.update({f"text_encoder.{k}": v for k, v in backbone.text_encoder.state_dict().items()})
    return {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}


def save_pixel_backbone(backbone: PixelBackbone, directory: Path) -> None:
    """`weights.safetensors` and `vocab.json` (the tokens in id order) into `directory`."""
    directory = Path(directory)
    save_file(pixel_weights(backbone), str(directory / WEIGHTS))
    (directory / VOCAB).write_text(json.dumps(tokens_of(backbone.tokenizer), indent=0) + "\n")


def load_pixel_backbone(directory: Path, make: Callable[[list[str]], PixelBackbone]) -> PixelBackbone:
    """The backbone saved in `directory`: `make(words)` builds an untrained one of the right
    architecture for the saved vocabulary (without the special tokens), and the weights are
    loaded into it. A vocabulary or weights that do not fit raise `CacheMismatch`; unreadable
    files raise what the readers raise (see `cache.open_cache`)."""
    directory = Path(directory)
    tensors = load_file(str(directory / WEIGHTS))
    words = json.loads((directory / VOCAB).read_text())
    specials = list(SPECIAL_TOKENS)
    if not isinstance(words, list) or words[:len(specials)] != specials:
        raise CacheMismatch("has an unexpected vocabulary")
    backbone = make(words[len(specials):])
    try:
        for prefix, module in (("unet", backbone.unet), ("text_encoder", backbone.text_encoder)):
            module.load_state_dict({k[len(prefix) + 1:]: v for k, v in tensors.items()
                                    if k.startswith(prefix + ".")})
    except RuntimeError as exc:
        first = (str(exc).splitlines() or [""])[0]
        raise CacheMismatch(f"does not fit the config ({first})") from None
    return backbone
