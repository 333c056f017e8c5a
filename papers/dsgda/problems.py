"""The three min-max problems min_x max_{y∈Y} F(x, y) = Σ_j w_j f(x, y; z_j), and their data.

Every problem gives the per-sample value f (the reference the tests differentiate with
autograd), analytic minibatch gradients vectorised over arbitrary leading dimensions, the
projection onto Y, and the exact inner problems sup_y F(x, ·) (`primal`) and inf_x F(·, y)
(`dual`) over a weighted dataset, from which the weak primal-dual risk primal(x) − dual(y) ≥ 0
is computed.

- `AUCProblem` (settings "cc" and "scsc"): AUC maximisation in its SOLAM min-max form; convex
  in x = (w, a, b) (strongly convex in w with the (λ/2)‖w‖² term of "scsc"), strongly concave
  in y = α ∈ [−r, r]. sup_α is a clipped closed form; inf_x solves the normal equations.
- `PLSCProblem` ("plsc"): group-DRO least squares with rank-deficient features: PL but not
  strongly convex in x, strongly concave in y ∈ [0, r]^G. sup_y is a clipped closed form; inf_x
  is a minimum-norm weighted least-squares solve.
- `NCNCProblem` ("ncnc"): Yang et al. (2020)'s non-convex–non-concave function
  x² + 3 sin²x sin²y − 4y² − 10 sin²y, shifted per sample and summed over d coordinates.
  The inner problems are separable 1-D problems, solved by a dense grid on a window that
  provably contains the optimiser, then golden-section refinement (accurate to ~1e-12).

Datasets use one layout, z = (features..., extra columns), documented on each class.
Weighted datasets are (z, w): z (R or 1, n, dz), w (R or 1, n) with w ≥ 0; rows are meant to
sum to 1 and zero weights mark padding (padded z rows may hold anything finite).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from papers.dsgda.config import DataConfig, ProblemConfig
from shared import UserError

Tensor = torch.Tensor
BREAST_CANCER_ROWS = 569


@dataclass
class Pool:
    """Samples of one problem: clients' data and replacement samples come from `z`."""

    z: Tensor  # (P, dz) float64
    label: Tensor  # (P,) int64: class or group used by the label-skewed split
    z_test: Tensor  # (Nt, dz) float64: held out, the population-risk proxy
    num_labels: int


# ----------------------------------------------------------------------------- helpers


def _rowdot(a: Tensor, v: Tensor) -> Tensor:
    """a (R or 1, n, k) · v (R, k) -> (R, n), without materialising R copies of a."""
    if a.shape[0] == 1:
        return (a[0] @ v.transpose(0, 1)).transpose(0, 1)
    return (a @ v[:, :, None])[..., 0]


def _weighted_gram(a: Tensor, weight: Tensor) -> Tensor:
    """Σ_j weight_j a_j a_jᵀ: a (R or 1, n, k), weight (R or 1, n) -> (R or 1, k, k)."""
    return (a * weight[..., None]).transpose(-1, -2) @ a


def _weighted_sum(a: Tensor, weight: Tensor) -> Tensor:
    """Σ_j weight_j a_j: a (R or 1, n, k), weight (R or 1, n) -> (R or 1, k)."""
    return (weight[..., None, :] @ a)[..., 0, :]


