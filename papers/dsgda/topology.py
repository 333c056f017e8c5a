"""Mixing matrices W for Local-SGDA (W = 11ᵀ/m) and Local-DSGDA (sparse W), and their
spectral gap.

Every W here is symmetric and doubly stochastic. Sparse topologies use Metropolis weights
W_il = 1/(1 + max(d_i, d_l)) on the edges of a networkx graph and W_ii = 1 − Σ_l W_il, which
gives 1/3 on a ring and 1/5 on a 2-D torus (every side ≥ 3), as in the brief.
"""

from __future__ import annotations

import inspect
import math
from pathlib import Path

import networkx as nx
import numpy as np
import torch

from shared import UserError

TOL = 1e-8


def metropolis(graph: nx.Graph) -> np.ndarray:
    """Metropolis–Hastings weights of an undirected graph with nodes 0..m−1."""
    m = graph.number_of_nodes()
    W = np.zeros((m, m))
    for i, j in graph.edges():
        if i != j:
            W[i, j] = W[j, i] = 1.0 / (1 + max(graph.degree[i], graph.degree[j]))
    W[np.diag_indices(m)] = 1.0 - W.sum(1)
    return W


def torus_shape(m: int) -> tuple[int, int]:
    """The most square p × q = m."""
    p = max(d for d in range(1, math.isqrt(m) + 1) if m % d == 0)
    return p, m // p


def _graph_from_spec(spec: str, m: int) -> nx.Graph:
    """"random_regular_graph:d=3,seed=0" -> networkx.random_regular_graph(n=m, d=3, seed=0)."""
    name, _, args = spec.partition(":")
    gen = getattr(nx, name.strip(), None)
    if not callable(gen):
        raise UserError(f"sgda.graph: networkx has no graph generator '{name}'")
    kwargs = {}
    for item in filter(None, (a.strip() for a in args.split(","))):
        key, eq, value = item.partition("=")
        if not eq:
            raise UserError(f"sgda.graph: argument '{item}' must look like key=value")
        try:
            kwargs[key.strip()] = int(value) if value.strip().lstrip("-").isdigit() else float(value)
        except ValueError:
            kwargs[key.strip()] = value.strip()
    try:
        takes_n = "n" in inspect.signature(gen).parameters
        graph = gen(n=m, **kwargs) if takes_n else gen(m, **kwargs)
    except Exception as exc:  # networkx raises many types for bad arguments
        raise UserError(f"sgda.graph: {spec} failed for n={m}: {exc}") from None
    return nx.convert_node_labels_to_integers(nx.Graph(graph))


def graph_of(topology: str, m: int, spec: str = "") -> nx.Graph:
    if topology == "ring":
        return nx.cycle_graph(m) if m > 2 else nx.complete_graph(m)
    if topology == "torus":
        p, q = torus_shape(m)
        if p < 2:
            raise UserError(f"topology torus needs clients = p×q with p, q ≥ 2 (got {m}); try 9, 12 or 16")
        return nx.convert_node_labels_to_integers(nx.grid_2d_graph(p, q, periodic=True))
    if topology == "star":
        return nx.star_graph(m - 1)
    if topology == "graph":
        if not spec:
            raise UserError("topology=graph needs sgda.graph, e.g. sgda.graph=random_regular_graph:d=3,seed=0")
        return _graph_from_spec(spec, m)
    raise UserError(f"no graph for topology '{topology}'")


def load_matrix(path: str, m: int) -> np.ndarray:
    if not path:
        raise UserError("topology=matrix needs sgda.matrix_path (a .npy or text file with W)")
    file = Path(path)
    if not file.is_file():
        raise UserError(f"sgda.matrix_path: no such file {path}")
    try:
        W = np.load(file) if file.suffix == ".npy" else np.loadtxt(file, ndmin=2)
    except (ValueError, OSError) as exc:
        raise UserError(f"sgda.matrix_path: cannot read {path}: {str(exc).splitlines()[0]}") from None
    return np.asarray(W, dtype=np.float64)


def check_mixing(W: np.ndarray, m: int, where: str = "W") -> None:
    """Refuse a W that is not m×m, symmetric, non-negative and doubly stochastic."""
    if W.shape != (m, m):
        raise UserError(f"{where}: shape {W.shape} but clients = {m}")
    if not np.all(np.isfinite(W)) or (W < -TOL).any():
        raise UserError(f"{where}: entries must be finite and non-negative")
    if np.abs(W - W.T).max() > TOL:
        raise UserError(f"{where}: not symmetric")
    if np.abs(W.sum(1) - 1).max() > TOL:
        raise UserError(f"{where}: rows do not sum to 1 (not doubly stochastic)")


def mixing_matrix(topology: str, m: int, graph: str = "", matrix_path: str = "") -> np.ndarray:
    """W (m×m, float64) for a topology name."""
    if m < 1:
        raise UserError(f"clients must be ≥ 1, got {m}")
    if topology == "full":
        W = np.full((m, m), 1.0 / m)
    elif topology == "matrix":
        W = load_matrix(matrix_path, m)
    else:
        g = graph_of(topology, m, graph)
        if g.number_of_nodes() != m:
            raise UserError(f"topology {topology}: graph has {g.number_of_nodes()} nodes, clients = {m}")
        if m > 1 and not nx.is_connected(g):
            raise UserError(f"topology {topology}: the graph is not connected")
        W = metropolis(g)
    check_mixing(W, m, f"topology {topology}")
    return W


def second_eigenvalue(W: np.ndarray) -> float:
    """λ = the second-largest |eigenvalue| of a symmetric doubly stochastic W (0 for m = 1)."""
    eig = np.sort(np.abs(np.linalg.eigvalsh(W)))[::-1]
    return float(eig[1]) if len(eig) > 1 else 0.0


def spectral_gap(W: np.ndarray) -> float:
    return 1.0 - second_eigenvalue(W)


def neighbours(W: np.ndarray, i: int) -> list[int]:
    """Clients j ≠ i with W_il ≠ 0 (those client i exchanges with)."""
    return [int(j) for j in np.flatnonzero(W[i]) if j != i]


def is_full(W: np.ndarray) -> bool:
    return bool(np.allclose(W, 1.0 / len(W), atol=TOL))


def describe(W: np.ndarray) -> dict:
    """Facts a run records: λ, the spectral gap, the largest degree."""
    degrees = [len(neighbours(W, i)) for i in range(len(W))]
    return {"lambda": second_eigenvalue(W), "spectral_gap": spectral_gap(W),
            "max_degree": max(degrees) if degrees else 0}


def as_tensor(W: np.ndarray, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.as_tensor(W, dtype=dtype)
