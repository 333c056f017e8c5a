"""Mixing matrices: symmetric, doubly stochastic, the brief's weights, and spectral gaps
against closed forms."""

import math

import numpy as np
import pytest

from papers.dsgda.topology import (
    check_mixing,
    describe,
    mixing_matrix,
    neighbours,
    second_eigenvalue,
    spectral_gap,
    torus_shape,
)
from shared import UserError


def _assert_mixing(W):
    assert np.allclose(W, W.T, atol=0)
    assert np.allclose(W.sum(0), 1, atol=1e-12) and np.allclose(W.sum(1), 1, atol=1e-12)
    assert (W >= 0).all()


@pytest.mark.parametrize("topology,m", [
    ("full", 1), ("full", 7), ("ring", 2), ("ring", 3), ("ring", 8), ("ring", 13),
    ("torus", 4), ("torus", 9), ("torus", 12), ("torus", 16), ("star", 2), ("star", 9),
])
def test_every_topology_is_symmetric_doubly_stochastic(topology, m):
    _assert_mixing(mixing_matrix(topology, m))


def test_networkx_graph_and_user_matrix(tmp_path):
    W = mixing_matrix("graph", 10, graph="random_regular_graph:d=3,seed=0")
    _assert_mixing(W)
    assert all(len(neighbours(W, i)) == 3 for i in range(10))
    assert np.allclose(W[W > 0][~np.isclose(W[W > 0], W.diagonal().min())], 0.25)  # 1/(1+3)
    path = tmp_path / "w.txt"
    np.savetxt(path, W)
    assert np.allclose(mixing_matrix("matrix", 10, matrix_path=str(path)), W)
    np.save(tmp_path / "w.npy", W)
    assert np.allclose(mixing_matrix("matrix", 10, matrix_path=str(tmp_path / "w.npy")), W)


def test_brief_weights_ring_third_torus_fifth():
    ring = mixing_matrix("ring", 6)
    assert [ring[0, 0], ring[0, 1], ring[0, 5]] == pytest.approx([1 / 3] * 3, abs=1e-15)
    assert ring[0, 2] == ring[0, 3] == 0
    torus = mixing_matrix("torus", 12)  # 3 × 4
    assert torus_shape(12) == (3, 4)
    assert set(np.round(torus[0][torus[0] > 0], 12)) == {0.2}
    assert len(neighbours(torus, 0)) == 4


@pytest.mark.parametrize("m", range(3, 13))
def test_ring_spectral_gap_closed_form(m):
    lam = max(abs(1 / 3 + 2 / 3 * math.cos(2 * math.pi * k / m)) for k in range(1, m))
    assert second_eigenvalue(mixing_matrix("ring", m)) == pytest.approx(lam, abs=1e-12)
    assert spectral_gap(mixing_matrix("ring", m)) == pytest.approx(1 - lam, abs=1e-12)


@pytest.mark.parametrize("p,q", [(3, 3), (3, 4), (4, 4), (5, 5)])
def test_torus_spectral_gap_closed_form(p, q):
    lam = max(abs(0.2 * (1 + 2 * math.cos(2 * math.pi * a / p) + 2 * math.cos(2 * math.pi * b / q)))
              for a in range(p) for b in range(q) if (a, b) != (0, 0))
    assert second_eigenvalue(mixing_matrix("torus", p * q)) == pytest.approx(lam, abs=1e-12)


@pytest.mark.parametrize("m", [3, 5, 10])
def test_star_and_full_spectral_gaps(m):
    # Metropolis star: W = I − L/m, the star Laplacian has eigenvalues 0, 1 (m−2 times), m.
    assert second_eigenvalue(mixing_matrix("star", m)) == pytest.approx(1 - 1 / m, abs=1e-12)
    assert spectral_gap(mixing_matrix("full", m)) == pytest.approx(1.0, abs=1e-12)


def test_connectivity_order_full_torus_ring():
    gaps = [describe(mixing_matrix(t, 16))["spectral_gap"] for t in ("full", "torus", "ring")]
    assert gaps[0] > gaps[1] > gaps[2] > 0


def test_bad_matrices_and_graphs_are_one_line_user_errors(tmp_path):
    bad = np.array([[0.5, 0.5], [0.2, 0.8]])
    with pytest.raises(UserError, match="symmetric"):
        check_mixing(bad, 2)
    with pytest.raises(UserError, match="doubly stochastic"):
        check_mixing(np.array([[0.5, 0.4], [0.4, 0.5]]), 2)
    with pytest.raises(UserError, match="shape"):
        check_mixing(np.eye(3), 2)
    with pytest.raises(UserError, match="not connected"):
        mixing_matrix("graph", 6, graph="empty_graph")
    with pytest.raises(UserError, match="no graph generator"):
        mixing_matrix("graph", 6, graph="no_such_graph")
    with pytest.raises(UserError, match="no such file"):
        mixing_matrix("matrix", 4, matrix_path=str(tmp_path / "missing.npy"))
    (tmp_path / "junk.txt").write_text("1 2\nthree\n")
    with pytest.raises(UserError, match="cannot read"):
        mixing_matrix("matrix", 2, matrix_path=str(tmp_path / "junk.txt"))
