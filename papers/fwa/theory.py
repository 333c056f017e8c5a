"""The paper's bounds, written as the trends a reproduction can test (brief: "Convergence,
convex" and "Generalization via uniform stability")."""

from __future__ import annotations

import math

import numpy as np


def convergence_ratio(T: int, k: int, c0: float = 2.0) -> float:
    """FWA/SGD bound ratio for α_t = c/√t: (C₀ + log(T/k)) / (2 + log T).

    SGD's last iterate: (D²/c + cG²)(2 + log T)/√T (Shamir & Zhang 2013); FWA replaces
    (2 + log T) by (C₀ + log(T/k)). With C₀ = 2 the ratio is 1 at k = 1, below 1 for k > 1,
    decreasing in k, and rising towards 1 as T grows for a fixed k.
    """
    return (c0 + math.log(T / k)) / (2.0 + math.log(T))


def stability_factor(T: int, k: int) -> float:
    """ε_FWA / ε_SGD for convex losses and a constant step: 1 − (k−1)/(2T).

    From ε_SGD ≤ (2αL²/n)·T (Hardt et al. 2016) and averaging being 1-Lipschitz:
    ε_FWA ≤ (2αL²/n)(T − (k−1)/2).
    """
    return 1.0 - (k - 1) / (2.0 * T)


def sgd_stability_convex(alpha: float, L: float, n: int, T: int) -> float:
    """Uniform-stability bound of SGD, convex, constant α ≤ 2/β: 2αL²T/n."""
    return 2.0 * alpha * L * L * T / n


def sgd_stability_nonconvex(c: float, beta: float, L: float, n: int, T: int) -> float:
    """Hardt et al. Thm 3.12, α_t ≤ c/t: ((1 + 1/(βc))/(n−1)) (2cL²)^{1/(βc+1)} T^{βc/(βc+1)}."""
    q = beta * c
    return (1.0 + 1.0 / q) / (n - 1) * (2.0 * c * L * L) ** (1.0 / (q + 1)) * T ** (q / (q + 1))


def step_schedule(T: int, c: float, power: float) -> np.ndarray:
    """α_1, ..., α_T for α_t = c·t^(−power) (power 0: constant, 1: c/t)."""
    return c * np.arange(1, T + 1, dtype=np.float64) ** (-power)


def distance_bound(alphas: np.ndarray, L: float, n: int, k: int = 1) -> float:
    """Bound on E‖w̄_T^k − w̄′_T^k‖ for convex, L-Lipschitz, β-smooth losses with every
    α_t ≤ 2/β (Hardt et al. 2016, Thm 3.8: E δ_t ≤ (2L/n) Σ_{s≤t} α_s), T = len(alphas).

    Averaging is 1-Lipschitz, so FWA's distance is at most the mean of δ_t over its window:
    (2L/n) · mean_{t=T−k+1..T} Σ_{s≤t} α_s; for a constant α that is (2αL/n)(T − (k−1)/2),
    SGD's bound times `stability_factor(T, k)`. This bounds a parameter distance; the loss
    (generalization) bound is L times it, 2αL²T/n for SGD at a constant step.
    """
    if not 1 <= k <= len(alphas):
        raise ValueError(f"window k={k} needs 1 ≤ k ≤ T={len(alphas)}")
    cumulative = np.cumsum(np.asarray(alphas, dtype=np.float64))
    return float(2.0 * L / n * cumulative[-k:].mean())


def logistic_constants(X: np.ndarray) -> dict:
    """L and β of the unregularised logistic loss log(1 + exp(−y x·w)) over the rows of X:
    ‖∇f‖ = σ(·)‖x‖ ≤ ‖x‖ and ∇²f ⪯ xxᵀ/4, so L = max‖x‖ and β = max‖x‖²/4."""
    sq = (np.asarray(X, dtype=np.float64) ** 2).sum(1)
    return {"L": float(np.sqrt(sq.max())), "beta": float(sq.max() / 4.0)}
