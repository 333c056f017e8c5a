"""Group-DRO least squares with rank-deficient features (setting "plsc"), and its data.

What the problem is: for fixed y, F(·, y) is a convex quadratic, a strongly convex function of
Φx (hence PL) but not strongly convex in x, since rank Φ < d. The iterates start in, and only
move along, the span of the data (plus the start), where F(·, y) is strongly convex: at the
sizes swept here it behaves as an SC-SC problem on that subspace. μ-strongly concave in y.

Statistics: per group k, S_k = Σ w 1[g=k] φφᵀ, m_k = Σ w 1[g=k] tφ, q_k = Σ w 1[g=k] t², and W.
"""

from __future__ import annotations

import numpy as np
import torch

from papers.dsgda.config import DataConfig, ProblemConfig
from papers.dsgda.problems.base import (
    Pool,
    Problem,
    Tensor,
    _min_quadratic,
    _pool,
    _standardise,
    _weighted_gram,
)
from shared import UserError


class PLSCProblem(Problem):
    """z = (φ ∈ R^d, target t, group g ∈ {0..G−1}); x ∈ R^d; y ∈ [0, r]^G;
      f = (1 + y_g)·½(φᵀx − t)² − (μ/2)‖y‖².
    """

    setting = "plsc"

    def __init__(self, d: int, groups: int, mu: float, radius: float) -> None:
        self.d, self.groups, self.mu, self.radius = d, groups, float(mu), float(radius)
        self.dim_x, self.dim_y, self.dim_z = d, groups, d + 2

    def _split(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        group = z[..., self.d + 1].round()[..., None]
        ks = torch.arange(self.groups, dtype=z.dtype, device=z.device)
        return z[..., : self.d], z[..., self.d], (group == ks).to(z.dtype)

    def value(self, x: Tensor, y: Tensor, z: Tensor) -> Tensor:
        phi, t, onehot = self._split(z)
        e = (phi * x).sum(-1) - t
        yg = (onehot * y).sum(-1)
        return (1 + yg) * 0.5 * e * e - 0.5 * self.mu * (y * y).sum(-1)

    def grads(self, x: Tensor, y: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:
        phi, t, onehot = self._split(z)
        nb = z.shape[-2]
        e = (phi @ x[..., :, None])[..., 0] - t  # (..., b)
        yg = (onehot @ y[..., :, None])[..., 0]
        gx = (((1 + yg) * e)[..., None, :] @ phi)[..., 0, :] / nb
        gy = ((0.5 * e * e)[..., None, :] @ onehot)[..., 0, :] / nb - self.mu * y
        return gx, gy

    def project_y(self, y: Tensor) -> Tensor:
        return y.clamp(0.0, self.radius)

    def stats(self, z: Tensor, w: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(S (R|1, G, d, d), m (R|1, G, d), q (R|1, G), W (R|1))."""
        phi, t, onehot = self._split(z)
        gw = w[..., None] * onehot  # (R|1, n, G)
        S = torch.stack([_weighted_gram(phi, gw[..., k]) for k in range(self.groups)], 1)
        m = (gw.transpose(-1, -2) * t[..., None, :]) @ phi
        q = (gw * (t * t)[..., None]).sum(-2)
        return S, m, q, w.sum(-1)

    def y_coeffs(self, x: Tensor, st: tuple) -> tuple[Tensor, Tensor]:
        """F(x, y) = ΣL + yᵀL − (μ/2)W‖y‖² with L_k = ½(xᵀS_k x − 2m_kᵀx + q_k): (L (R, G), W (R,))."""
        S, m, q, W = st
        R = len(x)
        Sx = (S.expand(R, *S.shape[1:]) @ x[:, None, :, None])[..., 0]  # (R, G, d)
        L = 0.5 * ((Sx * x[:, None]).sum(-1) - 2 * (m.expand(R, *m.shape[1:]) * x[:, None]).sum(-1) + q)
        return L, W.expand(R)

    def y_solve(self, coeffs: tuple) -> tuple[Tensor, Tensor]:
        L, W = coeffs
        y = (L / (self.mu * W[:, None])).clamp(0.0, self.radius)
        return y, L.sum(-1) + (y * L).sum(-1) - 0.5 * self.mu * W * (y * y).sum(-1)

    def x_coeffs(self, y: Tensor, st: tuple) -> tuple[Tensor, Tensor, Tensor]:
        """F(·, y) = xᵀQx + 2gᵀx + c (weighted least squares with weights w_j(1 + y_{g_j}))."""
        S, m, q, W = st
        scale = 1 + y  # (R, G)
        Q = 0.5 * (scale[:, :, None, None] * S).sum(1)
        g = -0.5 * (scale[:, :, None] * m).sum(1)
        c = 0.5 * (scale * q).sum(-1) - 0.5 * self.mu * W * (y * y).sum(-1)
        return Q, g, c

    def x_solve(self, coeffs: tuple) -> tuple[Tensor, Tensor]:
        """Minimum-norm minimiser (Φ is singular)."""
        return _min_quadratic(*coeffs)

    def objective_st(self, x: Tensor, y: Tensor, st: tuple) -> Tensor:
        L, W = self.y_coeffs(x, st)
        return L.sum(-1) + (y * L).sum(-1) - 0.5 * self.mu * W * (y * y).sum(-1)

    def x_hessian(self, x: Tensor, y: Tensor, z: Tensor, w: Tensor) -> Tensor:
        """2Q = Σ_j w_j (1 + y_{g_j}) φ_j φ_jᵀ (independent of x)."""
        Q = self.x_coeffs(y, self.stats(z, w))[0]
        return 2 * Q.expand(len(x), *Q.shape[1:])


def make_plsc(problem: ProblemConfig, data: DataConfig) -> tuple[Problem, Pool]:
    from sklearn.datasets import make_regression

    d, k, P = data.features, problem.plsc_rank, data.pool_samples
    if not 1 <= k < d:
        raise UserError(
            f"plsc needs 1 <= problem.plsc_rank < data.features; got rank {k}, features {d}"
        )
    N = P + data.test_samples
    latent, signal = make_regression(
        n_samples=N, n_features=k, n_informative=k, noise=0.0, random_state=data.data_seed
    )
    rng = np.random.RandomState(data.data_seed)
    mixing = rng.standard_normal((d, k))
    phi = latent @ mixing.T  # rank k
    group = (latent[:, 0] > 0).astype(np.int64)
    noise_scale = np.where(group == 1, 1.0, 0.3) * signal[:P].std()
    target = signal + noise_scale * rng.standard_normal(N)
    phi_p, phi_t = _standardise(phi[:P], phi[P:])
    shrink = np.sqrt(k / d)  # E‖φ‖² = rank, so one sample's curvature ≈ (1 + y_g)·rank, not (1 + y_g)·d
    phi_p, phi_t = shrink * phi_p, shrink * phi_t
    t_p, t_t = _standardise(target[:P, None], target[P:, None])
    zp = np.concatenate([phi_p, t_p, group[:P, None]], 1)
    zt = np.concatenate([phi_t, t_t, group[P:, None]], 1)
    return PLSCProblem(d, 2, problem.plsc_mu, problem.y_radius), _pool(zp, zt, group[:P], 2)


