"""The torch.distributed backend (4 processes on loopback, gloo, launched by torchrun) gives
the same iterates as the vectorised simulation for the same seed: gossip with ring
neighbours only, and server averaging by all-reduce."""

import os
import subprocess
import sys

import pytest
import torch


def _train(repo_root, runs, launcher, *extra):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = ["-m", "papers.dsgda", "train", "--config", "smoke", f"runs_dir={runs}", "wandb=false",
            "sgda.clients=4", "sgda.steps=40", "sgda.local_steps=3", "sweep.pairs=2", *extra]
    proc = subprocess.run([*launcher, *args], cwd=repo_root, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = (runs / "dsgda" / "smoke").glob("train-*/seed*")
    return torch.load(run / "trace.pt", weights_only=True), run


@pytest.mark.skipif(sys.platform != "linux", reason="gloo on loopback")
@pytest.mark.parametrize("topology,setting", [("ring", "cc"), ("full", "plsc")])
def test_four_processes_match_the_simulation(repo_root, tmp_path, topology, setting):
    extra = [f"sgda.topology={topology}", f"problem.setting={setting}"]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "4"]
    dist_trace, run = _train(repo_root, tmp_path / "dist", torchrun, "sgda.backend=distributed", *extra)
    sim_trace, _ = _train(repo_root, tmp_path / "sim", [sys.executable], *extra)
    assert dist_trace["T"] == sim_trace["T"]
    for key in ("x", "y", "x_avg", "y_avg", "consensus"):
        assert dist_trace[key].shape == sim_trace[key].shape
        assert torch.allclose(dist_trace[key], sim_trace[key], rtol=1e-10, atol=1e-12), key
    assert not torch.equal(dist_trace["x"][:, 0], dist_trace["x"][:, -1])  # it moved
    summary = (run / "summary.json").read_text()
    assert '"backend": "distributed"' in summary and '"rounds": 13' in summary  # 40 // 3 mixings
