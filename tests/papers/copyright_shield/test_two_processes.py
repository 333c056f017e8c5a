"""Two CPU processes (torchrun, gloo): the smoke `train` writes one run directory and one
summary; every process trains on its half of each global batch (papers/copyright_shield/
distributed.py), the main process evaluates and writes."""

import json
import sys

import pytest

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="gloo on loopback")


def test_smoke_train_on_two_processes(launch, tmp_path, list_run_dirs):
    proc = launch("copyright_shield", ["train", "--config", "smoke", f"runs_dir={tmp_path}/runs",
                                       f"data_dir={tmp_path}/data", "run=attack", "wandb=false"])
    runs = list_run_dirs(tmp_path / "runs", "copyright_shield")
    assert len(runs) == 1, runs
    summary = json.loads((runs[0] / "summary.json").read_text())
    run_info = json.loads((runs[0] / "run.json").read_text())
    assert run_info["processes"] == 2
    metrics = (runs[0] / "metrics.jsonl").read_text().splitlines()
    assert len(metrics) == len(summary["history"]) == 2  # 1 epoch × 2 evaluations, written once
    assert proc.stdout.count("FAE") == 1  # one process reports
