"""A stochastic bilinear game on boxes (setting "bilinear"), and its data.

  f(x, y; z) = xᵀA_z y + b_zᵀx + c_zᵀy,  x ∈ X = [−r, r]^d, y ∈ Y = [−r, r]^d.

What the problem is: convex–concave and nothing more. ∇²ₓF = 0 and ∇²_yF = 0 everywhere, so
there is no curvature to contract the coupled runs on S and S′: this is the C-C setting whose
stability bound grows with η and T (ε ≲ L(η√T + ηT/N)), with the time-averaged output. Both
X and Y are boxes so that the primal and dual are finite: sup_y F = bᵀx + r‖Aᵀx + c‖₁ and
inf_x F = cᵀy − r‖Ay + b‖₁ in closed form (A, b, c the weighted means).

Data: a two-component mixture (label s ∈ {±1}, P = ½ each): A_z = A₀ + s·Δ + σ·Ξ,
b_z = s·β + σ·ξ, c_z = s·γ + σ·ξ′, with A₀ a fixed well-conditioned matrix (singular values
1, …, 0.5), Δ, β, γ fixed, Ξ, ξ, ξ′ standard normal, σ = problem.bilinear_noise. The label is
what the label-skewed split skews, so clients' games differ under skew.
"""

from __future__ import annotations

import numpy as np
import torch

from papers.dsgda.config import DataConfig, ProblemConfig
from papers.dsgda.problems.base import Pool, Problem, Tensor, _pool, _weighted_sum
from shared import UserError


class BilinearProblem(Problem):
    """z = (vec A (d², row-major), b (d), c (d)); x, y ∈ [−r, r]^d."""

    setting = "bilinear"

    def __init__(self, d: int, radius: float) -> None:
        self.d, self.radius = d, float(radius)
        self.dim_x, self.dim_y, self.dim_z = d, d, d * d + 2 * d

    def _split(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        d = self.d
        return z[..., : d * d].reshape(*z.shape[:-1], d, d), z[..., d * d : d * d + d], z[..., d * d + d :]

    def value(self, x: Tensor, y: Tensor, z: Tensor) -> Tensor:
        A, b, c = self._split(z)
        return (x * (A @ y[..., :, None])[..., 0]).sum(-1) + (b * x).sum(-1) + (c * y).sum(-1)

    def grads(self, x: Tensor, y: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:
        A, b, c = self._split(z)  # (..., n, d, d), (..., n, d)
        Am, bm, cm = A.mean(-3), b.mean(-2), c.mean(-2)
        gx = (Am @ y[..., :, None])[..., 0] + bm
        gy = (Am.transpose(-1, -2) @ x[..., :, None])[..., 0] + cm
        return gx, gy

    def project_x(self, x: Tensor) -> Tensor:
        return x.clamp(-self.radius, self.radius)

    def project_y(self, y: Tensor) -> Tensor:
        return y.clamp(-self.radius, self.radius)

    def stats(self, z: Tensor, w: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(Σw A (R|1, d, d), Σw b (R|1, d), Σw c (R|1, d))."""
        d = self.d
        S = _weighted_sum(z, w)
        return S[..., : d * d].reshape(-1, d, d), S[..., d * d : d * d + d], S[..., d * d + d :]

    def y_coeffs(self, x: Tensor, st: tuple) -> tuple[Tensor, Tensor]:
        """F(x, ·) = lᵀy + k: (l = Aᵀx + c (R, d), k = bᵀx (R,))."""
        A, b, c = st
        R = len(x)
        lin = (A.transpose(-1, -2).expand(R, -1, -1) @ x[:, :, None])[..., 0] + c
        return lin, (b.expand(R, -1) * x).sum(-1)

    def y_solve(self, coeffs: tuple) -> tuple[Tensor, Tensor]:
        lin, const = coeffs
        return self.radius * torch.sign(lin), const + self.radius * lin.abs().sum(-1)

    def x_coeffs(self, y: Tensor, st: tuple) -> tuple[Tensor, Tensor]:
        """F(·, y) = lᵀx + k: (l = Ay + b (R, d), k = cᵀy (R,))."""
        A, b, c = st
        R = len(y)
        lin = (A.expand(R, -1, -1) @ y[:, :, None])[..., 0] + b
        return lin, (c.expand(R, -1) * y).sum(-1)

    def x_solve(self, coeffs: tuple) -> tuple[Tensor, Tensor]:
        lin, const = coeffs
        return -self.radius * torch.sign(lin), const - self.radius * lin.abs().sum(-1)

    def objective_st(self, x: Tensor, y: Tensor, st: tuple) -> Tensor:
        lin, const = self.y_coeffs(x, st)
        return (lin * y).sum(-1) + const

    def x_hessian(self, x: Tensor, y: Tensor, z: Tensor, w: Tensor) -> Tensor:
        """Zero: F is linear in x."""
        return torch.zeros(len(x), self.d, self.d, dtype=x.dtype, device=x.device)


def make_bilinear(problem: ProblemConfig, data: DataConfig) -> tuple[Problem, Pool]:
    d, P, Nt = problem.bilinear_dim, data.pool_samples, data.test_samples
    if d < 1:
        raise UserError(f"problem.bilinear_dim must be >= 1, got {d}")
    rng = np.random.RandomState(data.data_seed)
    U, _ = np.linalg.qr(rng.standard_normal((d, d)))
    V, _ = np.linalg.qr(rng.standard_normal((d, d)))
    A0 = U @ np.diag(np.linspace(1.0, 0.5, d)) @ V.T
    delta = 0.5 * rng.standard_normal((d, d)) / np.sqrt(d)
    beta, gamma = 0.3 * rng.standard_normal(d), 0.3 * rng.standard_normal(d)
    total = P + Nt
    label = rng.randint(2, size=total)
    s = (2.0 * label - 1.0)[:, None]
    sigma = problem.bilinear_noise
    A = A0.reshape(1, -1) + s * delta.reshape(1, -1) + sigma * rng.standard_normal((total, d * d))
    b = s * beta + sigma * rng.standard_normal((total, d))
    c = s * gamma + sigma * rng.standard_normal((total, d))
    z = np.concatenate([A, b, c], 1)
    return BilinearProblem(d, problem.y_radius), _pool(z[:P], z[P:], label[:P], 2)
