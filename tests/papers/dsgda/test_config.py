"""Every shipped config loads, its grid is consistent (N divisible by every m, torus sides
≥ 2) and its mixing matrices build; paper.yaml runs one process per client."""

from pathlib import Path

import pytest

import papers.dsgda
from papers.dsgda.config import DSGDAConfig
from papers.dsgda.experiment import grid
from papers.dsgda.topology import mixing_matrix, spectral_gap
from shared.config import load_config

CONFIGS = Path(papers.dsgda.__file__).parent / "configs"


@pytest.mark.parametrize("name", ["smoke", "small", "paper"])
def test_config_grid_and_topologies_build(name):
    cfg = load_config(DSGDAConfig, CONFIGS, name, [])
    points = [p for entries in grid(cfg).values() for _, p in entries]
    assert len(points) >= 15
    for p in set(points):
        mixing_matrix(p.topology, p.m)
        assert p.m * p.n < cfg.data.pool_samples


def test_paper_config_is_multi_process_at_larger_m_and_N():
    small = load_config(DSGDAConfig, CONFIGS, "small", [])
    paper = load_config(DSGDAConfig, CONFIGS, "paper", [])
    assert paper.sgda.backend == "distributed" and small.sgda.backend == "simulation"
    assert paper.sgda.clients > small.sgda.clients
    assert paper.sgda.clients * paper.sgda.samples_per_client > 10 * small.sgda.clients * small.sgda.samples_per_client
    W = mixing_matrix(paper.sgda.topology, paper.sgda.clients)
    assert spectral_gap(W) == pytest.approx(0.4, abs=1e-12)  # 4 × 4 torus: λ = 1/5·(1 + 2·0 + 2·1) = 3/5
