import json
from pathlib import Path

import pytest
import torch

import papers.fwa
from papers.fwa.config import FWAConfig
from papers.fwa.eval import evaluate_run
from papers.fwa.train import train
from shared.checkpoint import list_checkpoints
from shared.cli import Context
from shared.config import load_config
from shared.runs import is_done
from shared.tracking import read_metrics

PAPER_DIR = Path(papers.fwa.__file__).parent


def _cfg(root, name="smoke", *extra):
    return load_config(FWAConfig, PAPER_DIR / "configs", name, [
        f"runs_dir={root / 'runs'}", f"data_dir={root / 'data'}", "wandb=false", *extra])


SMALL_RUN = ("train.mnist1d_samples=600", "train.epochs=4", "train.checkpoint_every=1")


def _without_time(records):
    return [{k: v for k, v in r.items() if k != "time"} for r in records]


def test_a_killed_run_resumes_to_the_same_final_metrics_with_an_swa_branch(tmp_path, monkeypatch):
    ctx = Context("fwa", "smoke", [], PAPER_DIR)
    run = (*SMALL_RUN, "train.swa_lr=0.05", "train.swa_start=0.25")  # the branch starts at epoch 1
    uninterrupted = train(_cfg(tmp_path / "a", "smoke", *run), ctx, seed=0)

    real_step, calls = torch.optim.SGD.step, {"n": 0}

    def crash_in_epoch_three(self, *args, **kwargs):  # 480 samples / 128 = 4 steps per epoch,
        calls["n"] += 1  # SGD's and the SWA branch's from epoch 1: 4 + 8 + the 5th of epoch 2
        if calls["n"] == 4 + 8 + 5:
            raise RuntimeError("simulated kill")
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.SGD, "step", crash_in_epoch_three)
    with pytest.raises(RuntimeError, match="simulated kill"):
        train(_cfg(tmp_path / "b", "smoke", *run), ctx, seed=0)
    monkeypatch.undo()
    (killed,) = (tmp_path / "b" / "runs" / "fwa" / "smoke" / "train-mnist1d").iterdir()
    assert not is_done(killed)
    assert list_checkpoints(killed / "checkpoints")[-1].name == "step_000000008"

    resumed = train(_cfg(tmp_path / "b", "smoke", *run, "resume=latest"), ctx, seed=0)
    assert resumed["run_dir"] == killed and is_done(killed)
    assert resumed["final"] == uninterrupted["final"]
    assert _without_time(read_metrics(killed)) == _without_time(read_metrics(uninterrupted["run_dir"]))


def test_resume_latest_reuses_a_finished_run_and_refuses_a_changed_config(tmp_path):
    ctx = Context("fwa", "smoke", [], PAPER_DIR)
    first = train(_cfg(tmp_path, "smoke", *SMALL_RUN), ctx, seed=0)
    again = train(_cfg(tmp_path, "smoke", *SMALL_RUN, "resume=latest"), ctx, seed=0)
    assert again == first
    from shared import UserError
    with pytest.raises(UserError, match="train.lr"):
        train(_cfg(tmp_path, "smoke", *SMALL_RUN, "resume=latest", "train.lr=0.5"), ctx, seed=0)


def test_paper_path_resnet_on_cifar_binaries_then_eval_reproduces_the_final_metrics(tmp_path, cifar10_dir):
    cfg = _cfg(tmp_path, "paper", f"train.data_path={cifar10_dir}", "train.resnet_width=4",
               "train.epochs=2", "train.batch_size=16", "train.train_eval_samples=16",
               "train.checkpoint_every=1", "train.eval_every=1", "device=cpu")
    assert cfg.precision == "bf16" and cfg.train.augment and cfg.train.model == "resnet18"
    ctx = Context("fwa", "paper", [], PAPER_DIR)
    result = train(cfg, ctx, seed=0)
    final = result["final"]
    assert {"sgd/test_acc", "lawa5/test_acc", "lawa10/test_acc", "swa/test_acc", "ema/test_acc"} <= set(final)
    assert all(0.0 <= final[f"{m}/test_acc"] <= 1.0 for m in ("sgd", "lawa5", "swa", "ema"))
    summary = json.loads((result["run_dir"] / "summary.json").read_text())["final"]
    assert summary == final
    assert evaluate_run(cfg, ctx) == final
