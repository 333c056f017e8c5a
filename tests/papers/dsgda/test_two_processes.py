"""The torch.distributed backend under torchrun (gloo on loopback, CPU) with m = 8 clients on
2 and on 4 processes, each process a contiguous block of clients (4 or 2), against the
vectorised simulation of the same run (in this process): the same iterates, time averages and
consensus distances to rtol 1e-10, the same measures, one run directory, one result line, no
rank crash, and `eval` of the distributed run recomputes its summary. Ring gossip exchanges
only the clients that cross a block boundary; the full W mixes by one all-reduce.

One launch per world size checks everything it can (a launch costs several seconds of
process start-up on two cores)."""

import json
import sys

import pytest
import torch

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="gloo on loopback")

COMMON = ["--config", "smoke", "wandb=false", "sgda.clients=8", "sgda.samples_per_client=9",
          "sgda.steps=40", "sgda.local_steps=3", "sweep.pairs=2"]


def _simulate(cli, runs, extra):
    code, out, err = cli("dsgda", "train", *COMMON, f"runs_dir={runs}", *extra)
    assert code == 0, err[-2000:]
    (run,) = (runs / "dsgda" / "smoke").glob("train-*/seed*")
    return run


def _check(launch, list_run_dirs, cli, tmp_path, nproc, topology, setting):
    extra = [f"sgda.topology={topology}", f"problem.setting={setting}"]
    runs = tmp_path / "dist"
    proc = launch("dsgda", ["train", *COMMON, f"runs_dir={runs}", "sgda.backend=distributed", *extra],
                  nproc=nproc)
    assert "Traceback" not in proc.stderr
    (run,) = list_run_dirs(runs, "dsgda", "smoke")  # one run directory, written by rank 0
    assert run.parent.name == f"train-{setting}" and run.name.startswith("seed0-")
    assert [line for line in proc.stdout.splitlines() if line.strip()] == [
        line for line in proc.stdout.splitlines() if line.startswith(str(run))]
    assert len(proc.stdout.strip().splitlines()) == 1  # one result line, from rank 0
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 4  # one record per horizon
    sim_run = _simulate(cli, tmp_path / "sim", extra)
    dist_trace = torch.load(run / "trace.pt", weights_only=True)
    sim_trace = torch.load(sim_run / "trace.pt", weights_only=True)
    assert dist_trace["T"] == sim_trace["T"]
    for key in ("x", "y", "x_avg", "y_avg", "consensus"):
        assert dist_trace[key].shape == sim_trace[key].shape
        assert torch.allclose(dist_trace[key], sim_trace[key], rtol=1e-10, atol=1e-12), key
    assert not torch.equal(dist_trace["x"][:, 0], dist_trace["x"][:, -1])  # it moved
    summary = json.loads((run / "summary.json").read_text())
    sim_summary = json.loads((sim_run / "summary.json").read_text())
    assert summary["backend"] == "distributed" and summary["timing"]["rounds"] == 13  # 40 // 3 mixings
    assert summary["timing"]["world_size"] == nproc
    assert summary["timing"]["clients_per_process"] == [8 // nproc] * nproc
    assert set(summary["final"]) == set(sim_summary["final"])
    for key, value in sim_summary["final"].items():
        assert summary["final"][key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
    code, out, err = cli("dsgda", "eval", "--config", "smoke", f"runs_dir={runs}",
                         f"problem.setting={setting}")
    assert code == 0, err[-2000:]
    assert out.startswith(f"{run}: {setting}, T = 40") and "equal to summary.json to rounding" in out
    return summary


def test_two_processes_gossip_on_a_ring_like_the_simulation(launch, list_run_dirs, cli, tmp_path):
    summary = _check(launch, list_run_dirs, cli, tmp_path, 2, "ring", "cc")
    timing = summary["timing"]
    assert timing["all_reduce"] is False and timing["peers"] == 1  # clients 0..3 | 4..7: 3–4 and 7–0 cross
    assert summary["W"]["spectral_gap"] < 0.5


def test_four_processes_average_like_the_simulation(launch, list_run_dirs, cli, tmp_path):
    summary = _check(launch, list_run_dirs, cli, tmp_path, 4, "full", "plsc")
    assert summary["timing"]["all_reduce"] is True
    assert summary["W"]["spectral_gap"] == pytest.approx(1.0, abs=1e-12)
