"""What the RL code needs from a text-to-image diffusion model (`Backbone`), and how the
policy's trainable weights are chosen (LoRA through peft's `unet.add_adapter`, or all UNet
weights).

Two backbones implement the contract: the tiny pixel-space model of `base.py` (SD-Turbo's
role at small scale) and a local Stable-Diffusion-style pipeline in `sd.py` (paper scale).
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator

import torch
from diffusers import DDIMScheduler, UNet2DConditionModel
from torch import nn

from papers.sdpo.config import PolicyConfig


class Backbone(nn.Module):
    """A UNet denoiser over latents, a frozen prompt encoder and a frozen latent decoder.

    Subclasses set `unet`, `scheduler` (a DDIMScheduler with trailing spacing) and
    `latent_shape` (C, H, W), and implement `encode_prompts` and `decode`.
    """

    unet: UNet2DConditionModel
    scheduler: DDIMScheduler
    latent_shape: tuple[int, int, int]

    def encode_prompts(self, prompts: list[str]) -> torch.Tensor:
        """(B, L, D) encoder hidden states for the UNet's cross-attention (no gradient)."""
        raise NotImplementedError

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) images in [0, 1] from (B, *latent_shape) latents (no gradient)."""
        raise NotImplementedError

    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device


class Policy:
    """The backbone's UNet with its trainable weights chosen, plus the frozen reference
    (D3PO): LoRA adapters switched off, or a frozen copy under full fine-tuning."""

    def __init__(self, backbone: Backbone, cfg: PolicyConfig) -> None:
        self.backbone = backbone
        self.unet = backbone.unet
        self.lora = cfg.lora_rank > 0
        backbone.requires_grad_(False)
        if self.lora:
            from peft import LoraConfig

            self.unet.add_adapter(LoraConfig(
                r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, init_lora_weights="gaussian",
                target_modules=list(cfg.lora_targets),
            ))
            self._reference = None
        else:
            self._reference = copy.deepcopy(self.unet).requires_grad_(False).eval()
            self.unet.requires_grad_(True)

    def parameters(self) -> list[nn.Parameter]:
        return [p for p in self.unet.parameters() if p.requires_grad]

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """The weights a checkpoint must hold (LoRA factors only, or the whole UNet)."""
        return {n: p.detach() for n, p in self.unet.named_parameters() if p.requires_grad}

    def load_trainable_state(self, tensors: dict[str, torch.Tensor]) -> None:
        params = dict(self.unet.named_parameters())
        missing = [n for n, p in params.items() if p.requires_grad and n not in tensors]
        if missing:
            raise KeyError(f"checkpoint lacks {missing[:3]}")
        with torch.no_grad():
            for name, value in tensors.items():
                params[name].copy_(value)

    def eps(self, latents: torch.Tensor, timesteps: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """The policy's noise prediction."""
        return self.unet(latents, timesteps, encoder_hidden_states=cond).sample

    @contextlib.contextmanager
    def reference(self) -> Iterator[nn.Module]:
        """The frozen initial denoiser (as a callable with the UNet's signature)."""
        if self.lora:
            self.unet.disable_adapters()
            try:
                yield self.unet
            finally:
                self.unet.enable_adapters()
        else:
            yield self._reference
