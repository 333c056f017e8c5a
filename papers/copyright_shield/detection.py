"""CopyrightShield v1 poison detection [recon] (brief: "Detection").

Given a target (or an infringing generation) and its per-phrase element masks M_k (free
here: the procedural coverage), every training image x is scored per element k by

- feature level f_k: does the co-located region look like the element?
      e_k(δ) = mean over p in M_k of |x(p + δ) − T(p)|² / 3   (RMS colour error √e_k(0))
      f_k = 2^(−e_k(0) / feature_scale²)                 (1 for an exact paste, ½ at the scale)
- spatial level s_k: does the element's content sit where it sits in the target?
      q_k(δ) = softmax_δ(−e_k(δ) / temperature) over shifts |δx|, |δy| ≤ max_shift
      s_k = q_k(0)                                        (posterior mass at the target position)
- joint: max_k f_k · s_k.

Baselines: whole-image similarity (the copy-detection similarity of x and T), feature level
only (max_k f_k), spatial level only (max_k s_k). A sample is flagged when its score
exceeds a threshold chosen without the poison labels: the `calibration_quantile` of the
same score over the training set against a held-out target that was never attacked (every
training image is a negative for it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from papers.copyright_shield.similarity import Similarity

DETECTORS = ("joint", "whole-image", "feature", "spatial")
OUTSIDE = -1.0  # padding colour of shifted images: far from every colour in [0, 1]


def shift_errors(images: torch.Tensor, target: torch.Tensor, masks: torch.Tensor,
                 max_shift: int) -> torch.Tensor:
    """(N, K, S) masked mean squared colour error e_k(δ) for every shift δ (row-major over
    dy, dx in −max_shift..max_shift; the centre index S // 2 is δ = 0)."""
    regions = (masks > 0.5).float()  # (K, H, W)
    area = regions.sum(dim=(1, 2)).clamp_min(1.0)
    h, w = images.shape[-2:]
    padded = F.pad(images, (max_shift,) * 4, value=OUTSIDE)
    errors = []
    for dy in range(-max_shift, max_shift + 1):
        for dx in range(-max_shift, max_shift + 1):
            window = padded[..., max_shift + dy: max_shift + dy + h, max_shift + dx: max_shift + dx + w]
            sq = ((window - target[None]) ** 2).mean(dim=1)  # (N, H, W)
            errors.append(torch.einsum("nhw,khw->nk", sq, regions) / area)
    return torch.stack(errors, dim=-1)


def element_scores(images: torch.Tensor, target: torch.Tensor, masks: torch.Tensor,
                   feature_scale: float, temperature: float, max_shift: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(feature f, spatial s), each (N, K) (module docstring)."""
    errors = shift_errors(images, target, masks, max_shift)
    centre = errors.shape[-1] // 2
    feature = torch.exp2(-errors[..., centre] / feature_scale ** 2)
    spatial = torch.softmax(-errors / temperature, dim=-1)[..., centre]
    return feature, spatial


def detector_scores(images: torch.Tensor, target: torch.Tensor, masks: torch.Tensor,
                    similarity: Similarity, feature_scale: float, temperature: float,
                    max_shift: int) -> dict[str, torch.Tensor]:
    """{detector: (N,) score of every image against one target}."""
    feature, spatial = element_scores(images, target, masks, feature_scale, temperature, max_shift)
    whole = similarity(images, target[None].expand_as(images))
    return {"joint": (feature * spatial).max(dim=1).values, "whole-image": whole,
            "feature": feature.max(dim=1).values, "spatial": spatial.max(dim=1).values}


def calibrated_threshold(held_out_scores: torch.Tensor, quantile: float) -> float:
    """The label-free threshold: a quantile of the scores against a held-out target."""
    return float(torch.quantile(held_out_scores.double(), quantile))


def f1_score(flagged: torch.Tensor, positive: torch.Tensor) -> dict[str, float]:
    """Precision, recall and F1 of boolean flags against boolean labels (0 when undefined)."""
    flagged, positive = flagged.bool(), positive.bool()
    tp = int((flagged & positive).sum())
    n_flag, n_pos = int(flagged.sum()), int(positive.sum())
    precision = tp / n_flag if n_flag else 0.0
    recall = tp / n_pos if n_pos else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def detect(images: torch.Tensor, targets: list, held_out, similarity: Similarity, *,
           feature_scale: float, temperature: float, max_shift: int, quantile: float,
           poison_of: torch.Tensor) -> dict:
    """Every detector against every target: thresholds from the held-out target, flags,
    and precision / recall / F1 with that target's poisons as positives.

    Returns {"flags": {detector: (N,) bool, the union over targets},
             "per_target": [{detector: {precision, recall, f1, threshold}}],
             "scores": [{detector: (N,) scores}]}."""
    kw = dict(similarity=similarity, feature_scale=feature_scale, temperature=temperature,
              max_shift=max_shift)
    reference = detector_scores(images, held_out.image, held_out.masks, **kw)
    thresholds = {d: calibrated_threshold(reference[d], quantile) for d in DETECTORS}
    flags = {d: torch.zeros(len(images), dtype=torch.bool) for d in DETECTORS}
    per_target, scores = [], []
    for t, target in enumerate(targets):
        s = detector_scores(images, target.image, target.masks, **kw)
        scores.append(s)
        row = {}
        for d in DETECTORS:
            hit = s[d] > thresholds[d]
            flags[d] |= hit
            row[d] = {**f1_score(hit, poison_of == t), "threshold": thresholds[d]}
        per_target.append(row)
    return {"flags": flags, "per_target": per_target, "scores": scores, "thresholds": thresholds}
