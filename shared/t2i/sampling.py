"""The evaluation sampler: diffusers' DDIM (`DDIMScheduler.step`) from x_T ~ N(0, I), no
classifier-free guidance. (A paper that needs each transition's log-probability keeps its own
DDIM; this one only returns the images.)"""

from __future__ import annotations

import copy

import torch

from shared.t2i.backbone import Backbone


@torch.no_grad()
def ddim_sample(backbone: Backbone, prompts: list[str], steps: int, generator: torch.Generator,
                eta: float = 0.0) -> torch.Tensor:
    """(B, 3, H, W) images in [0, 1] from `steps` DDIM steps (η = 0: deterministic given x_T).
    x_T and the η > 0 noise come from `generator`; the backbone's scheduler is left as it was."""
    scheduler = copy.deepcopy(backbone.scheduler)
    scheduler.set_timesteps(steps)
    cond = backbone.encode_prompts(prompts)
    x = torch.randn((len(prompts), *backbone.latent_shape), generator=generator).to(backbone.device)
    for t in scheduler.timesteps:
        eps = backbone.unet(x, t, cond).sample
        x = scheduler.step(eps, t, x, eta=eta, generator=generator).prev_sample
    return backbone.decode(x)
