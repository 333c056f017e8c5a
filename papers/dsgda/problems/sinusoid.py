"""Sinusoidal non-convex–non-concave toys, shifted per sample, and their data: settings "ncnc"
(Yang et al. 2020's two-sided-PL function) and "nonpl" (a variant with spurious stationary
points, so it is not PL on either side).

Per coordinate, with p = x − u and q = y − v (z = (u, v)),
  f = a p² + b sin²p + c sin²p sin²q − e q² − g sin²q,  summed over d coordinates, y ∈ [−r, r]^d.

- "ncnc": (a, b, c, e, g) = (1, 0, 3, 4, 10), Yang et al.'s x² + 3 sin²x sin²y − 4y² − 10 sin²y.
  Non-convex in x and non-concave in y, but two-sided PL: every stationary point is the
  saddle, and SGDA contracts towards it. The theory for that class predicts bounded stability.
- "nonpl": (a, b, c, e, g) = (0.1, 1, 1, 0.1, 1.5) on Y = [−r, r]^d with r ≥ π (problem.
  nonpl_radius). For every y, F(·, y) has local minima near p ≈ ±π besides the global one (the
  quadratic 0.1p² is too weak to remove them), and for every x, F(x, ·) has local maxima near
  q ≈ ±π besides q ≈ 0: a stationary point that is not optimal, so neither side is PL. This is
  the genuinely NC-NC instance the NC-NC bounds (growing in T) are about.

F is separable over coordinates; each coordinate's F_k is written through 13 weighted moments
of the data (sin² = (1 − cos 2·)/2), so primal and dual are 1-D problems
q(t) = A t² + B t + C1 cos 2t + C2 sin 2t, solved by `_maximise_1d` (~1e-12).
"""

from __future__ import annotations

import math

import torch

from papers.dsgda.config import DataConfig, ProblemConfig
from papers.dsgda.problems.base import (
    Pool,
    Problem,
    Tensor,
    _maximise_1d,
    _pool,
    _standardise,
    _weighted_sum,
)
from shared import UserError

YANG = (1.0, 0.0, 3.0, 4.0, 10.0)
NONPL = (0.1, 1.0, 1.0, 0.1, 1.5)


