"""Issue 20: the weak PD risk against the strong one, the moment-based population against brute
force, the two new problems (bilinear game, non-PL sinusoid) and the per-client distance."""

import pytest
import torch

from papers.dsgda.algorithm import Replicas, horizons, simulate
from papers.dsgda.config import DataConfig, ProblemConfig
from papers.dsgda.measures import client_distance, pair_distance
from papers.dsgda.problems import (
    NONPL,
    AUCProblem,
    BilinearProblem,
    NCNCProblem,
    PLSCProblem,
    Pool,
    SinusoidProblem,
    make_problem,
)
from papers.dsgda.topology import as_tensor, mixing_matrix

DT = torch.float64
ALL = ["cc", "scsc", "plsc", "ncnc", "bilinear", "nonpl"]


def _problem(setting, d=2):
    return {"cc": lambda: AUCProblem(d, p=0.3, l2=0.0, radius=2.0, setting="cc"),
            "scsc": lambda: AUCProblem(d, p=0.3, l2=0.2, radius=2.0, setting="scsc"),
            "plsc": lambda: PLSCProblem(d, groups=2, mu=0.7, radius=2.0),
            "ncnc": lambda: NCNCProblem(d, radius=2.0),
            "bilinear": lambda: BilinearProblem(d, radius=1.5),
            "nonpl": lambda: SinusoidProblem(d, 4.0, NONPL, "nonpl")}[setting]()


def _samples(problem, shape, gen):
    z = torch.randn(*shape, problem.dim_z, generator=gen, dtype=DT)
    if isinstance(problem, AUCProblem):
        z[..., -1] = torch.where(torch.rand(shape, generator=gen) < 0.4, 1.0, -1.0)
    elif isinstance(problem, PLSCProblem):
        z[..., -1] = (torch.rand(shape, generator=gen) < 0.5).to(DT)
    return z


def _points(problem, R, gen, scale=1.0):
    x = problem.project_x(scale * torch.randn(R, problem.dim_x, generator=gen, dtype=DT))
    y = problem.project_y(scale * torch.randn(R, problem.dim_y, generator=gen, dtype=DT))
    return x, y


# ----------------------------------------------------------------------------- weak vs strong


@pytest.mark.parametrize("setting", ALL)
def test_weak_pd_risk_equals_strong_for_equal_replicas_and_is_below_it_otherwise(setting):
    problem = _problem(setting)
    gen = torch.Generator().manual_seed(1)
    R, n = 6, 25
    z = _samples(problem, (R, n), gen)
    w = torch.full((R, n), 1.0 / n, dtype=DT)
    st = problem.stats(z, w)
    groups, count = torch.tensor([0, 0, 0, 1, 1, 1]), 2
    x, y = _points(problem, R, gen)

    def strong(xs, ys, s):
        return problem.primal_st(xs, s) - problem.dual_st(ys, s)

    def weak(xs, ys, s):
        return problem.weak_primal(xs, s, groups, count) - problem.weak_dual(ys, s, groups, count)

    # equal replicas (same iterate, same dataset): the expectation is over one point, weak = strong
    same = tuple(t[:1].expand(R, *t.shape[1:]) for t in st)
    x1, y1 = x[:1].expand(R, -1), y[:1].expand(R, -1)
    torch.testing.assert_close(weak(x1, y1, same), strong(x1, y1, same)[:2], rtol=1e-10, atol=1e-10)
    # different replicas: weak ≤ the group mean of the strong risk, strictly somewhere
    per = strong(x, y, st)
    mean_strong = torch.stack([per[:3].mean(), per[3:].mean()])
    gap = mean_strong - weak(x, y, st)
    assert (gap >= -1e-10).all() and gap.max() > 1e-3
    # on a shared population (one set of moments, replicas differ only in their iterates) too
    pop = tuple(t[:1] for t in st)
    per = strong(x, y, pop)
    assert (torch.stack([per[:3].mean(), per[3:].mean()]) - weak(x, y, pop) >= -1e-10).all()


