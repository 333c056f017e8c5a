"""The conditional DDPM over trajectory prompts (Prompt Diffuser, Sec. 3 of the paper).

    x0 = the K* prompt tuples (s, a, r) flattened;  y = (R̂_1..K*, t_1..K*) of the prompt
    x_k = √ᾱ_k x0 + √(1−ᾱ_k) ε                     (diffusers' DDPMScheduler.add_noise)
    L_DM = E‖ε − ε_θ(x_k, y, k)‖²                    (trajectory reconstruction)
    x̂0 = (x_k − √(1−ᾱ_k) ε_θ) / √ᾱ_k                 ("one-step" [recon])
       or the reverse chain x_N ~ N(0, I) → x_0 kept in the autograd graph ("chain" [recon])

ε_θ is an MLP over [x_k, y, sinusoidal(k)]. One held-out goal gets one denoiser; G of them
are stored as one `EnsembleMLP` (weights [G, in, out], rows [G, B, ·]) so every goal's
tuning runs in the same batched products while its parameters, gradients and Adam state stay
its own. The prompt fed to the frozen Prompt-DT takes s and a from x̂0 and R̂, t from y
(Prompt-DT reads returns-to-go, not rewards; r is reconstructed but unused by the policy).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from diffusers import DDPMScheduler
from torch import nn

from papers.prompt_diffuser.config import DiffuserConfig


def make_scheduler(dc: DiffuserConfig) -> DDPMScheduler:
    """diffusers' DDPM noise schedule with N = `dc.steps` steps. x̂0 is clipped to
    ±`dc.clip_x0` (diffusers' `clip_sample_range`; normalised states leave [-1, 1], so the
    default range is wider): at the last cosine steps √ᾱ_k ≈ 0.005 and an unclipped x̂0
    would hand the frozen policy prompts hundreds of times the data's scale."""
    extra = {"beta_start": 1e-4, "beta_end": dc.beta_end} if dc.beta_schedule == "linear" else {}
    return DDPMScheduler(num_train_timesteps=dc.steps, beta_schedule=dc.beta_schedule,
                         clip_sample=True, clip_sample_range=dc.clip_x0,
                         prediction_type="epsilon", **extra)


# -- prompt <-> x0 -------------------------------------------------------------------------

def pack_x0(prompts: dict[str, np.ndarray], rewards: np.ndarray, reward_scale: float) -> np.ndarray:
    """[n, P*(obs+act+1)] x0 rows from `prompt_states`, `prompt_actions` and their rewards."""
    x = np.concatenate([prompts["prompt_states"], prompts["prompt_actions"],
                        rewards[..., None] / reward_scale], -1)
    return x.reshape(len(x), -1).astype(np.float32)


def pack_y(prompts: dict[str, np.ndarray], max_ep_len: int) -> np.ndarray:
    """[n, 2P] condition rows: the prompt's returns-to-go and timesteps / max_ep_len."""
    return np.concatenate([prompts["prompt_rtg"][..., 0],
                           prompts["prompt_timesteps"] / max_ep_len], -1).astype(np.float32)


def x0_to_prompt(x0: torch.Tensor, y: torch.Tensor, obs_dim: int, act_dim: int,
                 max_ep_len: int) -> dict[str, torch.Tensor]:
    """The frozen DT's `prompt_*` tensors from x0 rows [n, P*(obs+act+1)] and y rows [n, 2P]."""
    p = y.shape[-1] // 2
    steps = x0.reshape(*x0.shape[:-1], p, obs_dim + act_dim + 1)
    return {"prompt_states": steps[..., :obs_dim],
            "prompt_actions": steps[..., obs_dim:obs_dim + act_dim],
            "prompt_rtg": y[..., :p, None],
            "prompt_timesteps": torch.round(y[..., p:] * max_ep_len).long(),
            "prompt_mask": torch.ones(y.shape[:-1] + (p,), dtype=y.dtype, device=y.device)}


# -- the noise predictor -------------------------------------------------------------------

