"""Two CPU processes (gloo): the tiny model's `train` under torchrun and the paper path's
`reproduce` under accelerate launch write one run directory per (method, task, seed) and one
result set, with the metrics of one process.

Why they match: each process takes examples rank::world of every global batch and its loss
is its summed token loss over the global count of supervised tokens (× world, as DDP
averages), so the gradient is the one-process gradient up to summation order; evaluation
hands out whole generation batches, each the batch one process would generate. The final
weights then agree to float rounding (compared with a tolerance), and the scores (greedy
decoding of those weights) and the selected-entry shares are equal."""

import json
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="gloo on loopback")


def _final(run):
    (path,) = run.glob("final/step_*/tensors.safetensors")
    return load_file(str(path))


def _assert_same_run(two, one):
    a, b = (json.loads((r / "result.json").read_text()) for r in (two, one))
    assert set(a) == set(b)
    for key in a:
        if key == "loss_curve":
            assert a[key] == pytest.approx(b[key], rel=1e-5), key
        elif key != "run_dir":
            assert a[key] == b[key], key
    wa, wb = _final(two), _final(one)
    assert set(wa) == set(wb)
    for name in wa:
        assert torch.allclose(wa[name], wb[name], rtol=1e-5, atol=1e-6), name


def test_tiny_train_on_two_processes_is_the_one_process_run(launch, list_run_dirs, smoke, tmp_path):
    root, _, _ = smoke
    runs = tmp_path / "runs"
    proc = launch("spider", ["train", "--config", "smoke", f"runs_dir={runs}", f"data_dir={root}/data",
                             "wandb=false", "finetune.method=spider", "task=mcqa", "seed=0"], nproc=2)
    (run,) = list_run_dirs(runs, "spider", "smoke")
    assert run.parent.name == "spider-mcqa" and run.name.startswith("seed0-")
    assert json.loads((run / "run.json").read_text())["processes"] == 2
    assert [line for line in proc.stdout.splitlines() if " on mcqa (seed 0)" in line] == [
        line for line in proc.stdout.splitlines() if line.strip()]
    assert len(proc.stdout.strip().splitlines()) == 1  # one result line, from the main process
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2]  # logged once per step (the main process), not once per process
    # the same job of the smoke reproduce ran in one process, from the same pre-trained model
    (one,) = [p for p in list_run_dirs(root, "spider", "smoke")
              if p.parent.name == "spider-mcqa" and p.name.startswith("seed0-")]
    _assert_same_run(run, one)


@pytest.fixture
def _fresh_accelerate_state():
    yield
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(True)
    GradientState._reset_state()


def test_paper_path_reproduce_on_two_processes_writes_one_result_set(
        launch, list_run_dirs, llava_dir, data_dir, paper_args, tmp_path, _fresh_accelerate_state):
    from papers.spider import local, pipeline
    from shared.cli import Context

    runs = tmp_path / "runs"
    args = paper_args(llava_dir, data_dir, runs, "experiment.methods=[spider,full_ft]", "num_seeds=1")
    proc = launch("spider", ["reproduce", "--config", "paper", *args], nproc=2, launcher="torchrun")
    dirs = list_run_dirs(runs, "spider", "paper")
    assert sorted(p.parent.name for p in dirs) == ["full_ft-scienceqa", "spider-scienceqa"]
    assert all(p.name.startswith("seed0-") and (p / "DONE").exists() for p in dirs)
    (out,) = (runs / "spider" / "paper" / "reproduce").iterdir()
    results = json.loads((out / "results.json").read_text())
    assert set(results["methods"]) == {"spider", "full_ft"} and results["seeds"] == [0]
    summary = [line for line in proc.stdout.splitlines() if line.startswith("spider paper:")]
    assert len(summary) == 1 and summary[0].endswith(f"{out / 'results.json'}")  # written once
    for run in dirs:  # the main process alone logged and wrote
        lines = (run / "metrics.jsonl").read_text().splitlines()
        assert [json.loads(line)["step"] for line in lines] == [1]
    # one process, the same run: equal scores, the same weights to float rounding
    one_runs = tmp_path / "one"
    cfg = pipeline.config("paper", paper_args(llava_dir, data_dir, one_runs, "finetune.method=spider"))
    local.run_local(cfg, Context("spider", "paper", [], Path(local.__file__).parent))
    (one,) = list_run_dirs(one_runs, "spider", "paper")
    (two,) = [p for p in dirs if p.parent.name == "spider-scienceqa"]
    _assert_same_run(two, one)
