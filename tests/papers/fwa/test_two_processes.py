"""Two CPU processes (torchrun, gloo DDP through accelerate): the smoke `train` and the
network part of `reproduce` write exactly one run directory per seed and one result set, no
rank crashes, and the final metrics are the one-process run's.

Why they match: each process takes samples rank::world of every batch, its loss is its summed
loss × world / batch size, and DDP averages the gradients, so every step is the one-process
step up to float summation order; the main process alone evaluates and writes. Accuracies
are then equal and losses agree to float rounding (compared with a tolerance)."""

import json
import sys

import pytest

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="gloo on loopback")

ARGS = ["--config", "smoke", "wandb=false", "train.epochs=2", "train.swa_lr=0.05"]  # SWA branch from epoch 1


def _assert_same_final(two: dict, one: dict) -> None:
    assert set(two) == set(one) and one
    for key in one:
        if key.endswith("_acc") or key.endswith("acc_gap"):
            assert two[key] == one[key], key
        else:
            assert two[key] == pytest.approx(one[key], rel=1e-4, abs=1e-6), key


def test_train_on_two_processes_is_the_one_process_run_and_eval_reads_it(
        launch, list_run_dirs, cli, tmp_path):
    data = f"data_dir={tmp_path}/data"
    proc = launch("fwa", ["train", *ARGS, f"runs_dir={tmp_path}/two", data], nproc=2)
    assert "Traceback" not in proc.stderr
    (run,) = list_run_dirs(tmp_path / "two", "fwa", "smoke")  # one run directory, not one per rank
    assert run.parent.name == "train-mnist1d" and run.name.startswith("seed0-")
    assert sorted(p.name for p in run.glob("summary*.json")) == ["summary.json"]
    assert (run / "DONE").exists()
    assert [line for line in proc.stdout.splitlines() if line.strip()] == [
        line for line in proc.stdout.splitlines() if line.startswith(f"{run}: ")]  # one result line
    epochs = [r["epoch"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())]
    assert epochs == [1, 2]  # logged once per epoch, by the main process only
    two = json.loads((run / "summary.json").read_text())["final"]

    code, _, err = cli("fwa", "train", *ARGS, f"runs_dir={tmp_path}/one", data)
    assert code == 0, err
    (one_run,) = list_run_dirs(tmp_path / "one", "fwa", "smoke")
    _assert_same_final(two, json.loads((one_run / "summary.json").read_text())["final"])

    # `eval` (one process) on the two-process run's checkpoint gives its final metrics
    code, out, err = cli("fwa", "eval", *ARGS, f"runs_dir={tmp_path}/two", data)
    assert code == 0, err
    assert out.startswith(f"{run} (epoch 2):")
    (written,) = run.glob("eval-*.json")
    assert json.loads(written.read_text())["metrics"] == pytest.approx(two, rel=1e-6, abs=1e-9)


def test_reproduce_on_two_processes_writes_one_result_set(launch, list_run_dirs, cli, one_line_error,
                                                          tmp_path, monkeypatch):
    args = [*ARGS, "experiments=[nonconvex]", "num_seeds=1", f"data_dir={tmp_path}/data"]
    proc = launch("fwa", ["reproduce", *args, f"runs_dir={tmp_path}/two"], nproc=2)
    assert "Traceback" not in proc.stderr
    (run,) = list_run_dirs(tmp_path / "two", "fwa", "smoke")
    assert run.parent.name == "train-mnist1d" and (run / "DONE").exists()
    (out,) = (tmp_path / "two" / "fwa" / "smoke" / "reproduce").iterdir()  # one result set
    assert (out / "RESULTS.md").exists() and (out / "DONE").exists()
    assert len([line for line in proc.stdout.splitlines() if line.startswith("fwa smoke:")]) == 1
    two = json.loads((out / "results.json").read_text())

    code, _, err = cli("fwa", "reproduce", *args, f"runs_dir={tmp_path}/one")
    assert code == 0, err
    (one_out,) = (tmp_path / "one" / "fwa" / "smoke" / "reproduce").iterdir()
    one = json.loads((one_out / "results.json").read_text())
    assert set(two["methods"]) == set(one["methods"])
    for method, metrics in one["methods"].items():
        _assert_same_final({k: v["mean"] for k, v in two["methods"][method].items()},
                           {k: v["mean"] for k, v in metrics.items()})
    assert [c["verdict"] for c in two["claims"]] == [c["verdict"] for c in one["claims"]]

    # under a launcher the single-process sweeps and `eval` are refused in one line
    monkeypatch.setenv("WORLD_SIZE", "2")
    line = one_line_error("fwa", "reproduce", ["wandb=false", "experiments=[convex,nonconvex]"])
    assert "set experiments=[nonconvex]" in line and "the convex sweep runs in one process" in line
    assert "eval runs in one process" in one_line_error("fwa", "eval", ["wandb=false"])
