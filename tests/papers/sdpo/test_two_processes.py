"""Two CPU processes (gloo): the smoke `train` under torchrun writes one run directory, one
summary and one metrics record per step, and every process gets the complete evaluation (no
rank is handed an empty dict).

`reproduce` also runs on several processes (its runs one after another on all of them, one
result set written by the main process: checked by hand, see the README); it is not launched
here because a launch costs two imports of torch + diffusers (~20 s of CPU on 2 cores).

Launcher: torchrun. `accelerate launch --cpu --num_processes 2` starts a single process in
accelerate 1.16 (its simple launcher), so it would not test two; under torchrun the
Accelerator finds WORLD_SIZE = 2 and runs MULTI_CPU on gloo, the state `accelerate launch
--multi_gpu` gives it.

What equals the one-process run, and what cannot: every evaluation is made by the main
process on the (identical) weights and handed to the others, and the held-out inputs are
fixed, so the evaluation before training (the base model) equals the one-process run's to the
bit. After the first update the runs differ by design, as the paper's multi-GPU runs do: each
process samples its own `pairs_per_epoch` pairs from its own stream (seed × 1000 + rank), the
returns are normalised over both processes' samples and DDP averages the two gradients, so an
epoch sees twice the samples (`samples` doubles), of other prompts and noise."""

import json
import math
import sys

import pytest
import torch

from papers.sdpo.train import Trainer
from shared import UserError
from shared.checkpoint import latest_checkpoint, load_checkpoint
from shared.runs import is_done

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="gloo on loopback")
STEPS = (1, 2, 4, 8)


def _one_process_run(root, method="sdpo", seed=0):
    """The smoke reproduce's run of `method` and `seed` (one process, same config and base)."""
    (run,) = sorted((root / "sdpo" / "smoke" / method).glob(f"seed{seed}-*"))
    return run, json.loads((run / "summary.json").read_text())


def test_train_on_two_processes_is_one_run_with_the_one_process_evaluations(
        launch, list_run_dirs, smoke_data_dir, smoke_reproduce, tmp_path, make_cfg, cli):
    runs = tmp_path / "runs"
    proc = launch("sdpo", ["train", "--config", "smoke", f"runs_dir={runs}", f"data_dir={smoke_data_dir}",
                           "wandb=false", "method=sdpo", "seed=0"], nproc=2)
    (run,) = list_run_dirs(runs, "sdpo", "smoke")
    assert run.parent.name == "sdpo" and run.name.startswith("seed0-") and is_done(run)
    assert len(list(runs.rglob("summary.json"))) == 1
    assert json.loads((run / "run.json").read_text())["processes"] == 2
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"{run}: aesthetic reward at 1 steps")  # main only
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [0, 1, 2]  # logged once per epoch, not once per process
    summary = json.loads((run / "summary.json").read_text())
    _, one = _one_process_run(smoke_reproduce[0])
    # the base model's evaluation is the one-process run's, to the bit
    assert [summary[f"initial_{n}"] for n in STEPS] == [one[f"initial_{n}"] for n in STEPS]
    assert summary["curve"][0] == one["curve"][0]
    # two processes sample two sets of pairs per epoch
    assert summary["samples"] == 2 * one["samples"] == 16
    assert [c["samples"] for c in summary["curve"]] == [0, 8, 16]
    for n in STEPS:
        assert math.isfinite(summary[f"final_{n}"])
        assert summary[f"gain_{n}"] == pytest.approx(summary[f"final_{n}"] - summary[f"initial_{n}"])
        assert records[-1][f"eval_reward_{n}step"] == summary[f"final_{n}"]
    # the checkpoint holds each process's own random streams ...
    ckpt = latest_checkpoint(run / "checkpoints")
    _, state = load_checkpoint(ckpt)
    streams = state["processes"]
    assert len(streams) == 2 and not torch.equal(streams[0]["generator"], streams[1]["generator"])
    # ... so it resumes exactly on two processes only; one process refuses it in one line
    trainer = Trainer(make_cfg(tmp_path / "one"), "sdpo", seed=0)
    with pytest.raises(UserError, match="written by 2 process"):
        trainer.restore(ckpt)
    # `eval` (one process) scores the two-process run: its final evaluation again
    code, out, err = cli("sdpo", "eval", "--config", "smoke", f"runs_dir={runs}",
                         f"data_dir={smoke_data_dir}", "wandb=false")
    assert code == 0, err
    record = json.loads((run / "eval" / "epoch2.json").read_text())
    assert [record[str(n)] for n in STEPS] == [summary[f"final_{n}"] for n in STEPS]


class _Accelerator:
    def __init__(self, main: bool) -> None:
        self.num_processes, self.is_main_process = 2, main


def test_a_user_error_of_the_main_process_is_raised_on_every_process(monkeypatch):
    """`on_main` (run directory, checkpoint choice, evaluation, summary) hands the main
    process's UserError to the others instead of leaving them waiting for a result."""
    from papers.sdpo import train as train_module

    sent = []
    monkeypatch.setattr(train_module, "broadcast_object_list",
                        lambda box: sent.append(box[0]) or box if box[0] is not None else [sent[-1]])

    def refuse():
        raise UserError("run X is in use by another process")

    with pytest.raises(UserError, match="in use"):
        train_module.on_main(_Accelerator(main=True), refuse)
    called = []
    with pytest.raises(UserError, match="in use"):  # the other process: fn is not run there
        train_module.on_main(_Accelerator(main=False), lambda: called.append(1))
    assert not called
    assert train_module.on_main(_Accelerator(main=True), lambda: {"a": 1}) == {"a": 1}
    assert train_module.on_main(_Accelerator(main=False), lambda: called.append(1)) == {"a": 1}
    assert not called
