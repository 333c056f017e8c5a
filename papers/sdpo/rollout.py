"""One epoch's experience: paired trajectories, their rewards and advantages.

Every method samples the same way (pairs from one x_T, DDIM with η > 0, T steps) and differs
only in which x̂0 the reward model scores and how advantages are formed:
- SDPO: rewards at the first, anchor and last step, interpolated to every step (or every step
  scored: `oracle`; or only the final one: `sparse`), discounted returns, per-(prompt, step)
  normalisation;
- DDPO and REBEL: the final reward, per-prompt normalised (one advantage per trajectory);
- D3PO: the final reward only decides which trajectory of a pair is preferred.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from papers.sdpo.config import SDPOExperimentConfig
from papers.sdpo.ddim import Trajectories, sample_in_chunks
from papers.sdpo.model import Policy
from papers.sdpo.sdpo import (
    StepPromptStatTracker,
    anchor_similarities,
    discounted_returns,
    interpolate_rewards,
    query_steps,
    sparse_rewards,
)

RewardFn = Callable[[torch.Tensor, list[str]], torch.Tensor]
Gather = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class EpochSamples:
    """2P trajectories: rows [0, P) are the a's, rows [P, 2P) the b's of the P pairs."""

    prompts: list[str]  # (2P,)
    cond: torch.Tensor  # (2P, L, D) prompt encodings
    traj: Trajectories
    final_rewards: torch.Tensor  # (2P,) reward of the final x̂0
    advantages: torch.Tensor  # (2P, T) (SDPO), (2P,) (DDPO, REBEL) or empty (D3PO)
    dense_rewards: torch.Tensor | None  # (2P, T) for SDPO
    reward_queries: int  # images the reward model scored this epoch

    @property
    def pairs(self) -> int:
        return len(self.prompts) // 2


def decode_and_score(decode, reward_fn: RewardFn, latents: torch.Tensor, prompts: list[str],
                     chunk: int) -> torch.Tensor:
    """reward_fn(decode(latents), prompts), `chunk` latents at a time: at paper scale one
    epoch's 3 × 64 x̂0 decoded at once through the VAE at 512 px would not fit in memory.
    (The reward batches by the same `chunk`, so the grouping, and every number, is unchanged.)"""
    chunk = max(1, chunk)
    scores = [reward_fn(decode(latents[i:i + chunk]), list(prompts[i:i + chunk])).float()
              for i in range(0, len(latents), chunk)]
    return torch.cat(scores) if scores else torch.zeros(0, device=latents.device)


def _score_steps(traj: Trajectories, steps: torch.Tensor, decode, reward_fn: RewardFn,
                 prompts: list[str], chunk: int) -> torch.Tensor:
    """Rewards (B, K) of x̂0 at step indices `steps` (B, K)."""
    rows = torch.arange(steps.shape[0], device=steps.device)[:, None].expand_as(steps)
    latents = traj.x0_preds[rows.reshape(-1), steps.reshape(-1)]
    repeated = [p for p in prompts for _ in range(steps.shape[1])]
    return decode_and_score(decode, reward_fn, latents, repeated, chunk).reshape(steps.shape)


def dense_step_rewards(cfg: SDPOExperimentConfig, traj: Trajectories, decode, reward_fn: RewardFn,
                       prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(dense rewards (B, T), final rewards (B,), reward queries) for SDPO's `sdpo.dense` mode."""
    batch, steps = traj.log_probs.shape
    mode, chunk = cfg.sdpo.dense, cfg.reward.batch
    if mode == "oracle":
        every = torch.arange(steps, device=traj.log_probs.device).expand(batch, steps)
        dense = _score_steps(traj, every, decode, reward_fn, prompts, chunk)
        return dense, dense[:, -1], batch * steps
    if mode == "sparse":
        last = torch.full((batch, 1), steps - 1, device=traj.log_probs.device)
        final = _score_steps(traj, last, decode, reward_fn, prompts, chunk)[:, 0]
        return sparse_rewards(final, steps), final, batch
    anchor, sims = anchor_similarities(traj.x0_preds, cfg.sdpo.features)
    refs = _score_steps(traj, query_steps(anchor, steps), decode, reward_fn, prompts, chunk)
    dense = interpolate_rewards(refs, anchor, sims, clamped=cfg.sdpo.similarity == "clamped")
    return dense, refs[:, 2], batch * 3


def collect(
    cfg: SDPOExperimentConfig, method: str, policy: Policy, prompts: list[str],
    reward_fn: RewardFn, tracker: StepPromptStatTracker, generator: torch.Generator,
    gather: Gather, rank: int,
) -> EpochSamples:
    """Sample P pairs for `prompts` (P of them), score them and form the method's advantages.

    `gather` concatenates a tensor over processes (identity on one process) so that the
    statistics tracker sees every process's returns, as in the authors' multi-GPU runs.
    """
    backbone = policy.backbone
    pairs = len(prompts)
    both = prompts + prompts
    cond = backbone.encode_prompts(both)
    x_T = torch.randn((pairs, *backbone.latent_shape), generator=generator, device=cond.device)
    traj = sample_in_chunks(policy.eps, backbone.scheduler, cond, torch.cat([x_T, x_T]),
                            cfg.sample.steps, cfg.sample.eta, generator, cfg.sample.t_prev,
                            chunk=cfg.sample.batch)
    dense = None
    if method == "sdpo":
        dense, final, queries = dense_step_rewards(cfg, traj, backbone.decode, reward_fn, both)
        signal = discounted_returns(dense, cfg.sdpo.gamma)
    else:
        final = decode_and_score(backbone.decode, reward_fn, traj.final, both, cfg.reward.batch)
        queries = len(both)
        signal = final[:, None]
    if method == "d3po":
        advantages = torch.empty(0)
    else:
        advantages = _normalise(tracker, both, signal, gather, rank)
        if method != "sdpo":
            advantages = advantages[:, 0]
    return EpochSamples(both, cond, traj, final, advantages, dense, queries)


def _normalise(tracker: StepPromptStatTracker, prompts: list[str], signal: torch.Tensor,
               gather: Gather, rank: int) -> torch.Tensor:
    """Per-(prompt, step) advantages over all processes' samples; this process's rows back."""
    local = signal.shape[0]
    ids = torch.tensor([hash_prompt(p) for p in prompts], device=signal.device)
    all_ids = gather(ids).cpu().numpy()
    all_signal = gather(signal).cpu().numpy()
    advantages = tracker.update([str(i) for i in all_ids], all_signal)
    mine = advantages[rank * local:(rank + 1) * local]
    return torch.as_tensor(np.ascontiguousarray(mine), dtype=torch.float32, device=signal.device)


def hash_prompt(prompt: str) -> int:
    """A stable integer key of a prompt (gatherable across processes, unlike strings)."""
    value = 0
    for byte in prompt.encode():
        value = (value * 131 + byte) % (2**61 - 1)
    return value
