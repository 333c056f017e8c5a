"""`eval`: re-evaluate every method of a finished training run from its final checkpoint."""

from __future__ import annotations

import json
import os
import re
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
        raise UserError(f"no finished training run under {parent}: run `train` first (or give "
                        "eval_run=<run dir>)")
    return finished[-1]


def check_train_run(run_dir: Path, slug: str) -> None:
    """A training run directory of this paper: `.../<slug>/<config>/train-<dataset>/seed<k>-*/`
    holding config.yaml."""
    parts = run_dir.resolve().parts[-4:]
    if not (len(parts) == 4 and parts[0] == slug and parts[2].startswith("train-")
            and re.fullmatch(r"seed\d+-.+", parts[3]) and (run_dir / "config.yaml").is_file()):
        raise UserError(f"eval_run={run_dir}: not a {slug} training run directory "
                        f"(<runs_dir>/{slug}/<config>/train-<dataset>/seed<k>-<stamp>/ with "
                        "config.yaml)")


def evaluate_run(cfg: FWAConfig, ctx: Context) -> dict:
    """Evaluate the newest finished training run of this config (or `eval_run`) from its
    newest intact checkpoint; writes eval-<stamp>.json into the run directory."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise UserError("eval runs in one process: start it without torchrun/accelerate launch")
    run_dir = Path(cfg.eval_run) if cfg.eval_run else newest_finished_run(cfg, ctx)
    if not run_dir.is_dir():
        raise UserError(f"eval_run={run_dir}: no such run directory")
    check_train_run(run_dir, ctx.slug)
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
    print(f"{run_dir} (epoch {trainer.epoch}{'' if is_done(run_dir) else ', unfinished'}):")
    for method in trainer.methods:
        if f"{method}/test_acc" in metrics:
            print(f"  {method:8s} test_acc {metrics[f'{method}/test_acc']:.4f}  "
                  f"loss_gap {metrics[f'{method}/loss_gap']:+.4f}")
    print(f"wrote {out}")
    return metrics
