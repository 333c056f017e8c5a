"""The paper's baselines as losses on the same recorded transitions (brief, "Baselines").

- DDPO: PPO-clip on the per-step ratio π_θ/π_old with a trajectory-level advantage (the final
  reward, per-prompt normalised).
- D3PO: each step of a pair is a DPO instance; the preferred trajectory is the one with the
  higher final reward; r = clamp(π_θ/π_ref, 1 ± c) with a frozen reference;
  L = −log σ(β Σ_j c_j log r_j), c = +1 for the preferred, −1 for the other.
- REBEL / PRDP: regress the trajectory-summed log-ratio gap onto the advantage gap,
  L = ((1/η)(Σ_t ρ^a_t − Σ_t ρ^b_t) − (Â^a − Â^b))², ρ = log π_θ − log π_old.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def ddpo_loss(
    logp: torch.Tensor, old: torch.Tensor, adv: torch.Tensor, clip_range: float, adv_clip: float,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """mean over samples of max(−Â r, −Â clip(r, 1 ± ε)), Â clipped to ±adv_clip."""
    adv = adv.clamp(-adv_clip, adv_clip)
    ratio = torch.exp(logp - old)
    unclipped = -adv * ratio
    clipped = -adv * torch.clamp(ratio, 1 - clip_range, 1 + clip_range)
    return torch.maximum(unclipped, clipped).mean(), {
        "clipfrac": ((ratio - 1).abs() > clip_range).float().mean().detach()}


def preference_signs(final_a: torch.Tensor, final_b: torch.Tensor) -> torch.Tensor:
    """c_a = +1 if a's final reward is higher, −1 if lower, 0 on a tie (then no gradient)."""
    return torch.sign(final_a - final_b)


def d3po_loss(
    logp_a: torch.Tensor, logp_b: torch.Tensor, ref_a: torch.Tensor, ref_b: torch.Tensor,
    sign_a: torch.Tensor, beta: float, ratio_clip: float,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """−log σ(β (c_a log r_a + c_b log r_b)), c_b = −c_a, r = clamp(π_θ/π_ref, 1 ± ratio_clip)."""
    r_a = torch.clamp(torch.exp(logp_a - ref_a), 1 - ratio_clip, 1 + ratio_clip)
    r_b = torch.clamp(torch.exp(logp_b - ref_b), 1 - ratio_clip, 1 + ratio_clip)
    margin = sign_a * (torch.log(r_a) - torch.log(r_b))
    raw = torch.exp(torch.cat([logp_a - ref_a, logp_b - ref_b]))
    return -F.logsigmoid(beta * margin).mean(), {
        "clipfrac": ((raw - 1).abs() > ratio_clip).float().mean().detach(),
        "margin": margin.mean().detach()}


def rebel_residual(
    sum_rho_a: torch.Tensor, sum_rho_b: torch.Tensor, adv_a: torch.Tensor, adv_b: torch.Tensor,
    eta: float, adv_clip: float,
) -> torch.Tensor:
    """e = (1/η)(Σρ^a − Σρ^b) − (Â^a − Â^b); REBEL's loss is mean(e²)."""
    adv_diff = adv_a.clamp(-adv_clip, adv_clip) - adv_b.clamp(-adv_clip, adv_clip)
    return (sum_rho_a - sum_rho_b) / eta - adv_diff


def rebel_step_surrogate(
    residual: torch.Tensor, rho_a: torch.Tensor, rho_b: torch.Tensor, eta: float,
) -> torch.Tensor:
    """A per-step loss whose gradient, summed over the T steps, equals ∇ mean(e²).

    ∇ e² = 2 e ∇e and e is linear in Σ_t ρ_t, so with `residual` (detached, from a no-grad
    pass over all steps) one step's term is mean(2 e (ρ^a_t − ρ^b_t) / η): the trajectory sum
    then needs only one step's activations in memory at a time.
    """
    return (2 * residual.detach() * (rho_a - rho_b) / eta).mean()
