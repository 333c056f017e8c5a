"""The base model's output parametrisation, wrapped back to ε for the RL code.

Every DDIM formula here (`ddim.py`, the distillation in `base.py`) reads the UNet's output as
ε̂. An ε-predictor is a poor few-step model at this scale: at the first step of a trailing
schedule ᾱ ≈ 0.005, so x̂0 = (x_T − √(1−ᾱ) ε̂)/√ᾱ multiplies any error in ε̂ by ~15 and the
1-step sample is coloured pixel noise (issue 22). `VPredictionUNet` reads the raw UNet output
as v = √ᾱ ε − √(1−ᾱ) x0 (v-prediction) and returns

    ε̂ = √ᾱ_t v̂ + √(1−ᾱ_t) x_t,   so   x̂0 = √ᾱ_t x_t − √(1−ᾱ_t) v̂

exactly: an error in v̂ reaches x̂0 with a factor √(1−ᾱ) ≤ 1 at every t, and the DDIM step,
its log-probability and the losses are unchanged (they see an ε-predictor). The wrapper passes
LoRA (`add_adapter`, `disable_adapters`, `enable_adapters`) and gradient checkpointing to the
wrapped UNet. Pre-training under it minimises the v-MSE (`v_loss_correction`).
"""

from __future__ import annotations

from types import SimpleNamespace

import torch
from torch import nn


class VPredictionUNet(nn.Module):
    """A diffusers UNet whose output is v, called like one that outputs ε."""

    def __init__(self, unet: nn.Module, alphas_cumprod: torch.Tensor) -> None:
        super().__init__()
        self.inner = unet
        self.register_buffer("alphas_cumprod", alphas_cumprod.detach().float().clone(), persistent=False)

    @property
    def config(self):
        return self.inner.config

    @property
    def dtype(self) -> torch.dtype:
        return self.inner.dtype

    def forward(self, sample: torch.Tensor, timestep, encoder_hidden_states: torch.Tensor | None = None,
                *args, **kwargs) -> SimpleNamespace:
        v = self.inner(sample, timestep, encoder_hidden_states, *args, **kwargs).sample
        t = torch.as_tensor(timestep, device=sample.device).long().reshape(-1).expand(sample.shape[0])
        abar = self.alphas_cumprod.to(sample.device)[t].to(v.dtype).view(-1, *([1] * (v.ndim - 1)))
        return SimpleNamespace(sample=abar.sqrt() * v + (1 - abar).sqrt() * sample.to(v.dtype))

    # LoRA through peft and gradient checkpointing act on the wrapped UNet
    def add_adapter(self, *args, **kwargs):
        return self.inner.add_adapter(*args, **kwargs)

    def disable_adapters(self) -> None:
        self.inner.disable_adapters()

    def enable_adapters(self) -> None:
        self.inner.enable_adapters()

    def enable_gradient_checkpointing(self) -> None:
        self.inner.enable_gradient_checkpointing()

    @property
    def is_gradient_checkpointing(self) -> bool:
        return self.inner.is_gradient_checkpointing


def v_loss_correction(batch) -> torch.Tensor:
    """An `extra_loss` for `shared.t2i.training.train_epsilon` that turns its ε-MSE into the
    v-MSE of a `VPredictionUNet`: with ε̂ = √ᾱ v̂ + √(1−ᾱ) x_t and ε = √ᾱ v + √(1−ᾱ) x_t,
    ε̂ − ε = √ᾱ (v̂ − v), so mean (v̂ − v)² = mean (ε̂ − ε)²/ᾱ; the loop's own ε-MSE term is
    subtracted (the ε-MSE alone would weight each timestep by ᾱ, nearly ignoring the noisiest
    ones, which the 1-step sample depends on)."""
    abar = batch.alphas_cumprod[batch.t].view(-1, *([1] * (batch.pred.ndim - 1)))
    sq = (batch.pred - batch.noise) ** 2
    return (sq / abar).mean() - sq.mean()
