"""`torchrun` with 2 CPU processes (gloo DDP through accelerate) trains the same model as one
process: each rank takes half of every batch and DDP averages the gradients."""

import json
import os
import subprocess
import sys

import pytest


def _train(repo_root, runs, launcher):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = ["-m", "papers.fwa", "train", "--config", "smoke", f"runs_dir={runs}",
            f"data_dir={runs}/data", "train.epochs=2", "wandb=false"]
    proc = subprocess.run([*launcher, *args], cwd=repo_root, env=env, capture_output=True,
                          text=True, timeout=240)
    # A worker's own error comes before torchrun's long traceback: show both ends.
    lines = [line for line in proc.stderr.replace("\r", "\n").splitlines()
             if line.strip() and "it/s]" not in line and "s/it]" not in line]
    assert proc.returncode == 0, "\n".join(lines[:40] + ["..."] + lines[-15:])
    (run,) = (runs / "fwa" / "smoke" / "train-mnist1d").iterdir()
    return json.loads((run / "summary.json").read_text())["final"]


@pytest.mark.skipif(sys.platform != "linux", reason="gloo on loopback")
def test_two_process_ddp_matches_one_process(repo_root, tmp_path):
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                "--nproc_per_node", "2"]
    two = _train(repo_root, tmp_path / "two", torchrun)
    one = _train(repo_root, tmp_path / "one", [sys.executable])
    assert set(two) == set(one)
    for key in one:
        if key.endswith("_acc") or key.endswith("acc_gap"):
            assert two[key] == one[key], key
        else:
            assert two[key] == pytest.approx(one[key], rel=1e-4, abs=1e-6), key
