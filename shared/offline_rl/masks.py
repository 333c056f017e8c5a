"""Binary parameter masks: train a subnetwork θ ⊙ M of a shared model in place.

A mask set is a `dict[str, BoolTensor]` keyed by parameter name, holding only the masked
parameters; True keeps an entry. One masked training step (HarmoDT's inner step; PackNet-style
pruning trains the same way):

    saved = apply_mask(model, mask)          # save θ, load θ ⊙ M
    loss.backward(); clip_grad_norm_(...)
    mask_gradients(model, mask)              # grads ⊙ M
    optimizer.step()
    restore_masked_out(model, mask, saved)   # θ ← θ_new ⊙ M + θ_old ⊙ (1 − M)

AdamW's weight decay and momentum would otherwise move masked-out entries; the restore undoes
that exactly (bitwise). `masked_params` gives θ ⊙ M for evaluation with
`torch.func.functional_call` (see `shared.offline_rl.policy`).
"""

from __future__ import annotations

import torch
from torch import nn

Mask = dict[str, torch.Tensor]


@torch.no_grad()
def apply_mask(model: nn.Module, mask: Mask) -> dict[str, torch.Tensor]:
    """Save copies of the masked parameters, then load θ⊙M in place."""
    params = dict(model.named_parameters())
    saved = {}
    for name, m in mask.items():
        saved[name] = params[name].detach().clone()
        params[name].mul_(m)
    return saved


@torch.no_grad()
def mask_gradients(model: nn.Module, mask: Mask) -> None:
    """grads ← grads ⊙ M (after clipping, before the optimiser step)."""
    params = dict(model.named_parameters())
    for name, m in mask.items():
        if params[name].grad is not None:
            params[name].grad.mul_(m)


@torch.no_grad()
def restore_masked_out(model: nn.Module, mask: Mask, saved: dict[str, torch.Tensor]) -> None:
    """θ ← θ_new⊙M + θ_old⊙(1−M): masked-out entries get their saved values bitwise."""
    params = dict(model.named_parameters())
    for name, m in mask.items():
        params[name].copy_(torch.where(m, params[name], saved[name]))


def masked_params(model: nn.Module, mask: Mask) -> dict[str, torch.Tensor]:
    """θ ⊙ M of the masked parameters (detached), as `functional_call` overrides."""
    params = dict(model.named_parameters())
    return {n: params[n].detach() * m for n, m in mask.items()}


def mask_density(mask: Mask) -> float:
    """Fraction of kept entries over all masked entries."""
    kept = sum(int(m.sum()) for m in mask.values())
    return kept / sum(m.numel() for m in mask.values())


def mask_union(masks: list[Mask]) -> Mask:
    """Entries kept by any of `masks` (e.g. the weights a set of earlier tasks own)."""
    return {n: torch.stack([m[n] for m in masks]).any(0) for n in masks[0]}


def mask_overlap(masks: list[Mask]) -> torch.Tensor:
    """[n, n] intersection-over-union of the kept entries of every pair of masks."""
    flat = torch.stack([torch.cat([m[n].flatten() for n in masks[0]]) for m in masks]).double()
    inter = flat @ flat.T
    kept = flat.sum(1)
    union = kept[:, None] + kept[None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(inter))
