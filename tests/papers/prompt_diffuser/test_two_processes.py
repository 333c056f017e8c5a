"""Two CPU processes (torchrun, gloo): the smoke `train` writes exactly one run directory per
run kind (the main process runs it, the other waits) with the one-process run's final metrics,
and `reproduce` deals its runs over both processes and writes one result set."""

import json
import sys

import pytest

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="gloo on loopback")


def test_train_and_reproduce_on_two_processes(launch, list_run_dirs, cli, tmp_path):
    data = f"data_dir={tmp_path}/data"
    args = ["--config", "smoke", "wandb=false", "num_seeds=1", "method=pd", data]
    proc = launch("prompt_diffuser", ["train", *args, f"runs_dir={tmp_path}/two"], nproc=2)
    assert "Traceback" not in proc.stderr
    runs = list_run_dirs(tmp_path / "two", "prompt_diffuser", "smoke")
    assert sorted(r.parent.name for r in runs) == ["pd-expert", "pretrain"]  # not one per rank
    assert all((r / "DONE").exists() for r in runs)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert len(lines) == 1 and "held-out return" in lines[0]
    two = json.loads((runs[0] / "summary.json").read_text())["heldout"]

    code, _, err = cli("prompt_diffuser", "train", *args, f"runs_dir={tmp_path}/one")
    assert code == 0, err
    one_run = [r for r in list_run_dirs(tmp_path / "one", "prompt_diffuser", "smoke")
               if r.parent.name == "pd-expert"][0]
    assert json.loads((one_run / "summary.json").read_text())["heldout"] == two

    small = ["tune.methods=[pd,ptdt]", "tune.init_qualities=[expert]"]
    proc = launch("prompt_diffuser", ["reproduce", *args, *small, f"runs_dir={tmp_path}/r"], nproc=2)
    outs = list((tmp_path / "r" / "prompt_diffuser" / "smoke" / "reproduce").iterdir())
    assert len(outs) == 1 and (outs[0] / "results.json").exists()
    assert proc.stdout.count("prompt_diffuser smoke:") == 1
    runs = list_run_dirs(tmp_path / "r", "prompt_diffuser", "smoke")
    assert sorted(r.parent.name for r in runs) == ["pd-expert", "pretrain", "ptdt-expert"]
