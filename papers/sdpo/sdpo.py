"""SDPO (brief, "Algorithm"): dense rewards from three queries, discounted returns,
per-(prompt, step) normalisation, and the pairwise reward-difference loss.

Trajectories come in pairs (a, b) from the same x_T. Step index i = 0 is the first
denoising step; x̂0^i is the clean sample predicted there (x̂0^0 is the 1-step sample).
"""

from __future__ import annotations

from collections import deque

import numpy as np
import torch
import torch.nn.functional as F


def similarity_features(x0_preds: torch.Tensor, features: str = "centred") -> torch.Tensor:
    """(B, T, D) vectors whose cosines weight the interpolation.

    `centred`: each x̂0 minus its own per-channel spatial mean (for pixels: the image minus its
    mean colour). A plain background fills most of a 16×16 image, so raw cosines between two
    different objects on black are ~0.8 and carry little step information; subtracting the
    per-channel mean removes any constant added to a whole image (cos(x + c, y + c') of the
    centred features equals cos(x, y) of the centred features), leaving the layout and
    contrast. `raw`: the flattened x̂0 itself (the released code, on SD latents)."""
    x = x0_preds.float()
    if features == "centred":  # (B, T, C, H, W): over H, W; (B, T, D) vectors: over D
        x = x - x.mean(dim=tuple(range(3, x.ndim)) if x.ndim > 3 else (2,), keepdim=True)
    elif features != "raw":
        raise ValueError(f"features must be 'centred' or 'raw', got {features!r}")
    return x.flatten(2)


def anchor_similarities(x0_preds: torch.Tensor, features: str = "centred") -> tuple[torch.Tensor, torch.Tensor]:
    """(anchor step i* (B,), cosine similarities (B, 3, T) of every x̂0^i to the references
    x̂0^0, x̂0^{i*}, x̂0^{T−1}), with i* = argmin_i cos(x̂0^i, x̂0^0) + cos(x̂0^i, x̂0^{T−1}),
    on `similarity_features(x0_preds, features)`."""
    flat = similarity_features(x0_preds, features)  # (B, T, D)
    sim_first = F.cosine_similarity(flat, flat[:, :1], dim=2)
    sim_last = F.cosine_similarity(flat, flat[:, -1:], dim=2)
    anchor = (sim_first + sim_last).argmin(dim=1)
    rows = torch.arange(flat.shape[0], device=flat.device)
    sim_anchor = F.cosine_similarity(flat, flat[rows, anchor][:, None], dim=2)
    return anchor, torch.stack([sim_first, sim_anchor, sim_last], dim=1)


def query_steps(anchor: torch.Tensor, steps: int) -> torch.Tensor:
    """(B, 3) step indices whose x̂0 the reward model scores: first, anchor, last."""
    first = torch.zeros_like(anchor)
    return torch.stack([first, anchor, first + steps - 1], dim=1)


def interpolate_rewards(
    ref_rewards: torch.Tensor, anchor: torch.Tensor, sims: torch.Tensor, clamped: bool = True,
) -> torch.Tensor:
    """Dense rewards (B, T): R̂_i = Σ_ref R_ref sim_ref,i / Σ_ref sim_ref,i, exact at the
    three queried steps.

    `ref_rewards` (B, 3) = rewards of x̂0 at (first, anchor, last). With `clamped` the
    similarities are clamped at 0 so R̂_i is a convex combination of the three rewards (a step
    whose three similarities are all ≤ 0 gets their plain mean); `clamped=False` divides by
    raw cosines as the released code does, which in pixel space can leave the rewards' range.
    """
    weights = sims.clamp(min=0) if clamped else sims
    total = weights.sum(dim=1)
    if clamped:
        weights = torch.where(total[:, None] > 0, weights, torch.ones_like(weights))
        total = weights.sum(dim=1)
    dense = (weights * ref_rewards[:, :, None]).sum(dim=1) / total
    rows = torch.arange(dense.shape[0], device=dense.device)
    dense[:, 0] = ref_rewards[:, 0]
    dense[:, -1] = ref_rewards[:, 2]
    dense[rows, anchor] = ref_rewards[:, 1]
    return dense


