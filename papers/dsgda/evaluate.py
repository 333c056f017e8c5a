"""`eval`: re-measure a finished `train` run from the iterates it saved.

The run's own config.yaml rebuilds its datasets (deterministic in the seeds), trace.pt holds
the consensus and time-averaged iterates of every replica at every horizon, and
`experiment.summarise` recomputes every measure from them: ε, the weak PD risks and their
gap, the primal risk, the task score, μₓ and the consensus distance. The final measures are
printed next to those summary.json recorded, and written to `eval-<stamp>.json` in the run.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path

import torch

from papers.dsgda.config import DSGDAConfig
from papers.dsgda.experiment import base_point, build_replicas, problem_for, summarise
from papers.dsgda.train import final_measures
from shared import UserError
from shared.cli import Context
from shared.config import load_config
from shared.runs import is_done, method_dir, read_summary

REL_TOL = 1e-9  # recomputed vs recorded: the same code on the same iterates agrees to rounding


def newest_finished_run(cfg: DSGDAConfig, ctx: Context) -> Path:
    """The newest finished `train` run of this config and problem.setting (any seed)."""
    parent = method_dir(cfg.runs_dir, ctx.slug, ctx.config_name, f"train-{cfg.problem.setting}")
    runs = sorted(parent.glob("seed*-*"), key=lambda p: p.name.split("-", 1)[1]) if parent.is_dir() else []
    finished = [p for p in runs if is_done(p)]
    if not finished:
        raise UserError(f"no finished train run under {parent}: run `python -m papers.dsgda train "
                        f"--config {ctx.config_name} problem.setting={cfg.problem.setting}` first, "
                        "or give eval_run=<run dir>")
    return finished[-1]


def check_run(path: Path) -> Path:
    """eval_run must be a finished dsgda train run: .../dsgda/<config>/train-<setting>/seed<k>-<stamp>."""
    if not path.is_dir():
        raise UserError(f"eval_run={path}: no such directory")
    if not (path.parent.name.startswith("train-") and (path / "config.yaml").is_file()):
        raise UserError(f"eval_run={path}: not a dsgda train run directory "
                        "(.../dsgda/<config>/train-<setting>/seed<k>-<stamp> holding config.yaml)")
    if not is_done(path):
        raise UserError(f"eval_run={path}: the run has not finished; continue it with "
                        f"`train resume={path}` first")
    return path


def _rel(a: float, b: float) -> float:
    if a == b or (math.isnan(a) and math.isnan(b)):
        return 0.0
    return abs(a - b) / max(abs(a), abs(b), 1e-300)


def evaluate_run(cfg: DSGDAConfig, ctx: Context) -> dict:
    """Recompute the final measures of a finished train run; returns the eval record."""
    run_dir = check_run(Path(cfg.eval_run)) if cfg.eval_run else newest_finished_run(cfg, ctx)
    summary = read_summary(run_dir)
    recorded = summary["final"]
    trace_path = run_dir / "trace.pt"
    if not trace_path.is_file():
        raise UserError(f"{run_dir} has no trace.pt (the saved iterates) to evaluate")
    run_cfg = load_config(DSGDAConfig, run_dir, "config", [])
    setting, point = summary["setting"], base_point(run_cfg)
    try:
        trace = torch.load(trace_path, weights_only=True)
    except Exception as exc:  # a truncated or foreign file
        raise UserError(f"{trace_path} cannot be read ({type(exc).__name__}); rerun train") from None
    problem, pool = problem_for(run_cfg, setting)
    reps = build_replicas(run_cfg, problem, pool, [point], run_cfg.seed, run_cfg.sweep.pairs)
    if trace["x"].shape[0] != reps.size:
        raise UserError(f"{trace_path} holds {trace['x'].shape[0]} replicas but the run's config "
                        f"builds {reps.size}")
    out = summarise(run_cfg, problem, pool, reps, trace, [point], setting)
    final = final_measures(out["points"][point.key], out["output"])
    worst = max((_rel(final[k], recorded[k]) for k in final if k in recorded), default=0.0)
    same = worst <= REL_TOL and set(final) == set(recorded)
    record = {"run_dir": str(run_dir), "setting": setting, "T": out["T"][-1], "output": out["output"],
              "backend": summary.get("backend"), "final": final, "recorded": recorded,
              "max_rel_diff": worst, "matches_summary": same}
    print(f"{run_dir}: {setting}, T = {out['T'][-1]}, {out['output']} output, "
          f"{summary.get('backend', '?')} backend; measures recomputed from trace.pt")
    width = max(map(len, final))
    for key, value in final.items():
        print(f"  {key:<{width}}  {value:.6g}" + (f"  (summary.json {recorded[key]:.6g})"
                                                  if key in recorded and _rel(value, recorded[key]) > REL_TOL else ""))
    print("  equal to summary.json to rounding" if same else
          f"  differs from summary.json (max relative difference {worst:.2g}): the measure code or "
          "data generation changed since this run")
    path = run_dir / f"eval-{datetime.now().strftime('%Y%m%d-%H%M%S-%f')}.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {path}")
    return record