def timestep_embedding(k: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding [.., dim] of integer diffusion steps k."""
    half = dim // 2
    freqs = torch.exp(-math.log(1000.0) * torch.arange(half, dtype=torch.float32) / half)
    angles = k.float()[..., None] * freqs.to(k.device)
    return torch.cat([torch.sin(angles), torch.cos(angles)], -1)


class EnsembleMLP(nn.Module):
    """G independent MLPs evaluated together: [G, B, in] -> [G, B, out] (Mish hidden units)."""

    def __init__(self, members: int, sizes: list[int]) -> None:
        super().__init__()
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            bound = 1.0 / math.sqrt(fan_in)  # nn.Linear's default initialisation
            self.weights.append(nn.Parameter(torch.empty(members, fan_in, fan_out).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(members, 1, fan_out).uniform_(-bound, bound)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            x = torch.baddbmm(b, x, w)
            if i < len(self.weights) - 1:
                x = nn.functional.mish(x)
        return x


class PromptDenoiser(nn.Module):
    """ε_θ(x_k, y, k) for G held-out goals at once (one member per goal).

    With `skip` [recon], ε_θ = MLP(x_k, y, k) + √(1−ᾱ_k) x_k: the second term is E[ε | x_k]
    for unit-variance x0, so the MLP learns only what the data's structure adds (without it
    a 220-d identity map at large k has to be learned through the hidden layers first)."""

    def __init__(self, goals: int, x_dim: int, y_dim: int, dc: DiffuserConfig,
                 alphas_cumprod: torch.Tensor | None = None) -> None:
        super().__init__()
        self.x_dim, self.time_dim = x_dim, dc.time_dim
        self.net = EnsembleMLP(goals, [x_dim + y_dim + dc.time_dim, *[dc.hidden] * dc.layers, x_dim])
        skip = (1 - alphas_cumprod).sqrt() if dc.skip and alphas_cumprod is not None else None
        self.register_buffer("skip", skip, persistent=False)

    def forward(self, x_k: torch.Tensor, y: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """x_k [G,B,x], y [G,B,y], k [G,B] (long) -> predicted noise [G,B,x]."""
        out = self.net(torch.cat([x_k, y, timestep_embedding(k, self.time_dim)], -1))
        return out if self.skip is None else out + self.skip[k][..., None] * x_k

    def params_per_goal(self) -> int:
        """Tunable parameters of one goal's denoiser (the paper's 0.17M)."""
        return sum(p[0].numel() for p in self.parameters())


# -- training targets and x̂0 ----------------------------------------------------------------

def one_step_x0(scheduler: DDPMScheduler, x_k: torch.Tensor, eps: torch.Tensor,
                k: torch.Tensor) -> torch.Tensor:
    """x̂0 = (x_k − √(1−ᾱ_k) ε) / √ᾱ_k, with ᾱ from the scheduler (k per row), clipped to
    the scheduler's `clip_sample_range` as its own `step` clips it."""
    abar = scheduler.alphas_cumprod.to(x_k.device)[k][..., None]
    x0 = (x_k - (1 - abar).sqrt() * eps) / abar.sqrt()
    c = scheduler.config.clip_sample_range
    return x0.clamp(-c, c) if scheduler.config.clip_sample else x0


def diffusion_batch(scheduler: DDPMScheduler, x0: torch.Tensor, gen: torch.Generator
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x_k, ε, k) for x0 rows [G,B,x]: uniform k in 0..N−1, ε ~ N(0, I)."""
    n = scheduler.config.num_train_timesteps
    k = torch.randint(0, n, x0.shape[:-1], generator=gen)
    eps = torch.randn(x0.shape, generator=gen)
    flat = scheduler.add_noise(x0.reshape(-1, x0.shape[-1]), eps.reshape(-1, x0.shape[-1]), k.reshape(-1))
    return flat.reshape(x0.shape), eps, k


def dm_loss(model: PromptDenoiser, x_k, eps, y, k) -> tuple[torch.Tensor, torch.Tensor]:
    """(L_DM summed over goals of each goal's mean, ε_θ) — the sum keeps goals' gradients apart."""
    pred = model(x_k, y, k)
    return ((pred - eps) ** 2).mean(dim=(1, 2)).sum(), pred


def sample_chain(model: PromptDenoiser, scheduler: DDPMScheduler, y: torch.Tensor,
                 gen: torch.Generator) -> torch.Tensor:
    """The reverse chain x_N ~ N(0, I) → x̂0 conditioned on y [G,B,y] with diffusers'
    `DDPMScheduler.step`; differentiable in θ unless called under torch.no_grad()."""
    n = scheduler.config.num_train_timesteps
    scheduler.set_timesteps(n)
    x = torch.randn(*y.shape[:-1], model.x_dim, generator=gen)
    for t in scheduler.timesteps:
        k = torch.full(y.shape[:-1], int(t), dtype=torch.long)
        x = scheduler.step(model(x, y, k), t, x, generator=gen).prev_sample
    return x