def sparse_rewards(final_rewards: torch.Tensor, steps: int) -> torch.Tensor:
    """The sparse ablation: the final reward at the last step, zero elsewhere."""
    dense = final_rewards.new_zeros(final_rewards.shape[0], steps)
    dense[:, -1] = final_rewards
    return dense


def discounted_returns(rewards: torch.Tensor, gamma: float) -> torch.Tensor:
    """G_i = R̂_i + γ G_{i+1}, G beyond the last step = 0."""
    returns = rewards.clone()
    for i in range(rewards.shape[1] - 2, -1, -1):
        returns[:, i] += gamma * returns[:, i + 1]
    return returns


class StepPromptStatTracker:
    """Per-(prompt, step) normalisation with a buffer of the last `buffer_size` returns.

    Until a (prompt, step) buffer holds `min_count` values, the statistics are those of the
    whole batch at that step. One column (steps = 1) gives DDPO's per-prompt tracker.
    """

    def __init__(self, buffer_size: int, min_count: int) -> None:
        self.buffer_size, self.min_count = buffer_size, min_count
        self.buffers: dict[tuple[str, int], deque] = {}

    def update(self, prompts: list[str], returns: np.ndarray) -> np.ndarray:
        returns = np.asarray(returns, dtype=np.float64)
        if returns.ndim == 1:
            return self.update(prompts, returns[:, None])[:, 0]
        prompts_arr = np.asarray(prompts)
        advantages = np.empty_like(returns)
        for prompt in np.unique(prompts_arr):
            rows = prompts_arr == prompt
            for step in range(returns.shape[1]):
                values = returns[rows, step]
                buffer = self.buffers.setdefault((str(prompt), step), deque(maxlen=self.buffer_size))
                buffer.extend(values.tolist())
                pool = np.asarray(buffer) if len(buffer) >= self.min_count else returns[:, step]
                advantages[rows, step] = (values - pool.mean()) / (pool.std() + 1e-6)
        return advantages

    def state_dict(self) -> dict:
        return {"buffers": [[p, s, list(b)] for (p, s), b in self.buffers.items()]}

    def load_state_dict(self, state: dict) -> None:
        self.buffers = {(p, int(s)): deque(v, maxlen=self.buffer_size) for p, s, v in state["buffers"]}


def step_weights(steps: int, lam: float, log_scale: float) -> torch.Tensor:
    """w_i = λ^i / η_scale for i = 0 … T−1."""
    return lam ** torch.arange(steps, dtype=torch.float32) / log_scale


def sdpo_loss(
    logp_a: torch.Tensor, logp_b: torch.Tensor, old_a: torch.Tensor, old_b: torch.Tensor,
    adv_a: torch.Tensor, adv_b: torch.Tensor, weight: torch.Tensor,
    clip_range: float, adv_clip: float,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """L_i = max[(w_i Δρ_i − ΔÂ_i)², (w_i Δρ_i^clip − ΔÂ_i)²] averaged over pairs, with
    ρ = log π_θ − log π_old, Δ = a − b, Â clipped to ±adv_clip and, for Δρ^clip, log π_θ
    clamped to log π_old ± clip_range. Inputs are (B,) tensors at one step per pair.
    Diagnostics: `clipfrac` = share of the 2B transitions with |log π_θ − log π_old| beyond
    the clip range; `clip_active` = share of pairs where the clipped term is the larger."""
    adv_diff = adv_a.clamp(-adv_clip, adv_clip) - adv_b.clamp(-adv_clip, adv_clip)
    log_diff = (logp_a - old_a) - (logp_b - old_b)
    unclipped = (weight * log_diff - adv_diff) ** 2
    if clip_range <= 0:
        return unclipped.mean(), {"clipfrac": torch.zeros(())}
    clipped_a = torch.clamp(logp_a, old_a - clip_range, old_a + clip_range)
    clipped_b = torch.clamp(logp_b, old_b - clip_range, old_b + clip_range)
    clipped = (weight * ((clipped_a - old_a) - (clipped_b - old_b)) - adv_diff) ** 2
    beyond = torch.cat([(logp_a - old_a).abs(), (logp_b - old_b).abs()]) > clip_range
    return torch.maximum(unclipped, clipped).mean(), {
        "clipfrac": beyond.float().mean().detach(),
        "clip_active": (clipped > unclipped).float().mean().detach()}
