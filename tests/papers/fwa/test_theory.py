import math

import numpy as np
import pytest

from papers.fwa.theory import (
    convergence_ratio,
    distance_bound,
    logistic_constants,
    sgd_stability_convex,
    sgd_stability_nonconvex,
    stability_factor,
    step_schedule,
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


def test_distance_bound_at_a_constant_step_is_2_alpha_L_T_over_n_times_the_fwa_factor():
    alphas = step_schedule(400, 0.05, 0.0)
    assert distance_bound(alphas, 3.0, 100) == pytest.approx(2 * 0.05 * 3.0 * 400 / 100, rel=1e-12)
    assert distance_bound(alphas, 3.0, 100, k=101) == pytest.approx(
        2 * 0.05 * 3.0 * 400 / 100 * stability_factor(400, 101), rel=1e-12)
    # the loss bound is L times the distance bound
    assert 3.0 * distance_bound(alphas, 3.0, 100) == pytest.approx(
        sgd_stability_convex(0.05, 3.0, 100, 400), rel=1e-12)


def test_distance_bound_of_c_over_t_sums_the_harmonic_series():
    alphas = step_schedule(10, 2.0, 1.0)
    assert distance_bound(alphas, 1.0, 4) == pytest.approx(2 / 4 * 2.0 * sum(1 / t for t in range(1, 11)))
    with pytest.raises(ValueError):
        distance_bound(alphas, 1.0, 4, k=11)


def test_logistic_constants_are_the_largest_row_norm_and_its_square_over_four():
    X = np.array([[3.0, 4.0], [1.0, 0.0]])
    assert logistic_constants(X) == {"L": 5.0, "beta": 25.0 / 4}
