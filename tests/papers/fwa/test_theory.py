import math

import pytest

from papers.fwa.theory import (
    convergence_ratio,
    sgd_stability_convex,
    sgd_stability_nonconvex,
    stability_factor,
)


def test_convergence_ratio_exact_values_and_trend():
    assert convergence_ratio(1000, 1) == 1.0
    assert convergence_ratio(100, 10) == pytest.approx((2 + math.log(10)) / (2 + math.log(100)), abs=1e-15)
    ratios = [convergence_ratio(20000, k) for k in (1, 2, 5, 10, 20, 50)]
    assert all(b < a for a, b in zip(ratios, ratios[1:]))
    assert convergence_ratio(100, 10) < convergence_ratio(10000, 10) < 1


def test_stability_factor_and_bounds():
    assert stability_factor(10, 3) == pytest.approx(0.9, abs=1e-15)
    assert stability_factor(10, 1) == 1.0
    assert sgd_stability_convex(0.1, 2.0, 100, 50) == pytest.approx(0.4, abs=1e-15)
    # βc = 1: ((1 + 1)/(n−1)) (2cL²)^{1/2} T^{1/2}
    assert sgd_stability_nonconvex(1.0, 1.0, 1.0, 11, 16) == pytest.approx(0.2 * 2**0.5 * 4, abs=1e-12)
