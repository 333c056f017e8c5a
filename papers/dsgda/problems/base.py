"""The min-max problems' common interface and the numerical helpers they share.

min_x∈X max_{y∈Y} F(x, y) = Σ_j w_j f(x, y; z_j) over a weighted dataset (z, w). Every problem
gives the per-sample value f (the reference the tests differentiate with autograd), analytic
minibatch gradients vectorised over arbitrary leading dimensions, the projections onto X and Y,
and its inner problems through **sufficient statistics**:

- `stats(z, w)`: moments of the weighted data (additive in w) from which F is exact, so a
  population is a set of moments (`Pool.population`: the moments of the distribution the
  clients draw from), not a noisy held-out sample;
- `y_coeffs(x, st)` / `y_solve(c)`: F(x, ·) as coefficients *linear in F*, and its exact max over
  Y; `x_coeffs(y, st)` / `x_solve(c)` likewise for the min over X. Linearity is what makes the
  **weak** primal-dual risk computable: sup_y′ E_r F_r(x_r, y′) is `y_solve` of the mean of the
  replicas' coefficients (Lei et al. 2021 put the expectation inside the sup and the inf).

Weighted datasets are (z, w): z (R or 1, n, dz), w (R or 1, n) with w ≥ 0; rows are meant to
sum to 1 and zero weights mark padding (padded z rows may hold anything finite).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

Tensor = torch.Tensor


@dataclass
class Pool:
    """Samples of one problem: clients' data and replacement samples come from `z`."""

    z: Tensor  # (P, dz) float64
    label: Tensor  # (P,) int64: class or group used by the label-skewed split
    z_test: Tensor  # (Nt, dz) float64: held out, for task scores (AUC) only
    num_labels: int

    def population(self, problem: Problem) -> tuple:
        """The exact population statistics: clients and replacement samples are drawn
        uniformly from `z`, so the data distribution D is the uniform distribution on the pool
        and its moments are the pool's (computed once per problem and cached)."""
        cache = self.__dict__.setdefault("_population", {})
        key = id(problem)
        if key not in cache:
            w = torch.full((1, len(self.z)), 1.0 / len(self.z), dtype=self.z.dtype)
            cache[key] = (problem, problem.stats(self.z[None], w))
        return cache[key][1]


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
    the search window (containing p) has width ≤ 2√(2ρ/|A|) + 2e-9, i.e. ≤ 3.5 for ncnc's
    coefficients (|A| = Σw = 1, ρ ≤ 1.5 in x; |A| = 4, ρ ≤ 5 in y; spacing ≤ 1.7e-3) and ≤ 10
    for nonpl's (|A| = 0.1, ρ ≤ 1.25; spacing ≤ 5e-3, ≤ 4 local maxima, refined with
    candidates = 8). On it: a `grid`-point grid, then golden-section search (60 steps, to ~1e-15) inside the two cells
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


def group_mean(value: Tensor, groups: Tensor, count: int) -> Tensor:
    """Mean of value (R, ...) over the replicas of each group: groups (R,) in 0..count−1."""
    out = torch.zeros(count, *value.shape[1:], dtype=value.dtype, device=value.device)
    out.index_add_(0, groups, value)
    sizes = torch.bincount(groups, minlength=count).to(value.dtype).clamp_min(1)
    return out / sizes.reshape(count, *([1] * (value.dim() - 1)))


def _expand(values: tuple, R: int) -> tuple:
    return tuple(v.expand(R, *v.shape[1:]) for v in values)


