"""Experiment 1b (design ours): a non-smooth convex instance on which the last iterate of
(sub)gradient descent provably pays the log T factor, so FWA's log(T/k) against SGD's
log T can show.

The instance follows the construction of Harvey, Liaw, Plan and Randhawa (2019, "Tight
analyses for non-smooth stochastic gradient descent") for Lipschitz convex functions
[recon: written from the paper's description; constants as we read them]. For a horizon T,
on the unit ball of R^T,

    f(x) = max_{i=1..T+1} h_iᵀx,   h_i = (a_1, ..., a_{i−1}, −b_i, 0, ..., 0)  (h_{T+1} has no −b),
    a_j = 1 / (8 (T − j + 1)),     b_j = √j / (2√T),

with the subgradient oracle that returns h_i for the smallest maximising i, x_1 = 0 and
η_t = c/√t. Step t moves coordinate t by η_t b_t and every earlier one down by η_t a_j, so
f(x_{T+1}) ≈ Σ_j a_j x_j grows like log T/√T while an average over the last T/2 iterates
holds only the first half of the coordinates' weight: O(1/√T). F* = 0: f(0) = 0, and
`certificate` gives weights λ ∈ Δ with Σ λ_i h_i = 0, so f(x) ≥ Σ λ_i h_iᵀx = 0 on the ball.
The method is deterministic (a noise-free oracle is a special case of SGD's), so there is
one run per horizon and no seed.
"""

from __future__ import annotations

import math

import numpy as np

from papers.fwa.theory import convergence_ratio


def coefficients(T: int) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) of the construction for horizon T, each of length T (j = 1..T)."""
    j = np.arange(1, T + 1, dtype=np.float64)
    return 1.0 / (8.0 * (T - j + 1.0)), np.sqrt(j) / (2.0 * math.sqrt(T))


def values(x: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """h_iᵀx for i = 1..T+1: the prefix sums Σ_{j<i} a_j x_j minus b_i x_i."""
    v = np.concatenate([[0.0], np.cumsum(a * x)])
    v[:-1] -= b * x
    return v


def objective(x: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    return float(values(x, a, b).max())


def subgradient(x: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """h_i for the smallest i attaining the maximum (np.argmax returns the first)."""
    i = int(np.argmax(values(x, a, b)))  # 0-based: h_{i+1}
    g = np.zeros_like(x)
    g[:i] = a[:i]
    if i < len(x):
        g[i] = -b[i]
    return g


def certificate(T: int) -> np.ndarray:
    """λ ∈ Δ^{T+1} with Σ λ_i h_i = 0 (so min f over the ball is 0): coordinate j of the sum
    is a_j Σ_{i>j} λ_i − b_j λ_j, zero when λ_j = a_j Σ_{i>j} λ_i / b_j (back substitution
    from λ_{T+1} = 1, then normalised)."""
    a, b = coefficients(T)
    lam = np.zeros(T + 1)
    lam[T] = 1.0
    tail = 1.0
    for j in range(T - 1, -1, -1):
        lam[j] = a[j] * tail / b[j]
        tail += lam[j]
    return lam / lam.sum()


def run(T: int, windows: dict[str, int], c: float = 1.0) -> dict:
    """T steps of projected subgradient descent from x_1 = 0 with η_t = c/√t: f − F* (F* = 0)
    of the last iterate x_{T+1} and of the mean of the last k iterates for every named k."""
    a, b = coefficients(T)
    x = np.zeros(T)
    sums = {name: np.zeros(T) for name in windows}
    for t in range(1, T + 1):
        x = x - (c / math.sqrt(t)) * subgradient(x, a, b)
        norm = float(np.linalg.norm(x))
        if norm > 1.0:
            x /= norm
        for name, k in windows.items():  # iterates x_{T−k+2} .. x_{T+1}
            if t >= T - k + 1:
                sums[name] += x
    out = {"sgd": objective(x, a, b)}
    out.update({name: objective(sums[name] / k, a, b) for name, k in windows.items()})
    return out


def window_sizes(T: int, fractions: list[float], windows: list[int]) -> dict[str, int]:
    from papers.fwa.averaging import fraction_label

    sizes = {f"fwaT{fraction_label(f)}": max(1, int(f * T)) for f in fractions}
    sizes.update({f"fwa{k}": k for k in windows if 2 * k <= T})
    return sizes


def sweep(horizons: list[int], fractions: list[float], windows: list[int], c: float = 1.0,
          theory_c0: float = 2.0, progress=None) -> list[dict]:
    """One row per horizon: T, every method's f − F*, the last/FWA ratios, the theory ratio
    (C₀ + log(T/k))/(2 + log T) and Harvey et al.'s lower bound log T/(32√T) (for c = 1)."""
    rows = []
    for T in horizons:
        sizes = window_sizes(T, fractions, windows)
        result = run(T, sizes, c)
        rows.append({"T": T, "value": result,
                     "ratio": {m: result["sgd"] / v if v > 0 else math.inf
                               for m, v in result.items() if m != "sgd"},
                     "theory": {m: convergence_ratio(T, k, theory_c0) for m, k in sizes.items()},
                     "window": sizes, "lower_bound": math.log(T) / (32.0 * math.sqrt(T))})
        if progress is not None:
            progress.update(1)
    return rows
