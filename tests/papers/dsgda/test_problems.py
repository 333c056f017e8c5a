import math

import numpy as np
import pytest
import scipy.optimize
import torch
from sklearn.metrics import roc_auc_score

from papers.dsgda.config import DataConfig, ProblemConfig
from papers.dsgda.measures import x_curvature
from papers.dsgda.problems import (
    AUCProblem,
    NCNCProblem,
    PLSCProblem,
    Problem,
    make_problem,
)
from shared import UserError

DT = torch.float64
SETTINGS = ["cc", "scsc", "plsc", "ncnc"]


def _problem(setting):
    if setting == "cc":
        return AUCProblem(3, p=0.3, l2=0.0, radius=2.0, setting="cc")
    if setting == "scsc":
        return AUCProblem(3, p=0.3, l2=0.2, radius=2.0, setting="scsc")
    if setting == "plsc":
        return PLSCProblem(4, groups=2, mu=0.7, radius=2.0)
    return NCNCProblem(3, radius=2.0)


def _samples(problem, shape, gen):
    """Random z of shape (*shape, dz) in the problem's layout."""
    z = torch.randn(*shape, problem.dim_z, generator=gen, dtype=DT)
    if isinstance(problem, AUCProblem):
        z[..., -1] = torch.where(torch.rand(shape, generator=gen) < 0.4, 1.0, -1.0)
    elif isinstance(problem, PLSCProblem):
        z[..., -1] = (torch.rand(shape, generator=gen) < 0.5).to(DT)
    return z


def _point(problem, shape, gen, scale=1.0):
    x = scale * torch.randn(*shape, problem.dim_x, generator=gen, dtype=DT)
    y = problem.project_y(scale * torch.randn(*shape, problem.dim_y, generator=gen, dtype=DT))
    return x, y


def _uniform(n, rows=1):
    return torch.full((rows, n), 1.0 / n, dtype=DT)


# ----------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize(("lead", "b"), [((3, 4), 5), ((3, 4), 1), ((), 5), ((2,), 1)])
def test_grads_equal_autograd_of_mean_value(setting, lead, b):
    problem = _problem(setting)
    gen = torch.Generator().manual_seed(1)
    x, y = _point(problem, lead, gen)
    if setting == "plsc":
        y = y + 0.3  # interior of [0, r]: y_g enters linearly, any point works
    z = _samples(problem, (*lead, b), gen)
    gx, gy = problem.grads(x, y, z)
    xl, yl = x.clone().requires_grad_(True), y.clone().requires_grad_(True)
    loss = problem.value(xl[..., None, :], yl[..., None, :], z).mean(-1).sum()
    want_x, want_y = torch.autograd.grad(loss, (xl, yl))
    assert gx.shape == x.shape and gy.shape == y.shape
    torch.testing.assert_close(gx, want_x, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gy, want_y, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("setting", SETTINGS)
def test_grads_broadcast_over_leading_dims(setting):
    problem = _problem(setting)
    gen = torch.Generator().manual_seed(2)
    x, y = _point(problem, (2, 1), gen)
    z = _samples(problem, (3, 4), gen)  # (3, b=4, dz) shared by both rows of x
    gx, gy = problem.grads(x, y, z)
    assert gx.shape == (2, 3, problem.dim_x) and gy.shape == (2, 3, problem.dim_y)
    for i in range(2):
        for j in range(3):
            ex, ey = problem.grads(x[i, 0], y[i, 0], z[j])
            torch.testing.assert_close(gx[i, j], ex, rtol=1e-13, atol=1e-13)
            torch.testing.assert_close(gy[i, j], ey, rtol=1e-13, atol=1e-13)


def test_scsc_gradient_is_cc_plus_l2_times_w():
    cc, scsc = _problem("cc"), _problem("scsc")
    gen = torch.Generator().manual_seed(3)
    x, y = _point(cc, (5,), gen)
    z = _samples(cc, (5, 7), gen)
    (gx0, gy0), (gx1, gy1) = cc.grads(x, y, z), scsc.grads(x, y, z)
    diff = torch.zeros_like(x)
    diff[:, :3] = 0.2 * x[:, :3]
    torch.testing.assert_close(gx1 - gx0, diff, rtol=0, atol=1e-14)
    torch.testing.assert_close(gy1, gy0, rtol=0, atol=0)


def test_grads_keep_float32():
    for setting in SETTINGS:
        problem = _problem(setting)
        gen = torch.Generator().manual_seed(4)
        x, y = _point(problem, (2, 3), gen)
        z = _samples(problem, (2, 3, 2), gen)
        gx, gy = problem.grads(x.float(), y.float(), z.float())
        assert gx.dtype == gy.dtype == torch.float32
        torch.testing.assert_close(gx.double(), problem.grads(x, y, z)[0], rtol=1e-4, atol=1e-4)


# ----------------------------------------------------------------------------- values


def test_auc_value_by_hand():
    # d = 2, w = (1, 2), a = 0.5, b = −1, α = 0.5, p = 0.25, feature (1, 1): s = wᵀfeature = 3.
    # label +1: (1−p)(s−a)² − 2(1+α)(1−p)s − p(1−p)α² = 0.75·6.25 − 3·2.25 − 0.046875 = −2.109375
    # label −1: p(s−b)² + 2(1+α)p s − p(1−p)α² = 0.25·16 + 3·0.75 − 0.046875 = 6.203125
    # scsc, λ = 0.1: + (λ/2)‖w‖² = 0.05·5 = 0.25
    x = torch.tensor([1.0, 2.0, 0.5, -1.0], dtype=DT)
    y = torch.tensor([0.5], dtype=DT)
    z = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, -1.0]], dtype=DT)
    cc = AUCProblem(2, p=0.25, l2=0.0, radius=1.0)
    scsc = AUCProblem(2, p=0.25, l2=0.1, radius=1.0, setting="scsc")
    torch.testing.assert_close(cc.value(x, y, z), torch.tensor([-2.109375, 6.203125], dtype=DT))
    torch.testing.assert_close(scsc.value(x, y, z), torch.tensor([-1.859375, 6.453125], dtype=DT))


