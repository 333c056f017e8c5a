"""Continual-learning metrics over R[t][i], the success on task i after stage t.

R is a [T, T] array with NaN where a task was not evaluated (tasks beyond the next one);
`r_init[i]` is the success on task i of the untrained model.

    P   = mean_i R[T−1][i]                         (final average success)
    F   = mean_i (R[i][i] − R[T−1][i])             (forgetting, over every task)
    FWT = mean_{i < T−1} (R[i][i+1] − R_init[i+1]) (the brief's forward transfer)
"""

from __future__ import annotations

import numpy as np


def performance(r: np.ndarray) -> float:
    return float(np.mean(np.asarray(r, dtype=np.float64)[-1]))


def forgetting(r: np.ndarray) -> float:
    r = np.asarray(r, dtype=np.float64)
    return float(np.mean(np.diag(r) - r[-1]))


def forward_transfer(r: np.ndarray, r_init: np.ndarray) -> float:
    r, r_init = np.asarray(r, dtype=np.float64), np.asarray(r_init, dtype=np.float64)
    t = r.shape[0]
    if t < 2:
        return float("nan")
    return float(np.mean([r[i, i + 1] - r_init[i + 1] for i in range(t - 1)]))


def p_over_stages(r: np.ndarray) -> list[float]:
    """Mean success over the tasks seen so far after each stage."""
    r = np.asarray(r, dtype=np.float64)
    return [float(np.mean(r[t, :t + 1])) for t in range(r.shape[0])]
