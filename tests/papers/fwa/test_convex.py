import numpy as np
import pytest
import torch

from papers.fwa import convex
from papers.fwa.config import ConvexConfig
from papers.fwa.theory import convergence_ratio
from shared.tracking import Tracker


@pytest.fixture
def tiny():
    cfg = ConvexConfig(datasets=["synthetic"], synthetic_samples=80, synthetic_features=3,
                       steps=200, eval_first=4, eval_points=5, windows=[1, 2, 10])
    return cfg, convex.prepare(cfg)


def test_each_window_is_evaluated_from_its_first_horizon_with_k_at_most_half_of_T(tiny, tmp_path):
    cfg, data = tiny
    out = convex.run_seed(cfg, 0, Tracker(tmp_path, slug="t", group="g", name="n", use_wandb=False), data)
    curves = out["synthetic"]["sqrt"]
    assert curves["sgd"]["T"] == [4, 11, 28, 75, 200]  # geomspace(4, 200, 5)
    assert curves["fwa2"]["T"] == [4, 11, 28, 75, 200]
    assert curves["fwa10"]["T"] == [28, 75, 200]  # T ≥ 2k = 20
    assert curves["fwa1"]["value"] == curves["sgd"]["value"]
    assert all(v > 0 for v in curves["sgd"]["value"])  # F(w) − F* of a non-optimal point


def test_aggregate_ratio_is_the_ratio_of_seed_means_next_to_the_theory(tiny, tmp_path):
    cfg, data = tiny
    tracker = Tracker(tmp_path, slug="t", group="g", name="n", use_wandb=False)
    per_seed = [convex.run_seed(cfg, s, tracker, data) for s in (0, 1)]
    entry = convex.aggregate(cfg, per_seed)["synthetic"]["sqrt"]
    sgd = np.mean([s["synthetic"]["sqrt"]["sgd"]["value"][-1] for s in per_seed])
    fwa = np.mean([s["synthetic"]["sqrt"]["fwa10"]["value"][-1] for s in per_seed])
    assert entry["fwa10"]["ratio"][-1] == pytest.approx(fwa / sgd, rel=1e-12)
    assert entry["fwa10"]["theory"][-1] == convergence_ratio(200, 10, cfg.theory_c0)


def test_step_constants_cap_the_bound_optimal_step_at_one_over_beta():
    X = np.array([[1.0, 0.0], [0.0, 1.0]])
    y = np.array([1.0, -1.0])
    w_star = np.array([3.0, -4.0])
    steps = convex.step_constants(X, y, w_star, 0.0, T=100, inv_shift=0.1)
    # G² = E‖y x / 2‖² = 1/4, D = 5 → D/G = 10; β = max‖x‖²/4 = 1/4 → 1/β = 4 caps it
    assert steps["bound_optimal"] == pytest.approx(10.0) and steps["beta"] == 0.25
    assert steps["lr"] == {"sqrt": pytest.approx(4.0), "const": pytest.approx(1.0),  # D/(G√T) = 1
                           "inv": pytest.approx(4.0 * 11.0)}  # α_t = c/(t + 10), α₁ = 4
    assert steps["shift"] == {"sqrt": 0.0, "const": 0.0, "inv": 10.0}
    assert steps["first"] == {"sqrt": pytest.approx(4.0), "const": pytest.approx(1.0),
                              "inv": pytest.approx(4.0)}


def test_the_step_rule_gives_alpha_beta_at_most_2_on_both_convex_datasets():
    cfg = ConvexConfig()  # breast_cancer and synthetic, every schedule, multiplier 1
    for name, (X, _, _, lrs, shifts, steps) in convex.prepare(cfg).items():
        beta = convex.smoothness(X, cfg.l2)
        assert steps["beta"] == beta
        for schedule in cfg.schedules:
            alphas = lrs[schedule] * (np.arange(1, cfg.steps + 1) + shifts[schedule]) ** (
                -{"sqrt": 0.5, "const": 0.0, "inv": 1.0}[schedule])
            assert alphas.max() * beta <= 2.0, (name, schedule)
            assert alphas[0] == pytest.approx(steps["first"][schedule])
    # the breast-cancer bound-optimal c = D/G alone would break it by ~170×
    X, _, _, _, _, steps = convex.prepare(cfg)["breast_cancer"]
    assert steps["bound_optimal"] * steps["beta"] > 100


def test_autocorrelation_time_of_an_ar1_series_is_one_plus_rho_over_one_minus_rho():
    rng = np.random.default_rng(0)
    rho, n = 0.9, 200_000
    x = np.zeros(n)
    noise = rng.standard_normal(n)
    for t in range(1, n):
        x[t] = rho * x[t - 1] + noise[t]
    assert convex.autocorrelation_time(x) == pytest.approx((1 + rho) / (1 - rho), rel=0.1)
    assert convex.autocorrelation_time(rng.standard_normal(n)) == pytest.approx(1.0, abs=0.1)


def test_diagnostics_are_sgds_suboptimality_at_a_quarter_of_T_and_tau_over_the_last_half(tmp_path):
    cfg = ConvexConfig(datasets=["synthetic"], synthetic_samples=80, synthetic_features=3,
                       steps=200, eval_first=50, eval_points=2, windows=[1, 2])
    out = convex.run_seed(cfg, 0, Tracker(tmp_path, slug="t", group="g", name="n", use_wandb=False),
                          convex.prepare(cfg))
    for schedule in cfg.schedules:
        diag, sgd = out["diagnostics"]["synthetic"][schedule], out["synthetic"][schedule]["sgd"]
        assert sgd["T"] == [50, 200]
        assert diag["quarter"] == pytest.approx(sgd["value"][0], rel=1e-12)
        assert diag["length"] == 100 and diag["tau"] >= 1.0
    summary = convex.diagnostics(cfg, [out])["synthetic"]["sqrt"]
    assert summary["final"] == [out["synthetic"]["sqrt"]["sgd"]["value"][-1]]
    assert convex.diagnostics(cfg, [{"synthetic": out["synthetic"]}]) is None


def test_each_schedule_draws_its_own_sample_indices(tiny, tmp_path, monkeypatch):
    """The schedules share the data and w₀ = 0 but not the index stream (convex.run_dataset)."""
    from papers.fwa.problems import LogisticProblem

    cfg, data = tiny
    drawn = []
    real = LogisticProblem.sample_grads

    def spy(self, params, idx):
        drawn.append(idx.clone())
        return real(self, params, idx)

    monkeypatch.setattr(LogisticProblem, "sample_grads", spy)
    tracker = Tracker(tmp_path, slug="t", group="g", name="n", use_wandb=False)
    convex.run_seed(cfg, 0, tracker, data)
    idx = torch.stack(drawn)  # (steps, schedules)
    assert idx.shape == (cfg.steps, len(cfg.schedules))
    for a in range(len(cfg.schedules)):
        for b in range(a + 1, len(cfg.schedules)):
            assert (idx[:, a] != idx[:, b]).float().mean() > 0.9  # 80 samples: ~99 % differ
    drawn.clear()
    convex.run_seed(cfg, 0, tracker, data)
    assert torch.equal(torch.stack(drawn), idx)  # the same seed draws the same streams
