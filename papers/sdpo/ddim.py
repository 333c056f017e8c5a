"""DDIM with the log-probability of each transition (η > 0), and trajectory sampling that
records x_t, the predicted clean sample x̂0 and log π at every step (brief, "DDIM log-prob").

For a transition x_t → x_prev with noise prediction ε̂:
    x̂0 = (x_t − √(1−ᾱ_t) ε̂) / √ᾱ_t
    σ_t = η √((1−ᾱ_prev)/(1−ᾱ_t)) √(1 − ᾱ_t/ᾱ_prev)
    μ   = √ᾱ_prev x̂0 + √(1 − ᾱ_prev − σ_t²) ε̂
    log π(x_prev | x_t) = mean over non-batch dims of log N(x_prev; μ, σ_t²)
(the mean, not the sum: the DDPO convention the paper keeps). t_prev is the next entry of
the real trailing schedule; the released code's t − 1000 // N is behind `t_prev="released"`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from diffusers import DDIMScheduler

LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
MIN_STD = 1e-12  # keeps log π finite if a step has σ = 0 (η = 0, or ᾱ_prev = 1)

EpsFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def checked_scheduler(scheduler: DDIMScheduler) -> tuple[DDIMScheduler, bool]:
    """(the scheduler with `set_alpha_to_one=False`, whether it had to be corrected).

    With `set_alpha_to_one=True` the last DDIM step lands on ᾱ = 1: its σ is 0 for every η, the
    Gaussian log-density of that transition is −∞ in exact arithmetic, and `MIN_STD` turns it
    into a finite but meaningless number (about −6e14 per dimension for a latent-sized
    residual), which every ratio and loss downstream would carry. Stable Diffusion's and
    SD-Turbo's configs set it False (the last step lands on ᾱ_0); a config that sets it True is
    rebuilt with False (same betas, spacing and everything else)."""
    if not scheduler.config.get("set_alpha_to_one", False):
        return scheduler, False
    return DDIMScheduler.from_config(scheduler.config, set_alpha_to_one=False), True


def timesteps_for(scheduler: DDIMScheduler, steps: int, t_prev: str = "schedule") -> tuple[torch.Tensor, torch.Tensor]:
    """(timesteps, previous timesteps) of an N-step sampler; −1 marks the final step."""
    scheduler.set_timesteps(steps)
    timesteps = scheduler.timesteps.clone().long()
    if t_prev == "released":
        prev = timesteps - scheduler.config.num_train_timesteps // steps
    else:
        prev = torch.cat([timesteps[1:], timesteps.new_tensor([-1])])
    return timesteps, prev


def alpha_bar(scheduler: DDIMScheduler, t: torch.Tensor) -> torch.Tensor:
    """ᾱ_t per entry of `t`; t < 0 gives the scheduler's final ᾱ (1 or ᾱ_0)."""
    table = scheduler.alphas_cumprod.to(t.device)
    final = torch.as_tensor(scheduler.final_alpha_cumprod, dtype=table.dtype, device=t.device)
    return torch.where(t >= 0, table[t.clamp(min=0)], final)