class SinusoidProblem(Problem):
    """z = (u ∈ R^d, v ∈ R^d); x, y ∈ R^d with Y = [−r, r]^d; coefficients (a, b, c, e, g) above."""

    def __init__(self, d: int, radius: float, coeffs=YANG, setting: str = "ncnc") -> None:
        self.d, self.radius, self.setting = d, float(radius), setting
        self.a, self.b, self.c, self.e, self.g = (float(v) for v in coeffs)
        self.dim_x, self.dim_y, self.dim_z = d, d, 2 * d

    def value(self, x: Tensor, y: Tensor, z: Tensor) -> Tensor:
        p, q = x - z[..., : self.d], y - z[..., self.d :]
        sp, sq = torch.sin(p) ** 2, torch.sin(q) ** 2
        return (self.a * p * p + self.b * sp + self.c * sp * sq - self.e * q * q - self.g * sq).sum(-1)

    def grads(self, x: Tensor, y: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:
        p = x[..., None, :] - z[..., : self.d]  # (..., b, d)
        q = y[..., None, :] - z[..., self.d :]
        sp, sq = torch.sin(p), torch.sin(q)
        s2p, s2q = torch.sin(2 * p), torch.sin(2 * q)
        gx = 2 * self.a * p + (self.b + self.c * sq * sq) * s2p
        gy = self.c * sp * sp * s2q - 2 * self.e * q - self.g * s2q
        return gx.mean(-2), gy.mean(-2)

    def project_y(self, y: Tensor) -> Tensor:
        return y.clamp(-self.radius, self.radius)

    def stats(self, z: Tensor, w: Tensor) -> tuple[Tensor]:
        """((R|1, d, 13),): Σw, Σw·[u, u², v, v², Cu, Su, Cv, Sv, CuCv, CuSv, SuCv, SuSv] with
        Cu = cos 2u, Su = sin 2u etc."""
        u, v = z[..., : self.d], z[..., self.d :]
        cu, su, cv, sv = torch.cos(2 * u), torch.sin(2 * u), torch.cos(2 * v), torch.sin(2 * v)
        one = torch.ones_like(u)
        feats = torch.stack([one, u, u * u, v, v * v, cu, su, cv, sv, cu * cv, cu * sv, su * cv, su * sv], -1)
        n = feats.shape[1]
        return (_weighted_sum(feats.reshape(feats.shape[0], n, -1), w).reshape(-1, self.d, 13),)

    def y_coeffs(self, x: Tensor, st: tuple) -> tuple[Tensor, ...]:
        """F_k(x, y) = A y² + B y + C1 cos 2y + C2 sin 2y + C0 for fixed x: each (R, d)."""
        W, mu, mu2, mv, mv2, cu, su, cv, sv, cc, cs, sc, ss = st[0].unbind(-1)
        a, b, c, e, g = self.a, self.b, self.c, self.e, self.g
        cx, sx = torch.cos(2 * x), torch.sin(2 * x)
        A = -e * W
        B = 2 * e * mv
        C1 = (g / 2 - c / 4) * cv + c / 4 * (cx * cc + sx * sc)
        C2 = (g / 2 - c / 4) * sv + c / 4 * (cx * cs + sx * ss)
        Ep = cx * cu + sx * su  # Σ w cos 2p
        C0 = a * (W * x * x - 2 * x * mu + mu2) + (b / 2 + c / 4) * (W - Ep) - e * mv2 - g / 2 * W
        return tuple(t.expand_as(C0) for t in (A, B, C1, C2, C0))

    def x_coeffs(self, y: Tensor, st: tuple) -> tuple[Tensor, ...]:
        """F_k(x, y) = A x² + B x + C1 cos 2x + C2 sin 2x + C0 for fixed y: each (R, d)."""
        W, mu, mu2, mv, mv2, cu, su, cv, sv, cc, cs, sc, ss = st[0].unbind(-1)
        a, b, c, e, g = self.a, self.b, self.c, self.e, self.g
        cy, sy = torch.cos(2 * y), torch.sin(2 * y)
        Eq = cy * cv + sy * sv  # Σ w cos 2q
        A = a * W
        B = -2 * a * mu
        C1 = -(b / 2 + c / 4) * cu + c / 4 * (cy * cc + sy * cs)
        C2 = -(b / 2 + c / 4) * su + c / 4 * (cy * sc + sy * ss)
        C0 = a * mu2 + (b / 2 + c / 4) * W - c / 4 * Eq - e * (W * y * y - 2 * y * mv + mv2) - g / 2 * (W - Eq)
        return tuple(t.expand_as(C0) for t in (A, B, C1, C2, C0))

    def y_solve(self, coeffs: tuple) -> tuple[Tensor, Tensor]:
        A, B, C1, C2, C0 = coeffs
        lo = torch.full_like(A, -self.radius)
        arg, val = _maximise_1d(A, B, C1, C2, lo, -lo, candidates=8)
        return arg, (val + C0).sum(-1)

    def x_solve(self, coeffs: tuple) -> tuple[Tensor, Tensor]:
        A, B, C1, C2, C0 = coeffs
        inf = torch.full_like(A, math.inf)
        arg, val = _maximise_1d(-A, -B, -C1, -C2, -inf, inf, candidates=8)
        return arg, (C0 - val).sum(-1)

    def objective_st(self, x: Tensor, y: Tensor, st: tuple) -> Tensor:
        A, B, C1, C2, C0 = self.y_coeffs(x, st)
        return ((A * y + B) * y + C1 * torch.cos(2 * y) + C2 * torch.sin(2 * y) + C0).sum(-1)

    def x_hessian(self, x: Tensor, y: Tensor, z: Tensor, w: Tensor) -> Tensor:
        """Diagonal (F is separable): ∂²F_k/∂x_k² = 2A − 4C1 cos 2x_k − 4C2 sin 2x_k."""
        A, _, C1, C2, _ = self.x_coeffs(y, self.stats(z, w))
        return torch.diag_embed(2 * A - 4 * C1 * torch.cos(2 * x) - 4 * C2 * torch.sin(2 * x))


class NCNCProblem(SinusoidProblem):
    """Yang et al. (2020)'s two-sided-PL toy (setting "ncnc")."""

    def __init__(self, d: int, radius: float) -> None:
        super().__init__(d, radius, YANG, "ncnc")


def make_sinusoid(problem: ProblemConfig, data: DataConfig) -> tuple[Problem, Pool]:
    """(u, v) = make_classification features (2·ncnc_dim, all informative), standardised and
    multiplied by ncnc_scale; label = class (for the label-skewed split)."""
    from sklearn.datasets import make_classification

    d, P = problem.ncnc_dim, data.pool_samples
    if d < 1:
        raise UserError(f"problem.ncnc_dim must be >= 1, got {d}")
    X, cls = make_classification(n_samples=P + data.test_samples, n_features=2 * d, n_informative=2 * d,
                                 n_redundant=0, n_clusters_per_class=1, random_state=data.data_seed)
    Xp, Xt = _standardise(X[:P], X[P:])
    s = problem.ncnc_scale
    if problem.setting == "nonpl":
        prob = SinusoidProblem(d, problem.nonpl_radius, NONPL, "nonpl")
    else:
        prob = NCNCProblem(d, problem.y_radius)
    return prob, _pool(s * Xp, s * Xt, cls[:P], 2)
