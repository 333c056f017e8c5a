"""HarmoDT's per-task binary masks ("harmony subspaces", paper §4).

A task's mask set is a `dict[str, BoolTensor]` keyed by parameter name that holds only the
maskable parameters (see `maskable_names`); True keeps an entry. The generic helpers (apply a
mask, mask gradients, restore masked-out entries, density, overlap) are
`shared.offline_rl.masks`; this module holds HarmoDT's own rules.

- Init (§4.3): an Erdős–Rényi-Kernel random mask per task at density 0.8.
- Inner step (Alg. 1, lower level): `apply_mask` saves θ and loads θ⊙M_i, the trainer runs
  forward/backward and clips, `mask_gradients` multiplies the grads by M_i, the optimiser
  steps and `restore_masked_out` sets θ ← θ_new⊙M_i + θ_old⊙(1−M_i). AdamW's weight decay
  and momentum would otherwise move masked-out entries; the restore undoes that exactly.
- Mask update (Alg. 1, upper level): harmony gradient ḡ = mean_i g_i; prune the k active
  entries with the lowest 10·(ḡ⊙g_i) + I_i, revive the k previously inactive entries with
  the highest ḡ⊙g_i; k follows `k_schedule`. Density is conserved exactly.

The authors' code (github charleshsc/HarmoDT) flattens every parameter of the model into one
vector per task and takes k over that whole vector, so `scope="global"` is their choice.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from shared.offline_rl.masks import Mask

IMPORTANCES = ("fisher", "magnitude", "none")
HARMONY_WEIGHT = 10.0  # γ in the prune score 10·(ḡ⊙g_i) + I_i (authors' default `gamma`)


def maskable_names(model: nn.Module) -> list[str]:
    """Trainable parameters whose names contain neither `embed` nor `predict`.

    Input/output layers (and the embed LayerNorm) are never masked (§4.3). Frozen parameters
    (e.g. GPT-2's zeroed `wpe`) are skipped too: a mask on them changes nothing, but their
    size would take a share of the ERK budget and make the real layers denser.
    """
    return [n for n, p in model.named_parameters()
            if p.requires_grad and "embed" not in n and "predict" not in n]


def erk_densities(shapes: dict[str, tuple[int, ...]], density: float) -> dict[str, float]:
    """Per-layer ERK densities d_l = ε·(Σ dims)/(Π dims), total kept = density × total.

    Layers whose d_l would exceed 1 become dense and ε is re-solved for the rest until none
    exceeds 1. Densifying a layer only raises ε, so densifying every offender at once reaches
    the same fixed point as the one-at-a-time loop of the authors' `ERK_maskinit`.
    A 1-D parameter of size n scores n/n = 1, so it is dense whenever ε > 1.
    """
    if not 0.0 < density <= 1.0:
        raise ValueError(f"density must lie in (0, 1], got {density}")
    sizes = {n: math.prod(s) for n, s in shapes.items()}
    raw = {n: (sum(s) / sizes[n] if s else 1.0) for n, s in shapes.items()}
    target = density * sum(sizes.values())
    dense: set[str] = set()
    epsilon = 0.0
    while True:
        sparse = [n for n in shapes if n not in dense]
        if not sparse:
            break
        budget = target - sum(sizes[n] for n in dense)
        epsilon = budget / sum(raw[n] * sizes[n] for n in sparse)
        over = {n for n in sparse if epsilon * raw[n] > 1.0}
        if not over:
            break
        dense |= over
    return {n: 1.0 if n in dense else epsilon * raw[n] for n in shapes}


def erk_counts(shapes: dict[str, tuple[int, ...]], density: float) -> dict[str, int]:
    """Kept entries per layer: ERK densities rounded so the total is round(density × total).

    Largest-remainder rounding (ties: earlier layer first), so the overall density is exact
    to within one entry rather than within one entry per layer.
    """
    exact = {n: d * math.prod(shapes[n]) for n, d in erk_densities(shapes, density).items()}
    counts = {n: math.floor(x) for n, x in exact.items()}
    missing = round(density * sum(math.prod(s) for s in shapes.values())) - sum(counts.values())
    by_remainder = sorted(exact, key=lambda n: -(exact[n] - counts[n]))  # stable: name order
    for name in by_remainder[:max(missing, 0)]:
        counts[name] = min(counts[name] + 1, math.prod(shapes[name]))
    return counts


def random_erk_masks(model: nn.Module, n_tasks: int, density: float,
                     generator: torch.Generator) -> list[Mask]:
    """One independent ERK mask set per task with exactly `erk_counts` entries kept per layer.

    The authors draw Bernoulli(d_l) entries instead; exact counts make density exact.
    """
    params = dict(model.named_parameters())
    names = maskable_names(model)
    counts = erk_counts({n: tuple(params[n].shape) for n in names}, density)
    masks = []
    for _ in range(n_tasks):
        mask = {}
        for name in names:
            p = params[name]
            keep = torch.randperm(p.numel(), generator=generator)[:counts[name]]
            flat = torch.zeros(p.numel(), dtype=torch.bool)
            flat[keep] = True
            mask[name] = flat.view(p.shape).to(p.device)
        masks.append(mask)
    return masks


def k_schedule(progress: float, k_max: int = 50) -> int:
    """Entries pruned and revived per task per update: k = k_max·(1 − cos 2π·progress).

    0 at the start and end, 2·k_max at mid-training. The authors' `cosine_annealing` with
    eta_min=0, eta_max=100 is the same curve but truncates with int(); we round.
    """
    return int(round(k_max * (1.0 - math.cos(2.0 * math.pi * progress))))


def harmony_gradient(task_grads: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """ḡ = (1/N) Σ_i g_i (§4.2)."""
    return {n: torch.stack([g[n] for g in task_grads]).mean(0) for n in task_grads[0]}


def prune_scores(g_bar: dict[str, torch.Tensor], g_i: dict[str, torch.Tensor], importance: str,
                 params: dict[str, torch.Tensor], weight: float = HARMONY_WEIGHT) -> dict[str, torch.Tensor]:
    """10·(ḡ⊙g_i) + I_i; I_i = g_i² (fisher, HarmoDT-F), |θ| (magnitude, -M) or 0 (none, -R).

    The lowest-scoring active entries are pruned: they conflict with the harmony gradient
    and matter least to task i.
    """
    if importance not in IMPORTANCES:
        raise ValueError(f"importance must be one of {IMPORTANCES}, got {importance!r}")
    scores = {}
    for name in g_i:
        score = weight * g_bar[name] * g_i[name]
        if importance == "fisher":
            score = score + g_i[name] ** 2
        elif importance == "magnitude":
            score = score + params[name].detach().abs()
        scores[name] = score
    return scores


def revive_scores(g_bar: dict[str, torch.Tensor],
                  g_i: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """ḡ⊙g_i: the inactive entries most in agreement with the harmony gradient come back."""
    return {name: g_bar[name] * g_i[name] for name in g_i}


def _lowest_first(scores: torch.Tensor) -> torch.Tensor:
    """Positions sorted by (score ascending, position ascending): stable sort breaks ties."""
    return torch.sort(scores, stable=True).indices


def _prune_and_revive(active: torch.Tensor, prune: torch.Tensor, revive: torch.Tensor,
                      k: int) -> torch.Tensor:
    """One flat boolean mask after pruning k active and reviving k previously inactive entries.

    Both choices are made on the mask *before* the update, so an entry pruned now cannot be
    revived in the same update. Ties go to the lowest flat index.
    """
    on = torch.nonzero(active).flatten()
    off = torch.nonzero(~active).flatten()
    k = min(k, on.numel(), off.numel())  # equal counts keep the density exact
    new = active.clone()
    new[on[_lowest_first(prune[on])[:k]]] = False
    new[off[_lowest_first(-revive[off])[:k]]] = True
    return new


def update_mask(mask: Mask, prune_score: dict[str, torch.Tensor],
                revive_score: dict[str, torch.Tensor], k: int,
                scope: str = "global") -> Mask:
    """Prune the k lowest-prune-score active entries and revive the k highest-revive-score
    entries that were inactive before pruning (Alg. 1, upper level).

    scope="global" (the authors' choice) ranks all maskable entries of the task at once, in
    the flat order of `mask`'s keys (row-major within a tensor); scope="layer" applies k in
    every layer separately. Ties, e.g. the all-zero revive scores of the released code's
    masked gradient, go deterministically to the lowest flat index.
    """
    if scope == "layer":
        return {n: _prune_and_revive(m.flatten(), prune_score[n].flatten(),
                                     revive_score[n].flatten(), k).view(m.shape)
                for n, m in mask.items()}
    if scope != "global":
        raise ValueError(f"scope must be 'global' or 'layer', got {scope!r}")
    names = list(mask)
    new = _prune_and_revive(torch.cat([mask[n].flatten() for n in names]),
                            torch.cat([prune_score[n].flatten() for n in names]),
                            torch.cat([revive_score[n].flatten() for n in names]), k)
    parts = new.split([mask[n].numel() for n in names])
    return {n: part.view(mask[n].shape) for n, part in zip(names, parts)}


def majority_vote_mask(masks: list[Mask], threshold: float = 0.5) -> Mask:
    """Mask for an unseen task: keep an entry that ≥ threshold of the task masks keep.

    The authors' `apply_final_mask` compares the count of masks with an absolute number
    (`merge_thres` = 25 of MT50's 50 tasks, i.e. 0.5); the tolerance makes thresholds such as
    0.7 of 10 tasks mean exactly 7 despite floating point.
    """
    need = threshold * len(masks) - 1e-9
    return {n: torch.stack([m[n] for m in masks]).sum(0) >= need for n in masks[0]}


def top_voted_mask(masks: list[Mask], sparsity: float, params: dict[str, torch.Tensor]) -> Mask:
    """Mask for an unseen task at a given sparsity (the released protocol: 0.5): keep the
    round((1 − sparsity)·N) maskable entries with the most votes among the task masks, over
    all layers at once; among entries with equal votes the larger |θ| is kept first."""
    names = list(masks[0])
    votes = torch.cat([torch.stack([m[n] for m in masks]).sum(0).flatten() for n in names]).double()
    size = torch.cat([params[n].detach().abs().flatten() for n in names]).double().cpu()
    score = votes.cpu() + 0.5 * size / (float(size.max()) + 1e-12)  # votes first, then |θ|
    keep = round((1.0 - sparsity) * votes.numel())
    flat = torch.zeros(votes.numel(), dtype=torch.bool)
    flat[torch.topk(score, keep, sorted=False).indices] = True
    parts = flat.split([masks[0][n].numel() for n in names])
    return {n: part.view(masks[0][n].shape).to(masks[0][n].device) for n, part in zip(names, parts)}