def _expand(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.to(like.dtype).reshape(-1, *([1] * (like.ndim - 1)))


def ddim_step(
    scheduler: DDIMScheduler, eps: torch.Tensor, t: torch.Tensor, t_prev: torch.Tensor,
    x_t: torch.Tensor, eta: float, *, noise: torch.Tensor | None = None,
    prev_sample: torch.Tensor | None = None, generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One DDIM transition: (x_prev, x̂0, log π(x_prev | x_t)).

    With `prev_sample` given (training) its log-probability is returned; otherwise
    x_prev = μ + σ·noise, with `noise` drawn from `generator` when not given.
    `t` and `t_prev` are scalars or (B,) tensors.
    """
    t = torch.as_tensor(t, device=x_t.device).expand(x_t.shape[0])
    t_prev = torch.as_tensor(t_prev, device=x_t.device).expand(x_t.shape[0])
    ab_t = _expand(alpha_bar(scheduler, t), x_t)
    ab_prev = _expand(alpha_bar(scheduler, t_prev), x_t)
    x0 = (x_t - (1 - ab_t).sqrt() * eps) / ab_t.sqrt()
    variance = (1 - ab_prev) / (1 - ab_t) * (1 - ab_t / ab_prev)
    std = eta * variance.clamp(min=0).sqrt()
    mean = ab_prev.sqrt() * x0 + (1 - ab_prev - std**2).clamp(min=0).sqrt() * eps
    if prev_sample is None:
        if noise is None:
            noise = torch.randn(x_t.shape, generator=generator, device=x_t.device, dtype=x_t.dtype)
        prev_sample = mean + std * noise
    safe_std = std.clamp(min=MIN_STD)
    log_density = (-((prev_sample.detach() - mean) ** 2) / (2 * safe_std**2)
                   - safe_std.log() - LOG_SQRT_2PI)
    return prev_sample, x0, log_density.mean(dim=tuple(range(1, x_t.ndim)))


@dataclass
class Trajectories:
    """B sampled chains of T steps. Index i = 0 is the first (noisiest) step."""

    latents: torch.Tensor  # (B, T+1, C, H, W): x_T, ..., x_0
    x0_preds: torch.Tensor  # (B, T, C, H, W): x̂0 predicted at each step
    log_probs: torch.Tensor  # (B, T): log π_old of each recorded transition
    timesteps: torch.Tensor  # (T,)
    prev_timesteps: torch.Tensor  # (T,)

    @property
    def final(self) -> torch.Tensor:
        """The sample: x̂0 of the last step (the authors' training rewards use it too)."""
        return self.x0_preds[:, -1]


@torch.no_grad()
def sample_trajectories(
    eps_fn: EpsFn, scheduler: DDIMScheduler, cond: torch.Tensor, x_T: torch.Tensor,
    steps: int, eta: float, generator: torch.Generator | None = None,
    t_prev: str = "schedule", record: bool = True,
) -> Trajectories:
    """Run the DDIM chain from x_T with `eps_fn(x_t, t, cond)`; record every step."""
    timesteps, prev = timesteps_for(scheduler, steps, t_prev)
    x = x_T
    latents, x0s, log_probs = [x], [], []
    for t, tp in zip(timesteps.tolist(), prev.tolist(), strict=True):
        t_batch = torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)
        eps = eps_fn(x, t_batch, cond)
        x, x0, log_prob = ddim_step(scheduler, eps, t, tp, x, eta, generator=generator)
        if record:
            latents.append(x)
            log_probs.append(log_prob)
        x0s.append(x0)
    if not record:
        return Trajectories(x_T[:, None], x0s[-1][:, None], x.new_zeros(x.shape[0], 0), timesteps, prev)
    return Trajectories(torch.stack(latents, 1), torch.stack(x0s, 1), torch.stack(log_probs, 1),
                        timesteps, prev)


def sample_in_chunks(
    eps_fn: EpsFn, scheduler: DDIMScheduler, cond: torch.Tensor, x_T: torch.Tensor,
    steps: int, eta: float, generator: torch.Generator | None = None,
    t_prev: str = "schedule", record: bool = True, chunk: int = 0,
) -> Trajectories:
    """`sample_trajectories` on `chunk` rows at a time (0 = all at once), concatenated: at
    paper scale an epoch's 64 trajectories through the UNet at once need far more memory than
    a few at a time. Chunk k draws its step noise after chunk k−1 has finished, so a chunked
    run draws the same noise in another order than an unchunked one (both are seeded)."""
    if chunk <= 0 or chunk >= x_T.shape[0]:
        return sample_trajectories(eps_fn, scheduler, cond, x_T, steps, eta, generator, t_prev, record)
    parts = [sample_trajectories(eps_fn, scheduler, cond[i:i + chunk], x_T[i:i + chunk], steps, eta,
                                 generator, t_prev, record) for i in range(0, x_T.shape[0], chunk)]
    return Trajectories(torch.cat([p.latents for p in parts]), torch.cat([p.x0_preds for p in parts]),
                        torch.cat([p.log_probs for p in parts]), parts[0].timesteps, parts[0].prev_timesteps)