class Problem:
    """min_{x∈X} max_{y∈Y} F(x, y) with F(x, y) = Σ_j w_j f(x, y; z_j)."""

    setting: str
    dim_x: int
    dim_y: int
    dim_z: int

    # ------------------------------------------------------------------ per sample, per step
    def value(self, x: Tensor, y: Tensor, z: Tensor) -> Tensor:
        """Per-sample f(x, y; z): x (..., dx), y (..., dy), z (..., dz) broadcastable -> (...)."""
        raise NotImplementedError

    def grads(self, x: Tensor, y: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:
        """Mean over the b samples z (..., b, dz) of ∇_x f, ∇_y f: (..., dx), (..., dy)."""
        raise NotImplementedError

    def project_x(self, x: Tensor) -> Tensor:
        """Euclidean projection onto X (unconstrained by default)."""
        return x

    def project_y(self, y: Tensor) -> Tensor:
        """Euclidean projection onto Y."""
        raise NotImplementedError

    # ------------------------------------------------------------------ sufficient statistics
    def stats(self, z: Tensor, w: Tensor) -> tuple:
        """Moments of the weighted data, each (R|1, ...), additive in w."""
        raise NotImplementedError

    def y_coeffs(self, x: Tensor, st: tuple) -> tuple:
        """F(x_r, ·) for every replica as coefficients (R, ...), linear in F."""
        raise NotImplementedError

    def y_solve(self, coeffs: tuple) -> tuple[Tensor, Tensor]:
        """(argmax_{y∈Y}, max) of the function the coefficients describe."""
        raise NotImplementedError

    def x_coeffs(self, y: Tensor, st: tuple) -> tuple:
        """F(·, y_r) for every replica as coefficients (R, ...), linear in F."""
        raise NotImplementedError

    def x_solve(self, coeffs: tuple) -> tuple[Tensor, Tensor]:
        """(argmin_{x∈X}, min) of the function the coefficients describe."""
        raise NotImplementedError

    def objective_st(self, x: Tensor, y: Tensor, st: tuple) -> Tensor:
        """F(x, y) (R,) from statistics."""
        raise NotImplementedError

    # ------------------------------------------------------------------ derived
    def objective(self, x: Tensor, y: Tensor, z: Tensor, w: Tensor) -> Tensor:
        """F(x, y) = Σ_j w_j f(x, y; z_j): x (R, dx), y (R, dy), z (R|1, n, dz), w (R|1, n) -> (R,)."""
        return self.objective_st(x, y, self.stats(z, w))

    def best_y(self, x: Tensor, z: Tensor, w: Tensor) -> tuple[Tensor, Tensor]:
        """(argmax_{y∈Y} F(x, y) (R, dy), the max (R,))."""
        return self.y_solve(self.y_coeffs(x, self.stats(z, w)))

    def best_x(self, y: Tensor, z: Tensor, w: Tensor) -> tuple[Tensor, Tensor]:
        """(a minimiser of F(·, y) over X (R, dx), the min (R,))."""
        return self.x_solve(self.x_coeffs(y, self.stats(z, w)))

    def primal(self, x: Tensor, z: Tensor, w: Tensor) -> Tensor:
        """sup_{y∈Y} F(x, y): (R,)."""
        return self.best_y(x, z, w)[1]

    def dual(self, y: Tensor, z: Tensor, w: Tensor) -> Tensor:
        """inf_{x∈X} F(x, y): (R,)."""
        return self.best_x(y, z, w)[1]

    def primal_st(self, x: Tensor, st: tuple) -> Tensor:
        return self.y_solve(self.y_coeffs(x, st))[1]

    def dual_st(self, y: Tensor, st: tuple) -> Tensor:
        return self.x_solve(self.x_coeffs(y, st))[1]

    def weak_primal(self, x: Tensor, st: tuple, groups: Tensor, count: int) -> Tensor:
        """sup_{y′∈Y} mean_{r∈g} F_r(x_r, y′) per group g (count,): st per replica or shared."""
        R = len(x)
        coeffs = _expand(self.y_coeffs(x, st), R)
        return self.y_solve(tuple(group_mean(c, groups, count) for c in coeffs))[1]

    def weak_dual(self, y: Tensor, st: tuple, groups: Tensor, count: int) -> Tensor:
        """inf_{x′∈X} mean_{r∈g} F_r(x′, y_r) per group g (count,)."""
        R = len(y)
        coeffs = _expand(self.x_coeffs(y, st), R)
        return self.x_solve(tuple(group_mean(c, groups, count) for c in coeffs))[1]

    def x_hessian(self, x: Tensor, y: Tensor, z: Tensor, w: Tensor) -> Tensor:
        """∇²ₓF(x, y): x (R, dx), y (R, dy), z (R|1, n, dz), w (R|1, n) -> (R, dx, dx).
        By autograd here; the problems give it in closed form."""
        from torch.func import hessian, vmap

        R = len(x)
        z, w = z.expand(R, *z.shape[1:]), w.expand(R, *w.shape[1:])

        def objective(xr, yr, zr, wr):
            return (wr * self.value(xr, yr, zr)).sum()

        return vmap(hessian(objective))(x, y, z, w)

    def score(self, x: Tensor, z: Tensor, w: Tensor) -> dict[str, Tensor]:
        """Task metrics (R,) each; none by default."""
        return {}

    def init(
        self, count: int, gen: torch.Generator, scale: float, dtype: torch.dtype = torch.float64
    ) -> tuple[Tensor, Tensor]:
        """count starting points: x = Π_X(scale·N(0, I)), y = Π_Y(scale·N(0, I)), drawn from gen."""
        x = scale * torch.randn(count, self.dim_x, generator=gen, dtype=dtype, device=gen.device)
        y = scale * torch.randn(count, self.dim_y, generator=gen, dtype=dtype, device=gen.device)
        return self.project_x(x), self.project_y(y)


# ----------------------------------------------------------------------------- data helpers


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