def test_plsc_value_by_hand():
    # φ = (1, 2, 0), x = (1, 1, 1), t = 1, g = 1, y = (0.5, 2), μ = 1:
    # e = φᵀx − t = 2, (1 + y_1)·½e² = 3·2 = 6, −(μ/2)‖y‖² = −0.5·4.25 = −2.125 → 3.875.
    # the same sample in group 0: (1 + 0.5)·2 − 2.125 = 0.875.
    problem = PLSCProblem(3, groups=2, mu=1.0, radius=3.0)
    x = torch.ones(3, dtype=DT)
    y = torch.tensor([0.5, 2.0], dtype=DT)
    z = torch.tensor([[1.0, 2.0, 0.0, 1.0, 1.0], [1.0, 2.0, 0.0, 1.0, 0.0]], dtype=DT)
    torch.testing.assert_close(problem.value(x, y, z), torch.tensor([3.875, 0.875], dtype=DT))


def test_ncnc_value_by_hand():
    # d = 2, z = (u, v) = ((0.1, 0), (−0.2, 0.3)), x = u + (π/2, 0), y = v + (π/2, 0):
    # coordinate 1: p = q = π/2: π²/4 + 3 − π² − 10 = −3π²/4 − 7; coordinate 2: p = q = 0 → 0.
    problem = NCNCProblem(2, radius=3.0)
    u, v = torch.tensor([0.1, 0.0], dtype=DT), torch.tensor([-0.2, 0.3], dtype=DT)
    shift = torch.tensor([math.pi / 2, 0.0], dtype=DT)
    got = problem.value(u + shift, v + shift, torch.cat([u, v]))
    torch.testing.assert_close(got, torch.tensor(-0.75 * math.pi**2 - 7, dtype=DT))


