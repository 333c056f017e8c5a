"""Zero-shot (ZSL) and generalized zero-shot (GZSL) evaluation.

ZSL: unseen-class test samples classified among the unseen classes with each branch's
round-3 logits. Reported both ways: the released code's OR-fusion (a sample counts as right
if *either* branch is right — an oracle, it needs the label to pick the branch) and an
honest fusion (argmax of the summed softmaxes).

GZSL: seen- and unseen-class test samples classified among all classes with the fused
softmax; a calibration γ is subtracted from the seen-class scores (calibrated stacking).
U = unseen accuracy, S = seen accuracy, H = 2SU / (S + U). γ is chosen either on held-out
data with pseudo-unseen classes (honest) or on the test set (as the released code does).
"""

from __future__ import annotations

import torch


def fused_probs(final: dict[str, torch.Tensor], columns: list[int] | None = None) -> torch.Tensor:
    """Mean over branches of the softmax over `columns` (all classes when None)."""
    probs = [(lg if columns is None else lg[:, columns]).softmax(-1) for lg in final.values()]
    return torch.stack(probs).mean(0)


def zsl(final: dict[str, torch.Tensor], labels: torch.Tensor, unseen: list[int]) -> dict[str, float]:
    """Top-1 among the unseen classes: per branch, oracle OR-fusion, honest fused."""
    target = torch.tensor([unseen.index(int(y)) for y in labels])
    out, correct = {}, []
    for branch, logits in final.items():
        hit = logits[:, unseen].argmax(-1) == target
        out[branch] = hit.double().mean().item()
        correct.append(hit)
    out["oracle_or"] = torch.stack(correct).any(0).double().mean().item()
    out["fused"] = (fused_probs(final, unseen).argmax(-1) == target).double().mean().item()
    return out


def gzsl_accuracies(probs: torch.Tensor, labels: torch.Tensor, seen: list[int], unseen: list[int],
                    gamma: float) -> dict[str, float]:
    """S, U, H for one γ: probs (N, K_all) over all classes, labels global."""
    calibrated = probs.clone()
    calibrated[:, seen] -= gamma
    pred = calibrated.argmax(-1)
    is_unseen = torch.isin(labels, torch.tensor(unseen))
    hit = (pred == labels).double()
    S = hit[~is_unseen].mean().item() if (~is_unseen).any() else float("nan")
    U = hit[is_unseen].mean().item() if is_unseen.any() else float("nan")
    H = 2 * S * U / (S + U) if S + U > 0 else 0.0
    return {"S": S, "U": U, "H": H, "gamma": gamma}


def gamma_grid(probs: torch.Tensor, seen: list[int], unseen: list[int], points: int) -> list[float]:
    """0 … the largest margin by which a seen class beats every unseen class on these samples
    (beyond it every prediction is unseen), in `points` steps."""
    margin = (probs[:, seen].max(-1).values - probs[:, unseen].max(-1).values).clamp_min(0)
    top = float(margin.max()) * 1.0001 if len(margin) else 0.0
    return [top * i / (points - 1) for i in range(points)]


def best_gamma(probs: torch.Tensor, labels: torch.Tensor, seen: list[int], unseen: list[int],
               points: int) -> dict[str, float]:
    """The γ with the highest H on these samples (the first one on ties)."""
    best = None
    for gamma in gamma_grid(probs, seen, unseen, points):
        res = gzsl_accuracies(probs, labels, seen, unseen, gamma)
        if best is None or res["H"] > best["H"]:
            best = res
    return best


def released_gzsl(final: dict[str, torch.Tensor], labels: torch.Tensor, seen: list[int],
                  unseen: list[int], points: int) -> dict[str, float]:
    """The released GZSL protocol: each branch's softmax calibrated with its own γ chosen for
    the best test-set H, and a sample counted right if *either* branch is right (an oracle on
    two counts: the test set picks γ, the label picks the branch). With one branch it is
    `best_gamma` on the test set. {"S", "U", "H", "gamma": [γ per branch]}."""
    is_unseen = torch.isin(labels, torch.tensor(unseen))
    hits, gammas = [], []
    for logits in final.values():
        probs = logits.softmax(-1)
        gamma = best_gamma(probs, labels, seen, unseen, points)["gamma"]
        calibrated = probs.clone()
        calibrated[:, seen] -= gamma
        hits.append(calibrated.argmax(-1) == labels)
        gammas.append(gamma)
    hit = torch.stack(hits).any(0).double()
    S = hit[~is_unseen].mean().item() if (~is_unseen).any() else float("nan")
    U = hit[is_unseen].mean().item() if is_unseen.any() else float("nan")
    H = 2 * S * U / (S + U) if S + U > 0 else 0.0
    return {"S": S, "U": U, "H": H, "gamma": gammas}
