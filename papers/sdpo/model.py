"""The RL policy: how its trainable weights are chosen (LoRA through peft's
`unet.add_adapter`, or all UNet weights) and its frozen reference (D3PO).

The policy wraps a `shared.t2i.backbone.Backbone` (UNet, prompt encoder, DDIM scheduler,
decoder): the tiny pixel-space model of `base.py` (SD-Turbo's role at small scale) or a local
Stable-Diffusion-style pipeline (`shared.t2i.sd`, paper scale).
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator

import torch
from torch import nn

from papers.sdpo.config import PolicyConfig
from shared.t2i.backbone import Backbone


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
