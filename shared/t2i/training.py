"""Training a text-to-image backbone from scratch: the DDPM ε-prediction objective, with a hook
for extra loss terms.

At each step `train_epsilon` draws, from one `torch.Generator` and in this order, B rows of the
training set, timesteps t ~ U{0, ..., 999} and noise ε ~ N(0, I), forms
x_t = √ᾱ_t x0 + √(1 − ᾱ_t) ε, predicts ε̂ = UNet(x_t, t, TextEncoder(caption)) and minimises

    L = mean (ε̂ − ε)²  [+ extra_loss(batch)]

with AdamW (linear warm-up over the first 5 % of steps, then cosine decay to 0) and gradients
clipped to norm 1. `extra_loss` receives an `EpsilonBatch` (the rows, clean latents, token
ids, captions, encoder states, x_t, t, ε, ε̂ and the backbone) and returns a scalar added to
the loss, for example a protection or regularisation term. It may run further forwards of
`batch.backbone`, look up its own per-sample data (masks, flags) by `batch.index`, or re-weight
samples (it sees ε̂ and ε, so it can add or subtract per-sample squared errors). Without it the
loop is plain DDPM training, draw for draw.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from diffusers.optimization import get_cosine_schedule_with_warmup

from shared.t2i.backbone import Backbone
from shared.t2i.text import tokenize
from shared.tracking import progress

WARMUP_FRACTION = 0.05  # of a stage's steps, linear learning-rate warm-up before cosine decay
GRAD_CLIP = 1.0  # gradient-norm clip of every step


@dataclass
class EpsilonBatch:
    """One training step, as an extra loss term sees it (tensors on the backbone's device)."""

    step: int  # 0-based step of the loop
    index: torch.Tensor  # (B,) rows of the training set (on CPU): look up per-sample data
    x0: torch.Tensor  # (B, C, H, W) clean latents
    ids: torch.Tensor  # (B, L) token ids of the captions
    captions: list[str]  # (B,) the captions
    cond: torch.Tensor  # (B, L, D) encoder hidden states (with gradient if the encoder trains)
    x_t: torch.Tensor  # (B, C, H, W) noisy latents √ᾱ_t x0 + √(1 − ᾱ_t) ε
    t: torch.Tensor  # (B,) timesteps
    noise: torch.Tensor  # (B, C, H, W) ε
    pred: torch.Tensor  # (B, C, H, W) ε̂, with gradient
    alphas_cumprod: torch.Tensor  # (1000,) ᾱ of the scheduler
    backbone: Backbone


ExtraLoss = Callable[[EpsilonBatch], torch.Tensor]


def make_optimizer(params: list[torch.nn.Parameter], lr: float, steps: int,
                   warmup_fraction: float = WARMUP_FRACTION):
    """AdamW and its warm-up + cosine learning-rate schedule over `steps` steps."""
    opt = torch.optim.AdamW(params, lr=lr)
    return opt, get_cosine_schedule_with_warmup(opt, int(warmup_fraction * steps), steps)


def optimizer_step(loss: torch.Tensor, params: list[torch.nn.Parameter], opt, schedule,
                   grad_clip: float = GRAD_CLIP) -> float:
    """One clipped optimiser step with its learning-rate schedule; returns the loss."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, grad_clip)
    opt.step()
    schedule.step()
    return loss.item()


def train_epsilon(backbone: Backbone, latents: torch.Tensor, captions: list[str], *, steps: int,
                  batch_size: int, lr: float, generator: torch.Generator,
                  train_text_encoder: bool = True, extra_loss: ExtraLoss | None = None,
                  desc: str = "t2i: ε-MSE") -> list[float]:
    """`steps` steps of ε-prediction training on (latents (N, C, H, W), captions) (module
    docstring). The UNet always trains; the text encoder with `train_text_encoder` (otherwise
    it is frozen, in eval mode). Returns the loss of every step."""
    if len(latents) != len(captions):
        raise ValueError(f"{len(latents)} latents but {len(captions)} captions")
    device = backbone.device
    ids = tokenize(backbone.tokenizer, captions)
    unet, text_encoder = backbone.unet, backbone.text_encoder
    params = list(unet.parameters())
    unet.train().requires_grad_(True)
    if train_text_encoder:
        params += list(text_encoder.parameters())
        text_encoder.train().requires_grad_(True)
    else:
        text_encoder.eval().requires_grad_(False)
    opt, schedule = make_optimizer(params, lr, steps)
    alphas = backbone.scheduler.alphas_cumprod.to(device)
    train_steps = backbone.scheduler.config.num_train_timesteps
    losses = []
    for step in progress(range(steps), desc=desc):
        pick = torch.randint(len(latents), (batch_size,), generator=generator)
        x0 = latents[pick].to(device)
        t = torch.randint(train_steps, (len(pick),), generator=generator).to(device)
        noise = torch.randn(x0.shape, generator=generator).to(device)
        abar = alphas[t].view(-1, 1, 1, 1)
        x_t = abar.sqrt() * x0 + (1 - abar).sqrt() * noise
        batch_ids = ids[pick].to(device)
        cond = text_encoder(input_ids=batch_ids).last_hidden_state
        pred = unet(x_t, t, cond).sample
        loss = torch.nn.functional.mse_loss(pred, noise)
        if extra_loss is not None:
            loss = loss + extra_loss(EpsilonBatch(
                step=step, index=pick, x0=x0, ids=batch_ids, captions=[captions[i] for i in pick.tolist()],
                cond=cond, x_t=x_t, t=t, noise=noise, pred=pred, alphas_cumprod=alphas, backbone=backbone,
            ))
        losses.append(optimizer_step(loss, params, opt, schedule))
    return losses


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run a block with `n` torch threads (a build on a busy machine is fastest on one)."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