def _min_quadratic(Q: Tensor, g: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
    """Minimise θᵀQθ + 2gᵀθ + c over θ for PSD Q (..., k, k), g (..., k), c (...).

    Uses the pseudo-inverse (eigenvalues below 1e-10·max, or 1e-4·max in float32, are treated
    as zero, so singular Q with g in its range is fine) and returns the minimum-norm minimiser
    θ* = −Q⁺g with one step of iterative refinement, and the quadratic evaluated at θ* (an
    attained value: its error is second order in θ*'s error). When g has a component outside
    Q's range the quadratic is unbounded below and the value is −inf.
    """
    Q = 0.5 * (Q + Q.transpose(-1, -2))
    evals, evecs = torch.linalg.eigh(Q)
    tol = (1e-10 if Q.dtype == torch.float64 else 1e-4) * evals.abs().amax(-1, keepdim=True)
    inv = torch.where(evals > tol, 1.0 / evals.clamp_min(torch.finfo(Q.dtype).tiny), 0.0)

    def pinv_apply(v: Tensor) -> Tensor:
        coords = (evecs.transpose(-1, -2) @ v[..., None])[..., 0]
        return (evecs @ (inv * coords)[..., None])[..., 0]

    theta = -pinv_apply(g)
    theta = theta - pinv_apply((Q @ theta[..., None])[..., 0] + g)
    Qtheta = (Q @ theta[..., None])[..., 0]
    value = (theta * (Qtheta + 2.0 * g)).sum(-1) + c
    # g outside Q's range (a singular Q, e.g. fewer samples than features): unbounded below
    scale = g.norm(dim=-1) + evals.abs().amax(-1) * theta.norm(dim=-1) + 1.0
    unbounded = (Qtheta + g).norm(dim=-1) > (1e-7 if Q.dtype == torch.float64 else 1e-3) * scale
    return theta, torch.where(unbounded, torch.full_like(value, -torch.inf), value)


def _golden_max(q, lo: Tensor, hi: Tensor, iters: int = 60) -> tuple[Tensor, Tensor]:
    """Golden-section search for max q on [lo, hi] elementwise; returns (argmax, max).

    Exact for unimodal q; the best of the two final probes and the endpoints is returned, so
    the result is always an attained value in [lo, hi].
    """
    inv_phi = (math.sqrt(5.0) - 1.0) / 2.0
    a, b = lo.clone(), hi.clone()
    c = b - inv_phi * (b - a)
    d = a + inv_phi * (b - a)
    qc, qd = q(c), q(d)
    for _ in range(iters):
        left = qc >= qd  # the maximum lies in [a, d]
        b = torch.where(left, d, b)
        a = torch.where(left, a, c)
        new_c = b - inv_phi * (b - a)
        new_d = a + inv_phi * (b - a)
        c_next = torch.where(left, new_c, d)
        d_next = torch.where(left, c, new_d)
        qc_next = torch.where(left, q(new_c), qd)
        qd_next = torch.where(left, qc, q(new_d))
        c, d, qc, qd = c_next, d_next, qc_next, qd_next
    points = torch.stack([c, d, lo, hi], -1)
    values = torch.stack([qc, qd, q(lo), q(hi)], -1)
    best = values.argmax(-1, keepdim=True)
    return points.gather(-1, best)[..., 0], values.gather(-1, best)[..., 0]


def _maximise_1d(
    A: Tensor,
    B: Tensor,
    C1: Tensor,
    C2: Tensor,
    lo: Tensor,
    hi: Tensor,
    grid: int = 2049,
    candidates: int = 6,
) -> tuple[Tensor, Tensor]:
    """max over t ∈ [lo, hi] of q(t) = A t² + B t + C1 cos 2t + C2 sin 2t, elementwise, A < 0.

    With ρ = √(C1² + C2²) and centre c = −B/(2A), q(t) = A(t − c)² + ρ cos(2t − θ) + const, so
    any maximiser t* over [lo, hi] satisfies |A|(t* − c)² ≤ |A|(p − c)² + 2ρ with p = clip(c):
    the search window (containing p) has width ≤ 2√(2ρ/|A|) + 2e-9, i.e. ≤ 3.5 for NC-NC's
    coefficients (|A| = Σw = 1, ρ ≤ 1.5 in x; |A| = 4, ρ ≤ 5 in y). On it: a `grid`-point grid
    (spacing ≤ 1.7e-3), then golden-section search (60 steps, to ~1e-15) inside the two cells
    around each of the `candidates` best discrete local maxima. The sinusoid has period π, so
    the window holds at most a few local maxima and all are refined; the returned value is an
    attained q(t) and matches a 400 001-point grid to its resolution (~6e-10) in stress tests,
    i.e. it is exact to float rounding (~1e-12). Returns (argmax, max of this q).
    """
    a = -A
    centre = B / (2.0 * a)
    rho = torch.sqrt(C1 * C1 + C2 * C2)
    p = torch.minimum(torch.maximum(centre, lo), hi)
    half = torch.sqrt((p - centre) ** 2 + 2.0 * rho / a) + 1e-9
    w_lo = torch.maximum(lo, centre - half)
    w_hi = torch.minimum(hi, centre + half)
    w_lo = torch.minimum(w_lo, p)  # guards rounding: the window always contains p
    w_hi = torch.maximum(w_hi, p)

    s = torch.linspace(0.0, 1.0, grid, dtype=A.dtype, device=A.device)
    width = (w_hi - w_lo)[..., None]
    ts = w_lo[..., None] + width * s
    qs = (A[..., None] * ts + B[..., None]) * ts
    qs = qs + C1[..., None] * torch.cos(2.0 * ts) + C2[..., None] * torch.sin(2.0 * ts)
    peak = torch.ones_like(qs, dtype=torch.bool)
    peak[..., 1:] &= qs[..., 1:] >= qs[..., :-1]
    peak[..., :-1] &= qs[..., :-1] >= qs[..., 1:]
    masked = torch.where(peak, qs, torch.full_like(qs, -math.inf))
    idx = masked.topk(min(candidates, grid), dim=-1).indices  # (..., k)
    step = width / (grid - 1)
    centres = w_lo[..., None] + step * idx.to(A.dtype)
    c_lo = torch.maximum(centres - step, w_lo[..., None])
    c_hi = torch.minimum(centres + step, w_hi[..., None])
    Ak, Bk, C1k, C2k = (v[..., None] for v in (A, B, C1, C2))

    def q_k(t: Tensor) -> Tensor:
        return (Ak * t + Bk) * t + C1k * torch.cos(2.0 * t) + C2k * torch.sin(2.0 * t)

    arg, val = _golden_max(q_k, c_lo, c_hi)
    best = val.argmax(-1, keepdim=True)
    return arg.gather(-1, best)[..., 0], val.gather(-1, best)[..., 0]


def _auc_from_scores(score: Tensor, positive: Tensor, weight: Tensor) -> Tensor:
    """Weighted Mann–Whitney AUC per row, ties counted ½ (equals sklearn's roc_auc_score with
    sample_weight; with uniform weights the plain AUC). score (R, n), positive (R|1, n) bool,
    weight (R|1, n) ≥ 0 (zero = padding). NaN for rows without both classes."""
    R, n = score.shape
    positive = positive.expand(R, n)
    weight = weight.expand(R, n)
    order = score.argsort(-1)
    s = score.gather(-1, order)
    pw = torch.where(positive, weight, 0.0).gather(-1, order)
    nw = torch.where(positive, 0.0, weight).gather(-1, order)
    cum = nw.cumsum(-1)
    lo = torch.searchsorted(s, s, right=False)
    hi = torch.searchsorted(s, s, right=True)
    zero = torch.zeros(R, 1, dtype=cum.dtype, device=cum.device)
    cum0 = torch.cat([zero, cum], -1)  # cum0[k] = negative weight of the k lowest scores
    below = cum0.gather(-1, lo)
    tied = cum0.gather(-1, hi) - below
    num = (pw * (below + 0.5 * tied)).sum(-1)
    den = pw.sum(-1) * nw.sum(-1)
    return torch.where(den > 0, num / den.clamp_min(torch.finfo(den.dtype).tiny), math.nan)


# ----------------------------------------------------------------------------- problems


class Problem:
    """min_x max_{y∈Y} F(x, y) with F(x, y) = Σ_j w_j f(x, y; z_j)."""

    setting: str
    dim_x: int
    dim_y: int
    dim_z: int

    def value(self, x: Tensor, y: Tensor, z: Tensor) -> Tensor:
        """Per-sample f(x, y; z): x (..., dx), y (..., dy), z (..., dz) broadcastable -> (...)."""
        raise NotImplementedError

    def grads(self, x: Tensor, y: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:
        """Mean over the b samples z (..., b, dz) of ∇_x f, ∇_y f: (..., dx), (..., dy)."""
        raise NotImplementedError

    def project_y(self, y: Tensor) -> Tensor:
        """Euclidean projection onto Y."""
        raise NotImplementedError

    def objective(self, x: Tensor, y: Tensor, z: Tensor, w: Tensor) -> Tensor:
        """F(x, y) = Σ_j w_j f(x, y; z_j): x (R, dx), y (R, dy), z (R|1, n, dz), w (R|1, n) -> (R,)."""
        raise NotImplementedError

    def best_y(self, x: Tensor, z: Tensor, w: Tensor) -> tuple[Tensor, Tensor]:
        """(argmax_{y∈Y} F(x, y) (R, dy), the max (R,))."""
        raise NotImplementedError

    def best_x(self, y: Tensor, z: Tensor, w: Tensor) -> tuple[Tensor, Tensor]:
        """(a minimiser of F(·, y) (R, dx), the min (R,)); for AUC and PL-SC the minimum-norm one."""
        raise NotImplementedError

    def x_hessian(self, x: Tensor, y: Tensor, z: Tensor, w: Tensor) -> Tensor:
        """∇²ₓF(x, y): x (R, dx), y (R, dy), z (R|1, n, dz), w (R|1, n) -> (R, dx, dx).
        By autograd here; the problems below give it in closed form."""
        from torch.func import hessian, vmap

        R = len(x)
        z, w = z.expand(R, *z.shape[1:]), w.expand(R, *w.shape[1:])

        def objective(xr, yr, zr, wr):
            return (wr * self.value(xr, yr, zr)).sum()

        return vmap(hessian(objective))(x, y, z, w)

    def primal(self, x: Tensor, z: Tensor, w: Tensor) -> Tensor:
        """sup_{y∈Y} F(x, y): (R,)."""
        return self.best_y(x, z, w)[1]

    def dual(self, y: Tensor, z: Tensor, w: Tensor) -> Tensor:
        """inf_x F(x, y) (x unconstrained): (R,)."""
        return self.best_x(y, z, w)[1]

    def score(self, x: Tensor, z: Tensor, w: Tensor) -> dict[str, Tensor]:
        """Task metrics (R,) each; none by default."""
        return {}

    def init(
        self, count: int, gen: torch.Generator, scale: float, dtype: torch.dtype = torch.float64
    ) -> tuple[Tensor, Tensor]:
        """count starting points: x = scale·N(0, I), y = Π_Y(scale·N(0, I)), drawn from gen."""
        x = scale * torch.randn(count, self.dim_x, generator=gen, dtype=dtype, device=gen.device)
        y = scale * torch.randn(count, self.dim_y, generator=gen, dtype=dtype, device=gen.device)
        return x, self.project_y(y)


class AUCProblem(Problem):
    """SOLAM AUC maximisation (Ying et al. 2016), settings "cc" (λ = 0) and "scsc" (λ > 0).

    z = (feature ∈ R^d, label ∈ {+1, −1}); x = (w ∈ R^d, a, b); y = α ∈ [−r, r]; p = P(label = +1)
    is a fixed population constant. With s = wᵀfeature,
      f = (1−p)(s−a)² 1[+] + p(s−b)² 1[−] + 2(1+α)(p s 1[−] − (1−p) s 1[+]) − p(1−p)α² + (λ/2)‖w‖².
    """

    def __init__(self, d: int, p: float, l2: float, radius: float, setting: str = "cc") -> None:
        if not 0.0 < p < 1.0:
            raise UserError(f"AUC problem: P(label = +1) = {p} must lie strictly between 0 and 1")
        self.setting, self.d, self.p, self.l2, self.radius = (
            setting,
            d,
            float(p),
            float(l2),
            float(radius),
        )
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
        galpha = (
            2 * (s * (p * neg - (1 - p) * pos)).mean(-1, keepdim=True) - 2 * p * (1 - p) * alpha
        )
        lead = gw.shape[:-1]
        gx = torch.cat([gw, ga.expand(*lead, 1), gb.expand(*lead, 1)], -1)
        return gx, galpha

    def project_y(self, y: Tensor) -> Tensor:
        return y.clamp(-self.radius, self.radius)

    def _linear_in_alpha(self, x: Tensor, z: Tensor, w: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """F(x, α) = F0 + 2αB − p(1−p)·W·α² with W = Σw; returns (F0, B, W)."""
        feat, pos, neg = self._split(z)
        d, p = self.d, self.p
        s = _rowdot(feat, x[:, :d])  # (R, n)
        a, b = x[:, d : d + 1], x[:, d + 1 : d + 2]
        lin = s * (p * neg - (1 - p) * pos)
        f0 = (1 - p) * (s - a) ** 2 * pos + p * (s - b) ** 2 * neg + 2 * lin
        W = w.sum(-1).expand(len(x))
        F0 = (w * f0).sum(-1) + 0.5 * self.l2 * W * (x[:, :d] ** 2).sum(-1)
        return F0, (w * lin).sum(-1), W

    def objective(self, x: Tensor, y: Tensor, z: Tensor, w: Tensor) -> Tensor:
        F0, B, W = self._linear_in_alpha(x, z, w)
        alpha = y[:, 0]
        return F0 + 2 * alpha * B - self.p * (1 - self.p) * W * alpha**2

    def best_y(self, x: Tensor, z: Tensor, w: Tensor) -> tuple[Tensor, Tensor]:
        F0, B, W = self._linear_in_alpha(x, z, w)
        curv = self.p * (1 - self.p) * W
        alpha = (B / curv).clamp(-self.radius, self.radius)
        return alpha[:, None], F0 + 2 * alpha * B - curv * alpha**2

    def best_x(self, y: Tensor, z: Tensor, w: Tensor) -> tuple[Tensor, Tensor]:
        return _min_quadratic(*self._quadratic_in_x(y, z, w))

    def x_hessian(self, x: Tensor, y: Tensor, z: Tensor, w: Tensor) -> Tensor:
        """2Q of the quadratic F(·, α) (it depends on neither x nor α)."""
        Q = self._quadratic_in_x(y, z, w)[0]
        return 2 * Q.expand(len(x), *Q.shape[1:])

    def _quadratic_in_x(self, y: Tensor, z: Tensor, w: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """F(·, α) = θᵀQθ + 2gᵀθ + c in θ = (w, a, b), from class-wise moments of the data."""
        feat, pos, neg = self._split(z)
        d, p, R = self.d, self.p, len(y)
        wp, wn = w * pos, w * neg  # (R|1, n)
        pi_p, pi_n = wp.sum(-1), wn.sum(-1)
        m_p, m_n = _weighted_sum(feat, wp), _weighted_sum(feat, wn)  # (R|1, d)
        S = (1 - p) * _weighted_gram(feat, wp) + p * _weighted_gram(feat, wn)
        W = w.sum(-1)
        Q = torch.zeros(S.shape[0], d + 2, d + 2, dtype=S.dtype, device=S.device)
        Q[:, :d, :d] = S + 0.5 * self.l2 * W[:, None, None] * torch.eye(
            d, dtype=S.dtype, device=S.device
        )
        Q[:, :d, d] = Q[:, d, :d] = -(1 - p) * m_p
        Q[:, :d, d + 1] = Q[:, d + 1, :d] = -p * m_n
        Q[:, d, d] = (1 - p) * pi_p
        Q[:, d + 1, d + 1] = p * pi_n
        alpha = y[:, 0]
        g = torch.zeros(R, d + 2, dtype=S.dtype, device=S.device)
        g[:, :d] = (1 + alpha)[:, None] * (p * m_n - (1 - p) * m_p)
        c = -p * (1 - p) * W * alpha**2
        return Q, g, c

    def score(self, x: Tensor, z: Tensor, w: Tensor) -> dict[str, Tensor]:
        """{"auc": weighted Mann–Whitney AUC of wᵀfeature (ties ½; zero weights excluded)}."""
        feat, pos, _ = self._split(z)
        s = _rowdot(feat, x[:, : self.d])
        return {"auc": _auc_from_scores(s, pos > 0, w)}


class PLSCProblem(Problem):
    """Group-DRO least squares with rank-deficient features (setting "plsc").

    z = (φ ∈ R^d, target t, group g ∈ {0..G−1}); x ∈ R^d; y ∈ [0, r]^G;
      f = (1 + y_g)·½(φᵀx − t)² − (μ/2)‖y‖².
    For fixed y, F(·, y) = ½‖D^{1/2}(Φx − t)‖² + const is a strongly convex function of Φx, hence
    PL, but not strongly convex in x when rank Φ < d; F is μ-strongly concave in y.
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

    def _group_losses(self, x: Tensor, z: Tensor, w: Tensor) -> tuple[Tensor, Tensor]:
        """L_k(x) = Σ_j w_j 1[g_j = k]·½e_j² (R, G), and W = Σ_j w_j (R,)."""
        phi, t, onehot = self._split(z)
        e = _rowdot(phi, x) - t
        L = ((w * 0.5 * e * e)[:, None, :] @ onehot.expand(len(x), *onehot.shape[1:]))[:, 0, :]
        return L, w.sum(-1).expand(len(x))

    def objective(self, x: Tensor, y: Tensor, z: Tensor, w: Tensor) -> Tensor:
        L, W = self._group_losses(x, z, w)
        return L.sum(-1) + (y * L).sum(-1) - 0.5 * self.mu * W * (y * y).sum(-1)

    def best_y(self, x: Tensor, z: Tensor, w: Tensor) -> tuple[Tensor, Tensor]:
        L, W = self._group_losses(x, z, w)
        y = (L / (self.mu * W[:, None])).clamp(0.0, self.radius)
        return y, L.sum(-1) + (y * L).sum(-1) - 0.5 * self.mu * W * (y * y).sum(-1)

    def best_x(self, y: Tensor, z: Tensor, w: Tensor) -> tuple[Tensor, Tensor]:
        """Weighted least squares with weights w_j(1 + y_{g_j}), from per-group moments (computed
        once per weight row, then combined for every y); minimum-norm solution (Φ singular)."""
        return _min_quadratic(*self._quadratic_in_x(y, z, w))

    def x_hessian(self, x: Tensor, y: Tensor, z: Tensor, w: Tensor) -> Tensor:
        """2Q = Σ_j w_j (1 + y_{g_j}) φ_j φ_jᵀ (independent of x)."""
        Q = self._quadratic_in_x(y, z, w)[0]
        return 2 * Q.expand(len(x), *Q.shape[1:])

    def _quadratic_in_x(self, y: Tensor, z: Tensor, w: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """F(·, y) = xᵀQx + 2gᵀx + c."""
        phi, t, onehot = self._split(z)
        gw = w[..., None] * onehot  # (R|1, n, G): w_j 1[g_j = k]
        S = torch.stack([_weighted_gram(phi, gw[..., k]) for k in range(self.groups)], 1)
        m = (gw.transpose(-1, -2) * t[..., None, :]) @ phi  # (R|1, G, d): Σ w 1[g=k] t φ
        q = (gw * (t * t)[..., None]).sum(-2)  # (R|1, G)
        scale = 1 + y  # (R, G)
        Q = 0.5 * (scale[:, :, None, None] * S).sum(1)
        g = -0.5 * (scale[:, :, None] * m).sum(1)
        c = 0.5 * (scale * q).sum(-1) - 0.5 * self.mu * w.sum(-1) * (y * y).sum(-1)
        return Q, g, c


class NCNCProblem(Problem):
    """Yang et al. (2020)'s two-sided-PL toy, shifted per sample (setting "ncnc").

    z = (u ∈ R^d, v ∈ R^d); x, y ∈ R^d with Y = [−r, r]^d; with p = x − u, q = y − v,
      f = Σ_k p_k² + 3 sin²p_k sin²q_k − 4q_k² − 10 sin²q_k,
    non-convex in x and non-concave in y. F is separable over k; each coordinate's F_k is
    written through 13 weighted moments of the data (sin² = (1 − cos 2·)/2), so primal and dual
    are 1-D problems q(t) = A t² + B t + C1 cos 2t + C2 sin 2t solved by `_maximise_1d`
    (dense grid on a window that provably holds the optimiser + golden section: ~1e-12).
    """

    setting = "ncnc"

    def __init__(self, d: int, radius: float) -> None:
        self.d, self.radius = d, float(radius)
        self.dim_x, self.dim_y, self.dim_z = d, d, 2 * d

    def value(self, x: Tensor, y: Tensor, z: Tensor) -> Tensor:
        p, q = x - z[..., : self.d], y - z[..., self.d :]
        sp, sq = torch.sin(p) ** 2, torch.sin(q) ** 2
        return (p * p + 3 * sp * sq - 4 * q * q - 10 * sq).sum(-1)

    def grads(self, x: Tensor, y: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:
        p = x[..., None, :] - z[..., : self.d]  # (..., b, d)
        q = y[..., None, :] - z[..., self.d :]
        sp, sq = torch.sin(p), torch.sin(q)
        s2p, s2q = torch.sin(2 * p), torch.sin(2 * q)
        gx = 2 * p + 3 * s2p * sq * sq
        gy = 3 * sp * sp * s2q - 8 * q - 10 * s2q
        return gx.mean(-2), gy.mean(-2)

    def project_y(self, y: Tensor) -> Tensor:
        return y.clamp(-self.radius, self.radius)

    def _moments(self, z: Tensor, w: Tensor) -> Tensor:
        """(R|1, d, 13): Σw, Σw·[u, u², v, v², Cu, Su, Cv, Sv, CuCv, CuSv, SuCv, SuSv] with
        Cu = cos 2u, Su = sin 2u etc."""
        u, v = z[..., : self.d], z[..., self.d :]
        cu, su, cv, sv = torch.cos(2 * u), torch.sin(2 * u), torch.cos(2 * v), torch.sin(2 * v)
        one = torch.ones_like(u)
        feats = torch.stack(
            [one, u, u * u, v, v * v, cu, su, cv, sv, cu * cv, cu * sv, su * cv, su * sv], -1
        )  # (R|1, n, d, 13)
        n = feats.shape[1]
        flat = feats.reshape(feats.shape[0], n, -1)
        return _weighted_sum(flat, w).reshape(-1, self.d, 13)

    @staticmethod
    def _coeffs_y(M: Tensor, x: Tensor) -> tuple[Tensor, ...]:
        """F_k(x, y) = A y² + B y + C1 cos 2y + C2 sin 2y + C0 for fixed x."""
        W, mu, mu2, mv, mv2, cu, su, cv, sv, cc, cs, sc, ss = M.unbind(-1)
        cx, sx = torch.cos(2 * x), torch.sin(2 * x)
        A = -4 * W
        B = 8 * mv
        C1 = 4.25 * cv + 0.75 * (cx * cc + sx * sc)
        C2 = 4.25 * sv + 0.75 * (cx * cs + sx * ss)
        C0 = W * x * x - 2 * x * mu + mu2 + 0.75 * (W - cx * cu - sx * su) - 4 * mv2 - 5 * W
        return A, B, C1, C2, C0

    @staticmethod
    def _coeffs_x(M: Tensor, y: Tensor) -> tuple[Tensor, ...]:
        """F_k(x, y) = A x² + B x + C1 cos 2x + C2 sin 2x + C0 for fixed y."""
        W, mu, mu2, mv, mv2, cu, su, cv, sv, cc, cs, sc, ss = M.unbind(-1)
        cy, sy = torch.cos(2 * y), torch.sin(2 * y)
        EB = cy * cv + sy * sv
        A = W.expand_as(EB)
        B = -2 * mu
        C1 = -0.75 * cu + 0.75 * (cy * cc + sy * cs)
        C2 = -0.75 * su + 0.75 * (cy * sc + sy * ss)
        C0 = mu2 + 0.75 * (W - EB) - 4 * (W * y * y - 2 * y * mv + mv2) - 5 * (W - EB)
        return A, B, C1, C2, C0

    def objective(self, x: Tensor, y: Tensor, z: Tensor, w: Tensor) -> Tensor:
        A, B, C1, C2, C0 = self._coeffs_y(self._moments(z, w), x)
        q = (A * y + B) * y + C1 * torch.cos(2 * y) + C2 * torch.sin(2 * y) + C0
        return q.sum(-1)

    def best_y(self, x: Tensor, z: Tensor, w: Tensor) -> tuple[Tensor, Tensor]:
        A, B, C1, C2, C0 = torch.broadcast_tensors(*self._coeffs_y(self._moments(z, w), x))
        lo = torch.full_like(A, -self.radius)
        arg, val = _maximise_1d(A, B, C1, C2, lo, -lo)
        return arg, (val + C0).sum(-1)

    def x_hessian(self, x: Tensor, y: Tensor, z: Tensor, w: Tensor) -> Tensor:
        """Diagonal (F is separable): ∂²F_k/∂x_k² = 2A − 4C1 cos 2x_k − 4C2 sin 2x_k."""
        A, _, C1, C2, _ = self._coeffs_x(self._moments(z, w), y)
        return torch.diag_embed(2 * A - 4 * C1 * torch.cos(2 * x) - 4 * C2 * torch.sin(2 * x))

    def best_x(self, y: Tensor, z: Tensor, w: Tensor) -> tuple[Tensor, Tensor]:
        A, B, C1, C2, C0 = torch.broadcast_tensors(*self._coeffs_x(self._moments(z, w), y))
        inf = torch.full_like(A, math.inf)
        arg, val = _maximise_1d(-A, -B, -C1, -C2, -inf, inf)
        return arg, (C0 - val).sum(-1)


# ----------------------------------------------------------------------------- data


def _standardise(pool: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean, std = pool.mean(0), pool.std(0)
    std = np.where(std > 1e-12, std, 1.0)
    return (pool - mean) / std, (test - mean) / std


def _tensor(a: np.ndarray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64))


def _pool(z_pool, z_test, label, num_labels: int) -> Pool:
    return Pool(
        _tensor(z_pool),
        torch.from_numpy(np.asarray(label, dtype=np.int64)).clone(),
        _tensor(z_test),
        num_labels,
    )


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


def _make_auc(problem: ProblemConfig, data: DataConfig) -> tuple[Problem, Pool]:
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


def _make_plsc(problem: ProblemConfig, data: DataConfig) -> tuple[Problem, Pool]:
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


def _make_ncnc(problem: ProblemConfig, data: DataConfig) -> tuple[Problem, Pool]:
    from sklearn.datasets import make_classification

    d, P = problem.ncnc_dim, data.pool_samples
    if d < 1:
        raise UserError(f"problem.ncnc_dim must be >= 1, got {d}")
    X, cls = make_classification(
        n_samples=P + data.test_samples,
        n_features=2 * d,
        n_informative=2 * d,
        n_redundant=0,
        n_clusters_per_class=1,
        random_state=data.data_seed,
    )
    Xp, Xt = _standardise(X[:P], X[P:])
    s = problem.ncnc_scale
    return NCNCProblem(d, problem.y_radius), _pool(s * Xp, s * Xt, cls[:P], 2)


def make_problem(problem: ProblemConfig, data: DataConfig) -> tuple[Problem, Pool]:
    """Generate the pool (deterministic in data.data_seed) and the problem for problem.setting.

    Features are standardised with the pool's mean and std. `data.pool_samples` samples go to
    `z` and `data.test_samples` more to `z_test`.
    - cc/scsc: dataset "auto"/"synthetic" = make_classification (data.features features, half
      informative, class_sep 0.4, 5% label noise, P(+1) ≈ 0.3; a linear AUC ≈ 0.84 at 20
      features); "breast_cancer" = scikit-learn's bundled 569 × 30 set (data.features ignored),
      rows shuffled by data_seed, then the first pool_samples rows form the pool and the next
      test_samples the test set (pool + test ≤ 569; 341/228 is a 60/40 split). label = class.
    - plsc: make_regression latents Z (N × plsc_rank, noise-free) and target Zβ; features
      φ = Z Aᵀ with A (features × rank) ~ N(0, 1) seeded by data_seed, so rank φ = plsc_rank
      (standardising keeps it), then scaled by sqrt(rank/features) so E‖φ‖² = rank and the
      brief's η grid stays stable for single-sample steps; group g = 1[Z_0 > 0] (= label); target = Zβ + Gaussian noise
      whose std is 0.3 (group 0) or 1.0 (group 1) times std(Zβ), so the groups' losses differ;
      then standardised.
    - ncnc: (u, v) = make_classification features (2·ncnc_dim, all informative), standardised
      and multiplied by ncnc_scale; label = class.
    """
    setting, dataset = problem.setting, data.dataset
    if data.pool_samples < 2 or data.test_samples < 1:
        raise UserError(
            f"need data.pool_samples >= 2 and data.test_samples >= 1, got "
            f"{data.pool_samples} and {data.test_samples}"
        )
    if problem.y_radius <= 0:
        raise UserError(f"problem.y_radius must be > 0, got {problem.y_radius}")
    if setting in ("cc", "scsc"):
        if dataset not in ("auto", "synthetic", "breast_cancer"):
            raise UserError(f"data.dataset '{dataset}' is not available for {setting}")
        if setting == "scsc" and problem.l2 <= 0:
            raise UserError(f"scsc needs problem.l2 > 0, got {problem.l2}")
        if dataset != "breast_cancer" and data.features < 1:
            raise UserError(f"data.features must be >= 1, got {data.features}")
        return _make_auc(problem, data)
    if dataset not in ("auto", "synthetic"):
        raise UserError(f"data.dataset '{dataset}' is not available for {setting} (use auto)")
    if setting == "plsc":
        if problem.plsc_mu <= 0:
            raise UserError(f"problem.plsc_mu must be > 0, got {problem.plsc_mu}")
        return _make_plsc(problem, data)
    if setting == "ncnc":
        return _make_ncnc(problem, data)
    raise UserError(f"unknown problem.setting '{setting}'")
