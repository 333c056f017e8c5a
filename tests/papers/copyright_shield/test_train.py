"""A fine-tune is deterministic in its seed and resumes to the same final metrics."""

import json

import pytest

from papers.copyright_shield import train as train_module
from shared.cli import Context

from .conftest import smoke_config


def _ctx():
    return Context("copyright_shield", "smoke", [], None)


def test_killed_run_resumes_to_the_uninterrupted_metrics(tmp_path, monkeypatch):
    cfg = smoke_config(tmp_path, "run=differentiable")
    whole = train_module.fine_tune(cfg, _ctx(), "differentiable", 0)
    saves = []
    real_save = train_module._save

    def save_then_die(*args, **kwargs):
        real_save(*args, **kwargs)
        saves.append(1)
        if len(saves) == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "_save", save_then_die)
    cfg2 = smoke_config(tmp_path / "b", "run=differentiable")
    with pytest.raises(KeyboardInterrupt):
        train_module.fine_tune(cfg2, _ctx(), "differentiable", 0)
    monkeypatch.setattr(train_module, "_save", real_save)
    cfg2.resume = "latest"
    resumed = train_module.fine_tune(cfg2, _ctx(), "differentiable", 0)
    for key in ("fae", "cir", "mean_sim", "history", "loss_tail", "final_sims", "detection"):
        assert resumed[key] == whole[key], key
    run_dir = tmp_path / "b" / "runs" / "copyright_shield" / "smoke" / "differentiable"
    (only,) = list(run_dir.glob("seed0-*"))
    metrics = [json.loads(line) for line in (only / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [h["step"] for h in whole["history"]]
    again = train_module.fine_tune(cfg2, _ctx(), "differentiable", 0)  # finished: reused
    assert again["cir"] == whole["cir"]
