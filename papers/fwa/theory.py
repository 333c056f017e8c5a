"""The paper's bounds, written as the trends a reproduction can test (brief: "Convergence,
convex" and "Generalization via uniform stability")."""

from __future__ import annotations

import math


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
