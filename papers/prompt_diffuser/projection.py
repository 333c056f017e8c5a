"""Combining the reconstruction and guidance gradients of the Prompt Diffuser [recon].

The paper projects the guidance gradient so that it does not fight reconstruction. Minimal
form, over the flattened parameters θ of one goal's denoiser:

    g = g_DM + λ (g_PDT − (g_PDT·g_DM / ‖g_DM‖²) g_DM)

applied always ("always") or only when the two conflict, g_PDT·g_DM < 0 ("conflict"; else
g = g_DM + λ g_PDT). The ablations are DM only (g = g_DM), guidance only (g = λ g_PDT) and
the naive sum (g = g_DM + λ g_PDT). Rows of [G, D] inputs are independent goals.
"""

from __future__ import annotations

import torch

RULES = ("projection", "dm", "guidance", "sum")
EPS = 1e-20  # ‖g_DM‖² floor: a zero g_DM leaves g_PDT unprojected


def project_out(g_pdt: torch.Tensor, g_dm: torch.Tensor) -> torch.Tensor:
    """The part of each row of g_PDT orthogonal to the same row of g_DM."""
    coef = (g_pdt * g_dm).sum(-1, keepdim=True) / (g_dm * g_dm).sum(-1, keepdim=True).clamp_min(EPS)
    return g_pdt - coef * g_dm


def combine(g_dm: torch.Tensor, g_pdt: torch.Tensor, rule: str, lam: float,
            projection: str = "conflict") -> torch.Tensor:
    """The update direction g of `rule` (one of RULES); `projection` = "always" | "conflict"."""
    if rule == "dm":
        return g_dm.clone()
    if rule == "guidance":
        return lam * g_pdt
    if rule == "sum":
        return g_dm + lam * g_pdt
    if rule != "projection":
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    projected = project_out(g_pdt, g_dm)
    if projection == "conflict":
        conflict = (g_pdt * g_dm).sum(-1, keepdim=True) < 0
        projected = torch.where(conflict, projected, g_pdt)
    elif projection != "always":
        raise ValueError(f"projection must be 'always' or 'conflict', got {projection!r}")
    return g_dm + lam * projected


def flat_by_goal(grads: list[torch.Tensor]) -> torch.Tensor:
    """Per-parameter gradients [G, ...] -> [G, D] (goal g's flattened gradient in row g)."""
    return torch.cat([g.reshape(g.shape[0], -1) for g in grads], 1)


def unflat_by_goal(flat: torch.Tensor, like: list[torch.Tensor]) -> list[torch.Tensor]:
    """Inverse of `flat_by_goal`."""
    out, at = [], 0
    for p in like:
        size = p[0].numel()
        out.append(flat[:, at:at + size].reshape(p.shape))
        at += size
    return out


def clip_by_goal(flat: torch.Tensor, max_norm: float) -> torch.Tensor:
    """Scale each goal's row down to norm ≤ max_norm (goals never share a clip factor)."""
    norm = flat.norm(dim=1, keepdim=True)
    return flat * torch.clamp(max_norm / (norm + 1e-6), max=1.0)
