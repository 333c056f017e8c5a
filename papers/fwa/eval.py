"""`eval`: re-evaluate every method of a finished training run from its final checkpoint."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from papers.fwa.config import FWAConfig
from papers.fwa.train import Trainer, load_split, method_name
from shared import UserError
from shared.checkpoint import latest_checkpoint
from shared.cli import Context
from shared.config import load_config
from shared.runs import is_done, method_dir


def newest_finished_run(cfg: FWAConfig, ctx: Context) -> Path:
    parent = method_dir(cfg.runs_dir, ctx.slug, ctx.config_name, method_name(cfg.train))
    finished = [p for p in sorted(parent.glob("seed*-*"), key=lambda p: p.name.split("-", 1)[1])
                if is_done(p)] if parent.exists() else []
    if not finished:
        raise UserError(f"no finished training run under {parent}: run `train` first")
    return finished[-1]


def evaluate_run(cfg: FWAConfig, ctx: Context) -> dict:
    run_dir = Path(cfg.eval_run) if cfg.eval_run else newest_finished_run(cfg, ctx)
    if not (run_dir / "config.yaml").exists():
        raise UserError(f"eval_run={run_dir}: not a run directory (no config.yaml)")
    ckpt = latest_checkpoint(run_dir / "checkpoints")
    if ckpt is None:
        raise UserError(f"{run_dir} has no checkpoint to evaluate")
    run_cfg = load_config(FWAConfig, run_dir, "config", [f"device={cfg.device}"])
    seed = int(run_dir.name.split("-")[0].removeprefix("seed"))
    trainer = Trainer(run_cfg, load_split(run_cfg), seed)
    trainer.restore(ckpt)
    metrics = trainer.evaluate()
    out = run_dir / f"eval-{datetime.now().strftime('%Y%m%d-%H%M%S-%f')}.json"
    out.write_text(json.dumps({"checkpoint": str(ckpt), "epoch": trainer.epoch,
                               "metrics": metrics}, indent=2) + "\n")
    print(f"{run_dir} (epoch {trainer.epoch}):")
    for method in trainer.averagers.methods:
        if f"{method}/test_acc" in metrics:
            print(f"  {method:8s} test_acc {metrics[f'{method}/test_acc']:.4f}  "
                  f"loss_gap {metrics[f'{method}/loss_gap']:+.4f}")
    print(f"wrote {out}")
    return metrics
