import torch

from papers.fwa.problems import LogisticProblem, MLPProblem
from papers.fwa.stability import neighbouring_pairs, pair_distance
from papers.fwa.trajectory import horizons, run_trajectory


def test_one_model_matches_a_hand_written_sgd_loop():
    gen = torch.Generator().manual_seed(1)
    X = torch.randn(1, 8, 3, generator=gen, dtype=torch.float64)
    y = torch.where(torch.rand(1, 8, generator=gen) < 0.5, -1.0, 1.0).double()
    problem = LogisticProblem(X, y, 0.1)
    c, power = torch.tensor([0.5], dtype=torch.float64), torch.tensor([0.5], dtype=torch.float64)
    seen = {}
    run_trajectory(problem, problem.init(1, None), steps=20, c=c, power=power, windows=[1, 4],
                   eval_at=[20], generator=torch.Generator().manual_seed(7),
                   groups=torch.tensor([0]),
                   on_eval=lambda T, avg, pop: seen.update({m: avg.weights(m, pop)[0].clone()
                                                            for m in avg.methods}))
    ref = torch.Generator().manual_seed(7)
    w = torch.zeros(3, dtype=torch.float64)
    history = []
    for t in range(1, 21):
        i = int(torch.randint(8, (1,), generator=ref))
        x, yi = X[0, i], y[0, i]
        grad = -yi * torch.sigmoid(-yi * (x @ w)) * x + 0.1 * w
        w = w - 0.5 / t**0.5 * grad
        history.append(w)
    torch.testing.assert_close(seen["sgd"][0], w, rtol=1e-14, atol=1e-15)
    torch.testing.assert_close(seen["fwa4"][0], torch.stack(history[-4:]).mean(0), rtol=1e-14, atol=1e-15)
    torch.testing.assert_close(seen["swa"][0], torch.stack(history).mean(0), rtol=1e-12, atol=1e-14)


def test_neighbouring_datasets_differ_in_exactly_one_sample():
    X = torch.arange(40, dtype=torch.float64).view(20, 2)
    y = torch.ones(20, dtype=torch.float64)
    Xp, _ = neighbouring_pairs(X, y, n=6, pairs=3, gen=torch.Generator().manual_seed(0))
    for p in range(3):
        differs = (Xp[2 * p] != Xp[2 * p + 1]).any(-1)
        assert int(differs.sum()) == 1


def test_identical_datasets_give_zero_stability_distance():
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(10, 3, generator=gen, dtype=torch.float64)
    y = torch.where(torch.rand(10, generator=gen) < 0.5, -1.0, 1.0).double()
    Xs, ys = X.expand(4, 10, 3), y.expand(4, 10)  # two pairs, both members on the same data
    problem = MLPProblem(Xs, ys, 0.0, 5)
    init = [p.repeat_interleave(2, 0) for p in problem.init(2, gen)]
    distances = []
    run_trajectory(problem, init, steps=50, c=torch.full((4,), 0.3, dtype=torch.float64),
                   power=torch.zeros(4, dtype=torch.float64), windows=[1, 5], eval_at=[10, 50],
                   generator=gen, groups=torch.arange(4) // 2,
                   on_eval=lambda T, avg, pop: distances.append(
                       pair_distance(avg.weights("fwa5", pop))), swa=False)
    assert all(float(d.abs().max()) == 0.0 for d in distances)
    assert float(pair_distance(init).abs().max()) == 0.0


def test_horizons_are_log_spaced_and_include_the_ends():
    assert horizons(10, 1000, 3) == [10, 100, 1000]
