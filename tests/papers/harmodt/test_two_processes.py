"""Two CPU processes (torchrun, gloo): replicated data parallelism (`shared.replicas`).

Each process trains on its half of every batch and the gradients are summed as each backward
ends, so with `model.dropout=0` a 2-process run takes the one-process run's steps to float
rounding: the logged training losses agree to 1e-4 relative, and the masks, which are
updated from the summed per-task gradients, are identical. G-HarmoDT covers every backward
the trainer makes (inner steps, mask updates, the clustering gradients and the gate)."""

import json
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

from papers.harmodt.__main__ import main

ARGS = ["model.dropout=0", "method=g-harmodt", "wandb=false", "data.workers=1", "eval.workers=1"]


def _argv(command: str, runs: Path, data: Path, *extra: str) -> list[str]:
    return [command, "--config", "smoke", f"runs_dir={runs}", f"data_dir={data}", *ARGS, *extra]


def _losses(run: Path) -> list[float]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in rows if "loss" in r]


def _masks(run: Path) -> dict[str, np.ndarray]:
    (final,) = sorted((run / "checkpoints").glob("step_*"))[-1:]
    tensors = load_file(str(final / "tensors.safetensors"))
    return {k: v for k, v in tensors.items() if k.startswith("mask.")}


def test_reproduce_on_two_processes_is_one_result_set_with_the_one_process_steps(
        launch, list_run_dirs, smoke_data_dir, tmp_path):
    """One launch checks both: `reproduce` on two processes writes one run directory and one
    result set, and its run took the steps of a one-process `train` of the same run."""
    one, runs = tmp_path / "one", tmp_path / "runs"
    assert main(_argv("train", one, smoke_data_dir)) == 0
    argv = _argv("reproduce", runs, smoke_data_dir, "num_seeds=1", "data.qualities=[near-optimal]",
                 "train.methods=[g-harmodt]")
    proc = launch("harmodt", argv, nproc=2, launcher="torchrun")
    assert proc.stdout.count("harmodt smoke: ") == 1  # the one summary line, from the main process
    (out,) = (runs / "harmodt" / "smoke" / "reproduce").iterdir()
    assert (out / "RESULTS.md").exists()
    results = json.loads((out / "results.json").read_text())
    assert set(results["methods"]) == {"G-HarmoDT / near-optimal"}
    (run,) = list_run_dirs(runs, "harmodt")
    (ref,) = list_run_dirs(one, "harmodt")
    assert run.parent.name == ref.parent.name == "g-harmodt-near-optimal"
    assert run.name.startswith("seed0-") and ref.name.startswith("seed0-")
    assert (run / "DONE").exists() and json.loads((run / "run.json").read_text())["processes"] == 2
    got, want = _losses(run), _losses(ref)
    assert len(got) == len(want) > 0
    np.testing.assert_allclose(got, want, rtol=1e-4)
    masks, ref_masks = _masks(run), _masks(ref)
    assert masks.keys() == ref_masks.keys() and masks
    for key in masks:
        np.testing.assert_array_equal(masks[key], ref_masks[key])
