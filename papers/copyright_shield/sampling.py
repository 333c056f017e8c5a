"""Trigger generation: DDIM (η = 0, trailing spacing, diffusers' `DDIMScheduler.step`) with
classifier-free guidance, as SilentBadDiffusion samples SD (guidance 7.5 there):

    ε = ε̂(x_t, ∅) + w · (ε̂(x_t, c) − ε̂(x_t, ∅)),   ∅ = the empty caption.

`shared.t2i.sampling.ddim_sample` is this with w = 1 (no unconditional pass); the models are
fine-tuned with `train.caption_dropout` empty captions so that ε̂(·, ∅) is learnt.
"""

from __future__ import annotations

import copy

import torch

from shared.t2i.backbone import Backbone
from shared.t2i.sampling import ddim_sample


@torch.no_grad()
def guided_sample(backbone: Backbone, prompts: list[str], steps: int, generator: torch.Generator,
                  guidance: float) -> torch.Tensor:
    """(B, 3, H, W) images in [0, 1]; x_T from `generator`."""
    if guidance == 1.0:
        return ddim_sample(backbone, prompts, steps, generator)
    scheduler = copy.deepcopy(backbone.scheduler)
    scheduler.set_timesteps(steps)
    cond = backbone.encode_prompts(list(prompts) + [""] * len(prompts))
    x = torch.randn((len(prompts), *backbone.latent_shape), generator=generator).to(backbone.device)
    for t in scheduler.timesteps:
        eps_c, eps_u = backbone.unet(torch.cat([x, x]), t, cond).sample.chunk(2)
        eps = eps_u + guidance * (eps_c - eps_u)
        x = scheduler.step(eps, t, x, eta=0.0).prev_sample
    return backbone.decode(x)
