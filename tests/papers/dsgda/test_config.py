"""Every shipped config loads, its grid is consistent (N divisible by every m, torus sides
≥ 2) and its mixing matrices build; paper.yaml is the multi-process config; every numeric
field has a range and a value outside it (or a broken cross-field rule) is one line, exit 2."""

from pathlib import Path

import pytest

import papers.dsgda
from papers.dsgda.config import DSGDAConfig
from papers.dsgda.experiment import grid
from papers.dsgda.topology import mixing_matrix, spectral_gap
from shared.config import load_config, numeric_fields_without_range

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


def test_every_numeric_field_declares_its_range():
    assert numeric_fields_without_range(DSGDAConfig) == []


@pytest.mark.parametrize("override,message", [
    ("sgda.clients=0", "'sgda.clients': 0 is out of range (allowed: >= 1)"),
    ("sgda.lr_x=-0.01", "'sgda.lr_x': -0.01 is out of range (allowed: > 0)"),  # was ε = 1.9e35, exit 0
    ("sgda.lr_y=0", "'sgda.lr_y': 0 is out of range"),
    ("sgda.steps=-5", "'sgda.steps': -5 is out of range"),
    ("sgda.local_steps=0", "'sgda.local_steps': 0 is out of range"),
    ("sgda.batch_size=0", "'sgda.batch_size': 0 is out of range"),
    ("sgda.samples_per_client=0", "'sgda.samples_per_client': 0 is out of range"),
    ("sgda.eval_points=0", "'sgda.eval_points': 0 is out of range"),
    ("problem.y_radius=0", "'problem.y_radius': 0 is out of range (allowed: > 0)"),
    ("problem.l2=0", "'problem.l2': 0 is out of range"),
    ("problem.plsc_mu=-1", "'problem.plsc_mu': -1 is out of range"),
    ("problem.ncnc_dim=0", "'problem.ncnc_dim': 0 is out of range"),
    ("problem.init_scale=-0.1", "'problem.init_scale': -0.1 is out of range (allowed: >= 0)"),
    ("data.test_samples=0", "'data.test_samples': 0 is out of range"),
    ("data.skew_alpha=0", "'data.skew_alpha': 0 is out of range"),
    ("data.features=0", "'data.features': 0 is out of range"),
    ("num_seeds=0", "'num_seeds': 0 is out of range"),
    ("sweep.pairs=0", "'sweep.pairs': 0 is out of range"),
    ("sweep.processes=0", "'sweep.processes': 0 is out of range"),
    ("sweep.etas=[0.01,-0.05]", "'sweep.etas[1]': -0.05 is out of range (allowed: > 0)"),
    ("sweep.clients=[0,4]", "'sweep.clients[0]': 0 is out of range"),
    ("sweep.etas=[]", "'sweep.etas': the list is empty"),
    ("sweep.local_steps=[]", "'sweep.local_steps': the list is empty"),
    ("sweep.total_samples=[]", "'sweep.total_samples': the list is empty"),
    ("sweep.settings=[]", "'sweep.settings': the list is empty"),  # was an empty result set
    ("sweep.sweeps=[]", "'sweep.sweeps': the list is empty"),
    ("sweep.topologies=[]", "'sweep.topologies': the list is empty"),
    ("sgda.local_steps=100", "sgda.local_steps = 100 exceeds sgda.steps = 60"),  # K ≤ T
    ("sweep.local_steps=[1,61]", "sweep.local_steps has K = 61 > sgda.steps = 60"),
    ("sgda.clients=100 sgda.samples_per_client=20", "100 × 20 needs more than data.pool_samples = 2000"),
])
def test_out_of_range_values_are_one_line(one_line_error, override, message):
    command = "reproduce" if override.startswith("sweep.") else "train"
    assert message in one_line_error("dsgda", command, ["wandb=false", *override.split()])
