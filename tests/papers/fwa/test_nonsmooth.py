"""The non-smooth construction: F* = 0 by a dual certificate, the oracle walks one coordinate
per step, and the last iterate's gap to the k = T/2 average grows with T (the log factor)."""

import math

import numpy as np
import pytest

from papers.fwa import nonsmooth


def _matrix(T):
    a, b = nonsmooth.coefficients(T)
    H = np.zeros((T + 1, T))
    for i in range(T + 1):
        H[i, :i] = a[:i]
        if i < T:
            H[i, i] = -b[i]
    return H


def test_values_are_the_rows_of_the_construction_times_x():
    T = 6
    rng = np.random.default_rng(0)
    x = rng.standard_normal(T)
    a, b = nonsmooth.coefficients(T)
    np.testing.assert_allclose(nonsmooth.values(x, a, b), _matrix(T) @ x, rtol=1e-13, atol=1e-15)
    assert a[-1] == 1 / 8 and a[0] == 1 / (8 * T) and b[-1] == 0.5


@pytest.mark.parametrize("T", [5, 64])
def test_the_certificate_proves_f_star_is_zero(T):
    lam = nonsmooth.certificate(T)
    assert lam.min() > 0 and lam.sum() == pytest.approx(1.0)
    assert np.abs(lam @ _matrix(T)).max() < 1e-15  # Σ λ_i h_i = 0 → f ≥ 0 on the ball; f(0) = 0


def test_subgradient_is_the_first_maximising_row_and_walks_one_coordinate_per_step():
    T = 8
    a, b = nonsmooth.coefficients(T)
    x = np.zeros(T)
    np.testing.assert_array_equal(nonsmooth.subgradient(x, a, b), _matrix(T)[0])  # all tie at 0
    for t in range(1, 5):
        x = x - nonsmooth.subgradient(x, a, b) / math.sqrt(t)
        assert np.count_nonzero(x) == t  # step t switched coordinate t on


def test_last_iterate_over_the_half_window_average_grows_with_T():
    Ts = [32, 128, 512]
    rows = nonsmooth.sweep(Ts, [0.5], [4])
    ratio = [r["ratio"]["fwaT0.5"] for r in rows]
    assert ratio[0] > 1 and ratio[0] < ratio[1] < ratio[2]  # the log T factor of the last iterate
    for r in rows:
        assert r["value"]["sgd"] >= r["lower_bound"]  # Harvey et al.'s Ω(log T/√T)
        assert r["window"] == {"fwaT0.5": r["T"] // 2, "fwa4": 4}
    fixed = [r["ratio"]["fwa4"] for r in rows]
    assert fixed[0] > fixed[-1] > 1  # a fixed window's gain shrinks with T
