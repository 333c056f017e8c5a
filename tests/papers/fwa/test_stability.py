import numpy as np
import pytest

from papers.fwa.stability import growth_exponent


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
