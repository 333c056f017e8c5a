import numpy as np
import pytest

from papers.fwa import stability
from papers.fwa.config import SCHEDULE_POWERS, StabilityConfig
from papers.fwa.stability import growth_exponent
from papers.fwa.theory import distance_bound, step_schedule


@pytest.mark.parametrize("power", [0.5, 1.0, 2.0])
def test_growth_exponent_recovers_a_power_law(power):
    T = [10, 100, 1000, 10000]
    assert growth_exponent(T, [3.0 * t**power for t in T]) == pytest.approx(power, abs=1e-12)


def test_growth_exponent_ignores_scale():
    T = np.array([5, 50, 500])
    assert growth_exponent(T, T * 1e-9) == pytest.approx(1.0, abs=1e-9)


def test_growth_exponent_skips_horizons_before_the_runs_diverge():
    T = [10, 20, 100, 1000]
    assert growth_exponent(T, [0.0, 0.0, 0.5, 5.0]) == pytest.approx(1.0, abs=1e-12)


@pytest.fixture(scope="module")
def small_case():
    cfg = StabilityConfig(pool_samples=300, test_samples=100, sizes=[50], pairs=4, steps=400,
                          eval_first=20, eval_points=4, windows=[1, 10, 100],
                          schedules=["const", "inv"], lr={"const": 0.05, "inv": 0.1})
    data = stability.pool(cfg)
    return cfg, data, stability.run_case(cfg, "convex", 50, 0, data)


def test_fwa_distance_is_at_most_the_mean_of_delta_over_its_window(small_case):
    _, _, case = small_case
    for schedule, per in case["window_delta"].items():
        for method, mean_delta in per.items():
            final = case["dist"][schedule][method]["value"][-1]
            if method in ("sgd", "fwa1"):
                assert mean_delta == pytest.approx(final, rel=1e-12)
            else:
                assert final <= mean_delta + 1e-12


def test_measured_distance_stays_below_the_convex_bound_when_every_step_is_below_2_over_beta(small_case):
    cfg, data, case = small_case
    const = stability.bound_constants(data)
    for schedule in cfg.schedules:
        assert cfg.lr[schedule] <= 2 / const["beta"]  # the theorem's hypothesis holds here
        alphas = step_schedule(cfg.steps, cfg.lr[schedule], SCHEDULE_POWERS[schedule])
        sgd = case["dist"][schedule]["sgd"]
        for T, d in zip(sgd["T"], sgd["value"]):
            assert d <= distance_bound(alphas[:T], const["L"], 50)
        fwa = case["dist"][schedule]["fwa100"]["value"][-1]
        assert fwa <= distance_bound(alphas, const["L"], 50, k=100)