@pytest.mark.parametrize("setting", ALL)
def test_stats_based_objective_is_the_weighted_mean_of_the_values(setting):
    problem = _problem(setting)
    gen = torch.Generator().manual_seed(2)
    z = _samples(problem, (3, 11), gen)
    w = torch.rand(3, 11, generator=gen, dtype=DT)
    w = w / w.sum(1, keepdim=True)
    x, y = _points(problem, 3, gen)
    direct = (w * problem.value(x[:, None], y[:, None], z)).sum(1)
    torch.testing.assert_close(problem.objective(x, y, z, w), direct, rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------- population


def _grid(lo, hi, dim, k):
    axis = torch.linspace(lo, hi, k, dtype=DT)
    return torch.cartesian_prod(*([axis] * dim)).reshape(-1, dim)


@pytest.mark.parametrize("setting", ALL)
def test_moment_population_matches_brute_force_over_a_tiny_pool(setting):
    """Pool.population (the pool's moments) gives sup_y and the weak sup_y′ mean_r of the
    population objective; brute force averages f over every pool sample on a dense grid of Y."""
    problem = _problem(setting, d=1 if setting in ("ncnc", "nonpl", "bilinear") else 2)
    gen = torch.Generator().manual_seed(3)
    z = _samples(problem, (9,), gen)
    pool = Pool(z, torch.zeros(9, dtype=torch.long), z[:2], 2)
    st = pool.population(problem)
    assert pool.population(problem) is st  # cached
    x, y = _points(problem, 3, gen)
    lo, hi = {"plsc": (0.0, 2.0), "nonpl": (-4.0, 4.0), "bilinear": (-1.5, 1.5)}.get(setting, (-2.0, 2.0))
    ys = _grid(lo, hi, problem.dim_y, 20001 if problem.dim_y == 1 else 401)
    vals = problem.value(x[:, None, None], ys[None, :, None], z[None, None])  # (3, G, 9)
    brute = vals.mean(-1).amax(-1)
    exact = problem.primal_st(x, st)
    assert (exact >= brute - 1e-10).all()
    torch.testing.assert_close(exact, brute, rtol=0, atol=2e-3)
    weak = problem.weak_primal(x, st, torch.zeros(3, dtype=torch.long), 1)
    torch.testing.assert_close(weak, vals.mean(-1).mean(0).amax(-1, keepdim=True), rtol=0, atol=2e-3)
    if problem.dim_x <= 2 and setting not in ("cc", "scsc", "plsc"):  # inf over x on a grid
        xs = _grid(-4.0, 4.0, problem.dim_x, 40001) if setting != "bilinear" else _grid(-1.5, 1.5, 1, 20001)
        vals = problem.value(xs[None, :, None], y[:, None, None], z[None, None])
        torch.testing.assert_close(problem.dual_st(y, st), vals.mean(-1).amin(-1), rtol=0, atol=2e-3)


def test_population_of_a_made_problem_is_its_pool():
    problem, pool = make_problem(ProblemConfig(setting="plsc"), DataConfig(features=7, pool_samples=300,
                                                                           test_samples=40))
    w = torch.full((1, 300), 1 / 300, dtype=DT)
    for a, b in zip(pool.population(problem), problem.stats(pool.z[None], w)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


# ----------------------------------------------------------------------------- new problems


@pytest.mark.parametrize("setting", ["bilinear", "nonpl"])
def test_new_problems_grads_and_hessian_equal_autograd(setting):
    problem = _problem(setting, d=3)
    gen = torch.Generator().manual_seed(4)
    z = _samples(problem, (5, 4), gen)
    x, y = _points(problem, 5, gen)
    x, y = x.clone().requires_grad_(True), y.clone().requires_grad_(True)
    problem.value(x[:, None], y[:, None], z).mean(-1).sum().backward()
    gx, gy = problem.grads(x.detach(), y.detach(), z)
    torch.testing.assert_close(gx, x.grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gy, y.grad, rtol=1e-12, atol=1e-12)
    w = torch.full((5, 4), 0.25, dtype=DT)
    closed = problem.x_hessian(x.detach(), y.detach(), z, w)
    torch.testing.assert_close(closed, Problem_autograd_hessian(problem, x.detach(), y.detach(), z, w),
                               rtol=1e-10, atol=1e-10)


def Problem_autograd_hessian(problem, x, y, z, w):
    from papers.dsgda.problems import Problem

    return Problem.x_hessian(problem, x, y, z, w)


def test_bilinear_has_no_curvature_and_nonpl_has_spurious_stationary_points():
    gen = torch.Generator().manual_seed(5)
    bil = _problem("bilinear", d=2)
    z = _samples(bil, (1, 30), gen)
    w = torch.full((1, 30), 1 / 30, dtype=DT)
    x, y = _points(bil, 4, gen)
    assert torch.equal(bil.x_hessian(x, y, z, w), torch.zeros(4, 2, 2, dtype=DT))
    assert (bil.project_x(torch.full((1, 2), 9.0, dtype=DT)) == 1.5).all()  # X is a box too
    # nonpl, one coordinate, no offsets: F(·, 0) has a local minimum near π above the global one
    nonpl = _problem("nonpl", d=1)
    zero = torch.zeros(1, 1, 2, dtype=DT)
    t = torch.linspace(2.0, 4.5, 2001, dtype=DT)[:, None]
    f = nonpl.value(t, torch.zeros_like(t), zero[0])
    i = int(f.argmin())
    assert 0 < i < len(t) - 1 and f[i] > 0.5  # interior local min, F(0, 0) = 0 is the global one
    g = nonpl.value(torch.zeros_like(t), t, zero[0])  # F(0, ·): a local max near π, below F(0, 0) = 0
    j = int(g.argmax())
    assert 0 < j < len(t) - 1 and g[j] < -0.5
    # Yang et al.'s ncnc keeps its coefficients
    ncnc = NCNCProblem(1, 2.0)
    torch.testing.assert_close(ncnc.value(torch.tensor([[0.7]], dtype=DT), torch.tensor([[0.3]], dtype=DT),
                                          zero[0]),
                               torch.tensor([0.49 + 3 * torch.sin(torch.tensor(0.7)) ** 2
                                             * torch.sin(torch.tensor(0.3)) ** 2 - 0.36
                                             - 10 * torch.sin(torch.tensor(0.3)) ** 2], dtype=DT))


# ----------------------------------------------------------------------------- per-client distance


@pytest.mark.parametrize(("topology", "K"), [("ring", 4), ("full", 3)])
def test_per_client_distance_is_at_least_the_consensus_distance(topology, K):
    problem = _problem("ncnc", d=2)
    gen = torch.Generator().manual_seed(6)
    m, n, pairs = 6, 5, 3
    z = _samples(problem, (2 * pairs, m, n), gen)
    z[1::2] = z[0::2]
    z[1::2, 0, 0] += 1.0  # each pair differs in one sample of client 0
    x0, y0 = _points(problem, 1, gen)
    W = as_tensor(mixing_matrix(topology, m), DT)
    R = 2 * pairs
    reps = Replicas(z=z, n=torch.full((R,), n), stream=torch.arange(pairs).repeat_interleave(2),
                    lr_x=torch.full((R,), 0.05, dtype=DT), lr_y=torch.full((R,), 0.05, dtype=DT),
                    K=torch.full((R,), K), W=W.expand(R, m, m), x0=x0.expand(R, -1), y0=y0.expand(R, -1),
                    num_streams=pairs)
    trace = simulate(problem, reps, 40, 1, horizons(40, 6), seed=0)
    for output in ("last", "avg"):
        eps, client = pair_distance(trace, output), client_distance(trace, output)
        assert client.shape == eps.shape
        assert (client >= eps - 1e-14).all()
    # between mixings (t not a multiple of K) the clients disagree, so it is strictly larger somewhere
    assert (client_distance(trace, "last") > pair_distance(trace, "last") + 1e-6).any()
    # by hand: the mean over clients of the pair's per-client distances, at the horizons
    assert trace["client_eps"].shape == (pairs, len(trace["T"]))