@pytest.mark.parametrize("setting", SETTINGS)
def test_objective_is_weighted_mean_and_ignores_padding(setting):
    problem = _problem(setting)
    gen = torch.Generator().manual_seed(5)
    R, n, pad = 3, 6, 4
    x, y = _point(problem, (R,), gen)
    for shared_z in (True, False):
        z = _samples(problem, (1 if shared_z else R, n), gen)
        w = torch.rand(1 if shared_z else R, n, generator=gen, dtype=DT)
        w = w / w.sum(-1, keepdim=True)
        got = problem.objective(x, y, z, w)
        want = (w * problem.value(x[:, None], y[:, None], z)).sum(-1)
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
        zp = torch.cat([z, torch.full((z.shape[0], pad, problem.dim_z), 1e6, dtype=DT)], 1)
        wp = torch.cat([w, torch.zeros(w.shape[0], pad, dtype=DT)], 1)
        torch.testing.assert_close(problem.objective(x, y, zp, wp), got, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(
            problem.primal(x, zp, wp), problem.primal(x, z, w), rtol=1e-10, atol=1e-10
        )
        torch.testing.assert_close(
            problem.dual(y, zp, wp), problem.dual(y, z, w), rtol=1e-9, atol=1e-9
        )


# ----------------------------------------------------------------------------- inner problems


def _ascent_max(problem, x, z, w, steps=300, lr=0.5):
    """Projected gradient ascent on y (autograd through `objective`): the reference sup for the
    strongly concave problems."""
    y = problem.project_y(torch.zeros(len(x), problem.dim_y, dtype=DT))
    for _ in range(steps):
        yl = y.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(problem.objective(x, yl, z, w).sum(), yl)
        y = problem.project_y(y + lr * g)
    return problem.objective(x, y, z, w)


def _lbfgs_min(problem, y, z, w):
    """inf_x by L-BFGS (autograd through `objective`), one row at a time."""
    out = []
    for r in range(len(y)):
        x = torch.zeros(1, problem.dim_x, dtype=DT, requires_grad=True)
        opt = torch.optim.LBFGS(
            [x],
            lr=1.0,
            max_iter=500,
            tolerance_grad=1e-13,
            tolerance_change=1e-16,
            history_size=50,
            line_search_fn="strong_wolfe",
        )
        zr, wr = z[r : r + 1] if len(z) > 1 else z, w[r : r + 1] if len(w) > 1 else w

        def closure(x=x, zr=zr, wr=wr, r=r, opt=opt):
            opt.zero_grad()
            loss = problem.objective(x, y[r : r + 1], zr, wr).sum()
            loss.backward()
            return loss

        opt.step(closure)
        out.append(problem.objective(x.detach(), y[r : r + 1], zr, wr))
    return torch.cat(out)


@pytest.mark.parametrize("setting", ["cc", "scsc", "plsc"])
def test_primal_and_dual_are_exact_for_convex_concave_settings(setting):
    problem = _problem(setting)
    gen = torch.Generator().manual_seed(6)
    R, n = 3, 40
    z = _samples(problem, (1, n), gen)
    w = _uniform(n)
    x, y = _point(problem, (R,), gen, scale=2.0)
    primal, dual = problem.primal(x, z, w), problem.dual(y, z, w)
    torch.testing.assert_close(primal, _ascent_max(problem, x, z, w), rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(dual, _lbfgs_min(problem, y, z, w), rtol=1e-7, atol=1e-7)
    # argmax/argmin attain the values
    ys, xs = problem.best_y(x, z, w)[0], problem.best_x(y, z, w)[0]
    torch.testing.assert_close(problem.objective(x, ys, z, w), primal, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(problem.objective(xs, y, z, w), dual, rtol=1e-10, atol=1e-10)
    # many random y ∈ Y below the primal; many random x above the dual
    K = 500
    yr = problem.project_y(3 * torch.randn(K, problem.dim_y, generator=gen, dtype=DT))
    xr = 3 * torch.randn(K, problem.dim_x, generator=gen, dtype=DT)
    for r in range(R):
        assert (problem.objective(x[r].expand(K, -1), yr, z, w) <= primal[r] + 1e-12).all()
        assert (problem.objective(xr, y[r].expand(K, -1), z, w) >= dual[r] - 1e-12).all()


def test_auc_dual_handles_a_one_class_weighted_set():
    problem = AUCProblem(3, p=0.3, l2=0.0, radius=2.0)
    gen = torch.Generator().manual_seed(7)
    z = _samples(problem, (1, 20), gen)
    w = (z[..., -1] > 0).to(DT)
    w = w / w.sum()
    y = torch.tensor([[0.5], [-1.0]], dtype=DT)
    dual = problem.dual(y, z, w)
    assert torch.isfinite(dual).all()
    torch.testing.assert_close(dual, _lbfgs_min(problem, y, z, w), rtol=1e-7, atol=1e-7)


def _ncnc_brute_1d(problem1, fixed, z1, w1, over_y, lo, hi):
    """Dense grid + bounded scalar refinement of one coordinate's F_k, using `value` only."""
    zt, wt = z1[0], w1[0]

    def F(t):
        t = torch.as_tensor(t, dtype=DT).reshape(-1, 1)
        f = fixed.expand(len(t), 1)
        v = (
            problem1.value(f[:, None], t[:, None], zt)
            if over_y
            else problem1.value(t[:, None], f[:, None], zt)
        )
        return (v * wt).sum(-1)

    grid = torch.linspace(lo, hi, 20001, dtype=DT)
    vals = F(grid)
    sign = -1.0 if over_y else 1.0
    i = int((sign * vals).argmin())
    h = (hi - lo) / 20000
    res = scipy.optimize.minimize_scalar(
        lambda t: sign * float(F(t)),
        bounds=(max(lo, grid[i].item() - 2 * h), min(hi, grid[i].item() + 2 * h)),
        method="bounded",
        options={"xatol": 1e-12},
    )
    return max(vals[i].item(), -res.fun) if over_y else min(vals[i].item(), res.fun)


def test_ncnc_primal_and_dual_match_dense_grid_per_coordinate():
    d, r, n = 2, 1.5, 25
    problem = NCNCProblem(d, radius=r)
    gen = torch.Generator().manual_seed(8)
    z = 0.7 * torch.randn(1, n, 2 * d, generator=gen, dtype=DT)
    w = torch.rand(1, n, generator=gen, dtype=DT)
    w = w / w.sum()
    x, y = _point(problem, (2,), gen, scale=1.5)
    primal, dual = problem.primal(x, z, w), problem.dual(y, z, w)
    one = NCNCProblem(1, radius=r)
    for row in range(2):
        want_p = want_d = 0.0
        for k in range(d):
            zk = z[..., [k, d + k]]
            want_p += _ncnc_brute_1d(one, x[row, k : k + 1], zk, w, True, -r, r)
            want_d += _ncnc_brute_1d(one, y[row, k : k + 1], zk, w, False, -6.0, 6.0)
        assert abs(primal[row].item() - want_p) < 1e-9
        assert abs(dual[row].item() - want_d) < 1e-9
    K = 2000
    yr = problem.project_y(2 * torch.randn(K, d, generator=gen, dtype=DT))
    xr = 3 * torch.randn(K, d, generator=gen, dtype=DT)
    for row in range(2):
        assert (problem.objective(x[row].expand(K, -1), yr, z, w) <= primal[row] + 1e-12).all()
        assert (problem.objective(xr, y[row].expand(K, -1), z, w) >= dual[row] - 1e-12).all()


@pytest.mark.parametrize("setting", SETTINGS)
def test_weak_primal_dual_gap_is_nonnegative(setting):
    problem = _problem(setting)
    gen = torch.Generator().manual_seed(9)
    z = _samples(problem, (1, 30), gen)
    w = _uniform(30)
    x, y = _point(problem, (50,), gen, scale=1.5)
    assert (problem.primal(x, z, w) - problem.dual(y, z, w) >= 0).all()
    # also at best responses, where the gap is smallest
    xs, ys = problem.best_x(y, z, w)[0], problem.best_y(x, z, w)[0]
    assert (problem.primal(xs, z, w) - problem.dual(ys, z, w) >= -1e-12).all()


# ----------------------------------------------------------------------------- structure


@pytest.mark.parametrize("setting", SETTINGS)
def test_project_y_is_idempotent_and_lands_in_Y(setting):
    problem = _problem(setting)
    y = 5 * torch.randn(200, problem.dim_y, generator=torch.Generator().manual_seed(10), dtype=DT)
    p = problem.project_y(y)
    torch.testing.assert_close(problem.project_y(p), p, rtol=0, atol=0)
    lo = 0.0 if setting == "plsc" else -2.0
    assert (p >= lo).all() and (p <= 2.0).all()
    inside = (y >= lo) & (y <= 2.0)
    assert torch.equal(p[inside], y[inside])


def test_init_shapes_projection_and_determinism():
    for setting in SETTINGS:
        problem = _problem(setting)
        x, y = problem.init(7, torch.Generator().manual_seed(0), 0.1, DT)
        x2, y2 = problem.init(7, torch.Generator().manual_seed(0), 0.1, DT)
        assert x.shape == (7, problem.dim_x) and y.shape == (7, problem.dim_y)
        assert torch.equal(x, x2) and torch.equal(y, y2)
        torch.testing.assert_close(problem.project_y(y), y, rtol=0, atol=0)


def _small(setting, **problem_kw):
    return make_problem(
        ProblemConfig(setting=setting, **problem_kw),
        DataConfig(features=6, pool_samples=200, test_samples=50),
    )


def test_plsc_hessian_is_rank_deficient_and_pl_holds():
    problem, pool = _small("plsc", plsc_rank=2)
    z, w = pool.z[None], _uniform(len(pool.z))
    y = torch.tensor([[0.3, 1.1]], dtype=DT)
    H = torch.autograd.functional.hessian(
        lambda x: problem.objective(x[None], y, z, w).sum(), torch.zeros(6, dtype=DT)
    )
    ev = torch.linalg.eigvalsh(H)
    zero = ev.abs() <= 1e-10 * ev.max()
    assert int(zero.sum()) == 6 - 2  # d − rank flat directions: not strongly convex
    assert (ev[~zero] > 1e-3 * ev.max()).all()
    lam = ev[~zero].min()
    # flat direction: F does not change along a null vector of Φ
    v = torch.linalg.eigh(H).eigenvectors[:, 0]
    x0 = torch.randn(5, 6, generator=torch.Generator().manual_seed(11), dtype=DT)
    Fx = problem.objective(x0, y.expand(5, -1), z, w)
    torch.testing.assert_close(
        problem.objective(x0 + 3 * v, y.expand(5, -1), z, w), Fx, rtol=1e-9, atol=1e-9
    )
    # PL: ½‖∇F(x)‖² ≥ λ⁺_min (F(x) − inf F)
    g, _ = problem.grads(x0, y.expand(5, -1), pool.z.expand(5, -1, -1))
    gap = Fx - problem.dual(y, z, w)
    assert (gap > 0).all() and (0.5 * (g * g).sum(-1) >= lam * gap * (1 - 1e-9)).all()


def test_ncnc_is_nonconvex_nonconcave():
    problem, pool = _small("ncnc", ncnc_dim=2)
    z, w = pool.z[None], _uniform(len(pool.z))
    u, v = pool.z[:, :2].mean(0), pool.z[:, 2:].mean(0)
    x0, y0 = u + math.pi / 2, v + math.pi / 2
    Hx = torch.autograd.functional.hessian(
        lambda x: problem.objective(x[None], y0[None], z, w).sum(), x0
    )
    Hy = torch.autograd.functional.hessian(
        lambda y: problem.objective(x0[None], y[None], z, w).sum(), y0
    )
    assert torch.linalg.eigvalsh(Hx).min() < -0.5  # negative curvature in x: non-convex
    assert torch.linalg.eigvalsh(Hy).max() > 0.5  # positive curvature in y: non-concave
    Hx0 = torch.autograd.functional.hessian(
        lambda x: problem.objective(x[None], v[None], z, w).sum(), u
    )
    assert torch.linalg.eigvalsh(Hx0).min() > 0  # yet convex near the shifted saddle


@pytest.mark.parametrize("setting", SETTINGS)
def test_x_hessian_equals_autograd(setting):
    problem = _problem(setting)
    gen = torch.Generator().manual_seed(13)
    x, y = _point(problem, (3,), gen)
    if setting == "plsc":
        y = y + 0.3
    z = _samples(problem, (3, 7), gen)
    w = torch.rand(3, 7, generator=gen, dtype=DT)
    w = w / w.sum(1, keepdim=True)
    H = problem.x_hessian(x, y, z, w)
    want = Problem.x_hessian(problem, x, y, z, w)  # the base class: autograd
    assert H.shape == (3, problem.dim_x, problem.dim_x)
    torch.testing.assert_close(H, want, rtol=1e-10, atol=1e-10)
    for r in range(3):
        ref = torch.autograd.functional.hessian(
            lambda xr, r=r: problem.objective(xr[None], y[r:r + 1], z[r:r + 1], w[r:r + 1]).sum(), x[r])
        torch.testing.assert_close(H[r], ref, rtol=1e-10, atol=1e-10)


def test_x_curvature_is_the_smallest_eigenvalue_on_the_span_of_the_gradients():
    problem, pool = _small("plsc", plsc_rank=2)
    z, w = pool.z[None], _uniform(len(pool.z))
    x = torch.randn(1, 6, generator=torch.Generator().manual_seed(14), dtype=DT)
    y = torch.tensor([[0.3, 1.1]], dtype=DT)
    H = problem.x_hessian(x, y, z, w)[0]
    ev = torch.linalg.eigvalsh(H)
    assert ev.min().abs() < 1e-10 * ev.max()  # rank 2 < 6: flat directions, not strongly convex
    mu = x_curvature(problem, x, y, z, w)
    # the iterates move in the rank-2 row space of Φ only, where F is strongly convex
    torch.testing.assert_close(mu, ev[-2:].min()[None], rtol=1e-8, atol=0)
    cc, cc_pool = _small("cc")  # full rank (N ≫ d): μ is the plain smallest eigenvalue
    zc, wc = cc_pool.z[None], _uniform(len(cc_pool.z))
    xc, yc = torch.zeros(1, cc.dim_x, dtype=DT), torch.zeros(1, 1, dtype=DT)
    full = torch.linalg.eigvalsh(cc.x_hessian(xc, yc, zc, wc))[:, 0]
    assert full > 1e-3
    torch.testing.assert_close(x_curvature(cc, xc, yc, zc, wc), full)
    # N = 3 < d + 2: a singular Hessian whose flat direction the linear (α) term pushes along
    few, fw = zc[:, :3], _uniform(3)
    assert x_curvature(cc, xc, yc, few, fw).abs() < 1e-10


def test_auc_score_matches_sklearn_with_ties_padding_and_weights():
    problem = AUCProblem(2, p=0.4, l2=0.0, radius=1.0)
    gen = torch.Generator().manual_seed(12)
    n = 300
    feat = torch.randint(0, 4, (2, n, 2), generator=gen).to(DT)  # few values: many ties
    lab = torch.where(torch.rand(2, n, generator=gen) < 0.4, 1.0, -1.0).to(DT)
    z = torch.cat([feat, lab[..., None]], -1)
    x = torch.tensor([[1.0, 0.0, 0.0, 0.0], [1.0, 2.0, 0.3, 0.0]], dtype=DT)
    mask = (torch.rand(2, n, generator=gen) < 0.7).to(DT)
    z = torch.where(mask[..., None] > 0, z, torch.full_like(z, 1e6))  # padding: garbage rows
    for weights in (
        mask / mask.sum(-1, keepdim=True),
        mask * torch.rand(2, n, generator=gen, dtype=DT),
    ):
        auc = problem.score(x, z, weights)["auc"]
        for r in range(2):
            keep = mask[r] > 0
            s = (z[r, keep, :2] * x[r, :2]).sum(-1).numpy()
            want = roc_auc_score(
                lab[r, keep].numpy() > 0, s, sample_weight=weights[r, keep].numpy()
            )
            assert abs(auc[r].item() - want) < 1e-12
    # shared test set (1, n) for several x; one-class rows give NaN
    auc = problem.score(x, z[:1], mask[:1])["auc"]
    assert auc.shape == (2,)
    only_neg = ((lab[:1] < 0) & (mask[:1] > 0)).to(DT)
    assert torch.isnan(problem.score(x, z[:1], only_neg)["auc"]).all()
    assert _problem("plsc").score(torch.zeros(2, 4, dtype=DT), z, mask) == {}


# ----------------------------------------------------------------------------- data


@pytest.mark.parametrize("setting", SETTINGS)
def test_make_problem_is_deterministic_in_data_seed(setting):
    pc = ProblemConfig(setting=setting)
    dc = DataConfig(features=7, pool_samples=120, test_samples=40, data_seed=3)
    p1, a = make_problem(pc, dc)
    p2, b = make_problem(pc, dc)
    _, c = make_problem(pc, DataConfig(features=7, pool_samples=120, test_samples=40, data_seed=4))
    assert (
        torch.equal(a.z, b.z) and torch.equal(a.z_test, b.z_test) and torch.equal(a.label, b.label)
    )
    assert not torch.equal(a.z, c.z)
    assert a.z.shape == (120, p1.dim_z) and a.z_test.shape == (40, p1.dim_z)
    assert a.z.dtype == DT and a.label.dtype == torch.int64 and a.num_labels == 2
    assert set(a.label.tolist()) == {0, 1} and p1.setting == setting
    feats = a.z[:, : {"cc": 7, "scsc": 7, "plsc": 7, "ncnc": 8}[setting]]
    # ncnc: ×ncnc_scale; plsc: ×sqrt(rank/features) so that E‖φ‖² = rank
    scale = {"ncnc": 0.5, "plsc": (pc.plsc_rank / 7) ** 0.5}.get(setting, 1.0)
    torch.testing.assert_close(
        feats.mean(0), torch.zeros(feats.shape[1], dtype=DT), rtol=0, atol=1e-12
    )
    torch.testing.assert_close(
        feats.std(0, unbiased=False), torch.full((feats.shape[1],), scale, dtype=DT)
    )


def test_auc_problem_fixes_p_from_the_pool_and_labels_match():
    problem, pool = make_problem(
        ProblemConfig(setting="scsc", l2=0.05),
        DataConfig(features=4, pool_samples=300, test_samples=50),
    )
    assert problem.p == pytest.approx(pool.label.double().mean().item())
    assert problem.l2 == 0.05
    torch.testing.assert_close(pool.z[:, -1], torch.where(pool.label == 1, 1.0, -1.0).to(DT))
    cc, _ = make_problem(
        ProblemConfig(setting="cc", l2=0.05),
        DataConfig(features=4, pool_samples=300, test_samples=50),
    )
    assert cc.l2 == 0.0


def test_breast_cancer_split_and_errors():
    problem, pool = make_problem(
        ProblemConfig(setting="cc"),
        DataConfig(dataset="breast_cancer", pool_samples=341, test_samples=228),
    )
    assert pool.z.shape == (341, 31) and pool.z_test.shape == (228, 31) and problem.dim_x == 32
    with pytest.raises(UserError, match="569"):
        make_problem(ProblemConfig(setting="cc"), DataConfig(dataset="breast_cancer"))
    with pytest.raises(UserError):
        make_problem(ProblemConfig(setting="plsc"), DataConfig(dataset="breast_cancer"))
    with pytest.raises(UserError):
        make_problem(ProblemConfig(setting="ncnc"), DataConfig(dataset="breast_cancer"))


def test_plsc_features_are_rank_deficient_and_bad_configs_raise():
    _, pool = _small("plsc", plsc_rank=3)
    assert int(torch.linalg.matrix_rank(pool.z[:, :6])) == 3
    assert torch.equal(pool.z[:, -1].long(), pool.label)
    for bad in (dict(plsc_rank=6), dict(plsc_rank=0), dict(plsc_mu=0.0)):
        with pytest.raises(UserError):
            _small("plsc", **bad)
    with pytest.raises(UserError):
        _small("cc", y_radius=0.0)
    with pytest.raises(UserError):
        make_problem(ProblemConfig(setting="cc"), DataConfig(pool_samples=1))
    assert np.isfinite(pool.z.numpy()).all()


def test_min_quadratic_reports_unbounded_below_as_minus_inf():
    from papers.dsgda.problems import _min_quadratic

    Q = torch.diag(torch.tensor([1.0, 0.0], dtype=DT))  # θᵀQθ + 2gᵀθ: min −g₁² if g₂ = 0
    zero = torch.tensor(0.0, dtype=DT)
    theta, value = _min_quadratic(Q, torch.tensor([1.0, 0.0], dtype=DT), zero)
    assert value.item() == -1.0 and theta.tolist() == [-1.0, 0.0]
    assert _min_quadratic(Q, torch.tensor([1.0, 0.5], dtype=DT), zero)[1].item() == -float("inf")
