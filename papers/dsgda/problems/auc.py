"""AUC maximisation in its SOLAM min-max form (Ying et al. 2016): settings "cc" (λ = 0) and
"scsc" (λ > 0), with its data (make_classification or breast_cancer).

What the problem is: convex in x = (w, a, b) and μ-strongly concave in α. With λ = 0 it is
only convex in general, but the empirical x-Hessian 2Q is full rank once N ≥ d + 2 samples
span the feature space, so at the sizes swept here "cc" is strongly convex in practice; with
λ > 0 ("scsc") it is strongly convex by construction.

Statistics: F(θ, α) = θᵀQθ + 2(1 + α)hᵀw − p(1−p)·W·α² with Q the class-wise second
moments (+ λ/2·W on w), h = p·m₋ − (1−p)·m₊ and W = Σw: exact from (Q, h, W).
"""

from __future__ import annotations

import numpy as np
import torch

from papers.dsgda.config import DataConfig, ProblemConfig
from papers.dsgda.problems.base import (
    Pool,
    Problem,
    Tensor,
    _auc_from_scores,
    _min_quadratic,
    _pool,
    _rowdot,
    _standardise,
    _weighted_gram,
    _weighted_sum,
)
from shared import UserError

BREAST_CANCER_ROWS = 569


class AUCProblem(Problem):
    """z = (feature ∈ R^d, label ∈ {+1, −1}); x = (w ∈ R^d, a, b); y = α ∈ [−r, r]; p = P(label = +1)
    is a fixed population constant. With s = wᵀfeature,
      f = (1−p)(s−a)² 1[+] + p(s−b)² 1[−] + 2(1+α)(p s 1[−] − (1−p) s 1[+]) − p(1−p)α² + (λ/2)‖w‖².
    """

    def __init__(self, d: int, p: float, l2: float, radius: float, setting: str = "cc") -> None:
        if not 0.0 < p < 1.0:
            raise UserError(f"AUC problem: P(label = +1) = {p} must lie strictly between 0 and 1")
        self.setting, self.d, self.p, self.l2, self.radius = setting, d, float(p), float(l2), float(radius)
        self.dim_x, self.dim_y, self.dim_z = d + 2, 1, d + 1

    def _split(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        pos = (z[..., self.d] > 0).to(z.dtype)
        return z[..., : self.d], pos, 1.0 - pos

    def value(self, x: Tensor, y: Tensor, z: Tensor) -> Tensor:
        feat, pos, neg = self._split(z)
        w, a, b, alpha, p = x[..., : self.d], x[..., self.d], x[..., self.d + 1], y[..., 0], self.p
        s = (feat * w).sum(-1)
        f = (1 - p) * (s - a) ** 2 * pos + p * (s - b) ** 2 * neg
        f = f + 2 * (1 + alpha) * (p * s * neg - (1 - p) * s * pos) - p * (1 - p) * alpha**2
        return f + 0.5 * self.l2 * (w * w).sum(-1)

    def grads(self, x: Tensor, y: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:
        feat, pos, neg = self._split(z)
        d, p, nb = self.d, self.p, z.shape[-2]
        w, a, b, alpha = x[..., :d], x[..., d : d + 1], x[..., d + 1 : d + 2], y[..., :1]
        s = (feat @ w[..., :, None])[..., 0]  # (..., b)
        ra, rb = (s - a) * pos, (s - b) * neg
        coef = 2 * (1 - p) * ra + 2 * p * rb + 2 * (1 + alpha) * (p * neg - (1 - p) * pos)
        gw = (coef[..., None, :] @ feat)[..., 0, :] / nb + self.l2 * w
        ga = -2 * (1 - p) * ra.mean(-1, keepdim=True)
        gb = -2 * p * rb.mean(-1, keepdim=True)
        galpha = 2 * (s * (p * neg - (1 - p) * pos)).mean(-1, keepdim=True) - 2 * p * (1 - p) * alpha
        lead = gw.shape[:-1]
        gx = torch.cat([gw, ga.expand(*lead, 1), gb.expand(*lead, 1)], -1)
        return gx, galpha

    def project_y(self, y: Tensor) -> Tensor:
        return y.clamp(-self.radius, self.radius)

    def stats(self, z: Tensor, w: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(Q (R|1, d+2, d+2), h (R|1, d), W (R|1))."""
        feat, pos, neg = self._split(z)
        d, p = self.d, self.p
        wp, wn = w * pos, w * neg
        pi_p, pi_n = wp.sum(-1), wn.sum(-1)
        m_p, m_n = _weighted_sum(feat, wp), _weighted_sum(feat, wn)
        S = (1 - p) * _weighted_gram(feat, wp) + p * _weighted_gram(feat, wn)
        W = w.sum(-1)
        Q = torch.zeros(S.shape[0], d + 2, d + 2, dtype=S.dtype, device=S.device)
        Q[:, :d, :d] = S + 0.5 * self.l2 * W[:, None, None] * torch.eye(d, dtype=S.dtype, device=S.device)
        Q[:, :d, d] = Q[:, d, :d] = -(1 - p) * m_p
        Q[:, :d, d + 1] = Q[:, d + 1, :d] = -p * m_n
        Q[:, d, d] = (1 - p) * pi_p
        Q[:, d + 1, d + 1] = p * pi_n
        return 0.5 * (Q + Q.transpose(1, 2)), p * m_n - (1 - p) * m_p, W

    def y_coeffs(self, x: Tensor, st: tuple) -> tuple[Tensor, Tensor, Tensor]:
        """F(x, α) = F0 + 2αB − p(1−p)·W·α²: (F0, B, W) each (R,)."""
        Q, h, W = st
        R = len(x)
        quad = (x * (Q.expand(R, *Q.shape[1:]) @ x[:, :, None])[..., 0]).sum(-1)
        B = (h.expand(R, -1) * x[:, : self.d]).sum(-1)
        return quad + 2 * B, B, W.expand(R)

    def y_solve(self, coeffs: tuple) -> tuple[Tensor, Tensor]:
        F0, B, W = coeffs
        curv = self.p * (1 - self.p) * W
        alpha = (B / curv).clamp(-self.radius, self.radius)
        return alpha[:, None], F0 + 2 * alpha * B - curv * alpha**2

    def x_coeffs(self, y: Tensor, st: tuple) -> tuple[Tensor, Tensor, Tensor]:
        """F(·, α) = θᵀQθ + 2gᵀθ + c: (Q (R, k, k), g (R, k), c (R,))."""
        Q, h, W = st
        R, d, alpha = len(y), self.d, y[:, 0]
        g = torch.zeros(R, d + 2, dtype=Q.dtype, device=Q.device)
        g[:, :d] = (1 + alpha)[:, None] * h
        return Q.expand(R, *Q.shape[1:]), g, -self.p * (1 - self.p) * W * alpha**2

    def x_solve(self, coeffs: tuple) -> tuple[Tensor, Tensor]:
        return _min_quadratic(*coeffs)

    def objective_st(self, x: Tensor, y: Tensor, st: tuple) -> Tensor:
        F0, B, W = self.y_coeffs(x, st)
        alpha = y[:, 0]
        return F0 + 2 * alpha * B - self.p * (1 - self.p) * W * alpha**2

    def x_hessian(self, x: Tensor, y: Tensor, z: Tensor, w: Tensor) -> Tensor:
        """2Q of the quadratic F(·, α) (it depends on neither x nor α)."""
        Q = self.stats(z, w)[0]
        return 2 * Q.expand(len(x), *Q.shape[1:])

    def score(self, x: Tensor, z: Tensor, w: Tensor) -> dict[str, Tensor]:
        """{"auc": weighted Mann–Whitney AUC of wᵀfeature (ties ½; zero weights excluded)}."""
        feat, pos, _ = self._split(z)
        s = _rowdot(feat, x[:, : self.d])
        return {"auc": _auc_from_scores(s, pos > 0, w)}


def _auc_data(data: DataConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(features pool, features test, class pool, class test) with class ∈ {0, 1}."""
    P, Nt = data.pool_samples, data.test_samples
    if data.dataset == "breast_cancer":
        from sklearn.datasets import load_breast_cancer

        if P + Nt > BREAST_CANCER_ROWS:
            raise UserError(
                f"breast_cancer has {BREAST_CANCER_ROWS} rows but pool_samples + test_samples = "
                f"{P + Nt}; e.g. data.pool_samples=341 data.test_samples=228 (60/40)"
            )
        X, cls = load_breast_cancer(return_X_y=True)
        perm = np.random.RandomState(data.data_seed).permutation(len(X))
        X, cls = X[perm], cls[perm]
    else:
        from sklearn.datasets import make_classification

        d = data.features
        X, cls = make_classification(
            n_samples=P + Nt,
            n_features=d,
            n_informative=max(1, d // 2),
            n_redundant=0,
            n_clusters_per_class=1,
            class_sep=0.4,
            flip_y=0.05,
            weights=[0.7],
            random_state=data.data_seed,
        )
    return X[:P], X[P : P + Nt], cls[:P], cls[P : P + Nt]


def make_auc(problem: ProblemConfig, data: DataConfig) -> tuple[Problem, Pool]:
    Xp, Xt, cp, ct = _auc_data(data)
    Xp, Xt = _standardise(Xp, Xt)
    p = float(cp.mean())
    if not 0.0 < p < 1.0:
        raise UserError(
            f"the AUC pool has only one class ({len(cp)} samples); raise data.pool_samples"
        )
    zp = np.concatenate([Xp, np.where(cp == 1, 1.0, -1.0)[:, None]], 1)
    zt = np.concatenate([Xt, np.where(ct == 1, 1.0, -1.0)[:, None]], 1)
    l2 = problem.l2 if problem.setting == "scsc" else 0.0
    return AUCProblem(Xp.shape[1], p, l2, problem.y_radius, problem.setting), _pool(zp, zt, cp, 2)


