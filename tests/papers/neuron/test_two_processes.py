"""Two CPU processes (torchrun, gloo): the encoder pre-training is data-parallel, everything
else is the main process's alone.

- In float64 a data-parallel epoch equals the one-process epoch to rounding (ddp_probe.py):
  the shares of each global batch, the global batch-norm statistics, the loss scaling (with
  unequal shares) and DDP's averaging are exact.
- The smoke `train` and `reproduce` under 2 processes: exit 0, both processes pre-train
  (and agree on the weights), one run directory per (method, split, seed), one features
  cache and encoder checkpoint per split, one result set, and the same numbers as the
  one-process run (the session's smoke reproduce, conftest.py) within a stated tolerance.

Why a tolerance in float32: the shares are summed in another order (per-process sums, then
an all-reduce), and this encoder amplifies rounding at initialisation: its float32 forward
differs from its own float64 forward by ~4e-4 on logits of ~8 (batch norm over nearly
constant channels). After the smoke encoder's 5 SGD steps at lr 0.1 the per-epoch training
loss agrees to ~4e-4 relative but the fp16 features differ visibly, and the smoke heads sit at
chance, where a test sample flips on any perturbation. Measured (22 smoke heads): ZSL within
1 test sample, encoder seen-class accuracy within 1, GZSL S and U within 2 (the test-set γ
is an argmax over a grid of H). Asserted with one sample of margin: ZSL and the encoder within
2 samples, GZSL S and U within 3, the encoder's per-epoch loss within 2e-3 relative."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

HERE = Path(__file__).resolve().parent
SMOKE_TEST_PER_CLASS = 2  # configs/smoke.yaml: data.test_per_class


@pytest.fixture
def fresh_data(neuron_seed_data_dir, neuron_smoke, tmp_path):
    """A data_dir with the smoke sequences and text caches but no encoder or features."""
    return neuron_seed_data_dir(tmp_path / "data", neuron_smoke[0] / "data",
                                patterns=("synthetic-*", "text-*"))


def _argv(command: str, runs: Path, data: Path) -> list[str]:
    return [command, "--config", "smoke", f"runs_dir={runs}", f"data_dir={data}", "wandb=false"]


def _encoder_history(data: Path, split_key: str | None = None) -> list[dict]:
    (final,) = (data / "neuron").glob(f"encoder-{split_key or '*'}/encoder-*/final/step_*")
    return json.loads(torch.load(final / "state.pt", weights_only=True)["history"])


def _close_to(got: dict, ref: dict, unseen: int, seen: int) -> None:
    """Head metrics within the stated number of test samples of the reference (module doc)."""
    for k, v in ref["zsl"].items():
        assert abs(got["zsl"][k] - v) <= 2 / unseen + 1e-12, (k, got["zsl"][k], v)
    for group in ("gzsl_val_gamma", "gzsl_test_gamma"):
        assert (group in got) == (group in ref)
        if group in ref:
            assert abs(got[group]["S"] - ref[group]["S"]) <= 3 / seen + 1e-12, (group, got[group], ref[group])
            assert abs(got[group]["U"] - ref[group]["U"]) <= 3 / unseen + 1e-12, (group, got[group], ref[group])
    assert abs(got["encoder_seen_acc"] - ref["encoder_seen_acc"]) <= 2 / seen + 1e-12


def _same_encoder_training(got: list[dict], ref: list[dict], samples: int) -> None:
    assert [r["epoch"] for r in got] == [r["epoch"] for r in ref]
    assert [r["lr"] for r in got] == [r["lr"] for r in ref]
    for a, b in zip(got, ref):
        assert abs(a["loss"] - b["loss"]) <= 2e-3 * abs(b["loss"]), (a, b)
        assert abs(a["train_acc"] - b["train_acc"]) <= 2 / samples + 1e-12, (a, b)


def test_a_data_parallel_epoch_equals_the_one_process_epoch_in_float64(repo_root, tmp_path):
    out = tmp_path / "probe.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc_per_node", "2", str(HERE / "ddp_probe.py"), str(out)],
                          cwd=repo_root, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    probe = json.loads(out.read_text())
    assert probe["processes"] == 2
    assert probe["max_abs_diff"] <= 1e-9 * probe["max_abs_weight"], probe
    for a, b in zip(probe["loss"], probe["ref_loss"]):
        assert abs(a - b) <= 1e-10 * abs(b), probe
    assert probe["acc"] == probe["ref_acc"]
    assert probe["loss"][1] < probe["loss"][0]  # it trained


def test_train_on_two_processes(launch, list_run_dirs, neuron_smoke, fresh_data, tmp_path):
    root, _, _ = neuron_smoke
    data, runs = fresh_data, tmp_path / "runs"
    # the one-process run of the same head: the session's smoke reproduce, at its sweep's choice
    (ref_run,) = (root / "neuron" / "smoke" / "neuron-u5-0").glob("seed0-*")
    used = yaml.safe_load((ref_run / "config.yaml").read_text())
    picked = [f"train.lr={used['train']['lr']}", f"neuron.logit_scale={used['neuron']['logit_scale']}"]
    proc = launch("neuron", [*_argv("train", runs, data), *picked], nproc=2, launcher="torchrun")
    # both processes pre-trained (a single process would not print this) and agreed
    assert proc.stdout.count("pre-trained data-parallel over 2 processes; their weights agree") == 1
    assert proc.stdout.count("neuron on u5-0 (seed 0):") == 1  # only the main process reports
    (run,) = list_run_dirs(runs, "neuron")
    assert run.parent.name == "neuron-u5-0" and run.name.startswith("seed0-")
    assert (run / "DONE").exists() and (run / "head").is_dir()
    assert len(list((data / "neuron").glob("features-*.npz"))) == 1
    assert len(list((data / "neuron").glob("encoder-*/encoder-*/final/step_*"))) == 1
    assert not list((data / "neuron").glob("encoder-*/encoder-*/epochs"))
    got, ref = (json.loads((p / "result.json").read_text()) for p in (run, ref_run))
    assert got["unseen"] == ref["unseen"] and got["training"]["steps"] == ref["training"]["steps"]
    unseen = len(ref["unseen"]) * SMOKE_TEST_PER_CLASS
    _close_to(got, ref, unseen, (48 - len(ref["unseen"])) * SMOKE_TEST_PER_CLASS)
    split_key = next((data / "neuron").glob("features-*.npz")).name.split("-")[1].split(".")[0]
    train_rows = (48 - len(ref["unseen"])) * 4  # smoke: data.train_per_class 4
    _same_encoder_training(_encoder_history(data, split_key), _encoder_history(root / "data", split_key),
                           train_rows)


def test_reproduce_on_two_processes_writes_one_result_set(launch, list_run_dirs, neuron_smoke,
                                                         fresh_data, tmp_path):
    """Both splits' encoders data-parallel, then the main process alone; one seed and no
    ablations (the one-process fixture has both) keep it short."""
    root, _, ref_results = neuron_smoke
    data, runs = fresh_data, tmp_path / "runs"
    argv = [*_argv("reproduce", runs, data), "num_seeds=1", "experiment.ablations=[]"]
    proc = launch("neuron", argv, nproc=2, launcher="torchrun")
    assert proc.stdout.count("pre-trained data-parallel over 2 processes; their weights agree") == 2
    assert proc.stdout.count("neuron smoke: ") == 1  # the one summary line, from the main process
    (out,) = (runs / "neuron" / "smoke" / "reproduce").iterdir()
    assert (out / "DONE").exists() and (out / "RESULTS.md").exists()
    results = json.loads((out / "results.json").read_text())
    assert set(results["methods"]) == {"neuron", "devise", "smie"}
    assert [c["claim"] for c in results["claims"]] == [
        c["claim"] for c in ref_results["claims"] if "hurts" not in c["claim"]]
    assert [t["title"] for t in results["tables"]] == [t["title"] for t in ref_results["tables"]]
    # one run directory per (method, split, seed): the seed-0 method runs of the 1-process run
    key = lambda p: (p.parent.name, p.name.split("-")[0])  # noqa: E731
    dirs = [d for d in list_run_dirs(runs, "neuron") if not d.parent.name.startswith("tune-")]
    refs = {key(p): p for p in list_run_dirs(root, "neuron")
            if p.name.startswith("seed0-") and p.parent.name.split("-")[0] in results["methods"]
            and p.parent.name.count("-") == 2}
    assert sorted(map(key, dirs)) == sorted(refs) and len(dirs) == 6
    assert len(list((data / "neuron").glob("features-*.npz"))) == 2  # one per split
    assert len(list((data / "neuron").glob("encoder-*/encoder-*/final/step_*"))) == 2
    for run in dirs:
        got, ref = (json.loads((p / "result.json").read_text()) for p in (run, refs[key(run)]))
        unseen = len(ref["unseen"]) * SMOKE_TEST_PER_CLASS
        _close_to(got, ref, unseen, (48 - len(ref["unseen"])) * SMOKE_TEST_PER_CLASS)
