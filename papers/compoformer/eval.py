"""`eval`: the success matrix R and P/F/FWT of a finished continual run, from its summary.

Every R entry is an evaluation the run itself made at the end of a stage (a continual run's
later stages change what an earlier evaluation would give, so R cannot be re-measured from
the final weights alone); `eval` checks the run directory and prints them.
"""

from __future__ import annotations

from pathlib import Path

from papers.compoformer.tasks import short
from shared import UserError
from shared.runs import is_done, method_dir, read_summary


def evaluate_run(cfg, ctx) -> dict:
    if cfg.resume not in ("", "latest"):
        run_dir = Path(cfg.resume)
    else:
        parent = method_dir(cfg.runs_dir, ctx.slug, ctx.config_name, cfg.method)
        runs = sorted(p for p in parent.glob(f"seed{cfg.seed}-*") if is_done(p)) if parent.exists() else []
        if not runs:
            raise UserError(f"no finished {cfg.method} run (seed {cfg.seed}) under {cfg.runs_dir}: "
                            "train it first")
        run_dir = runs[-1]
    if not (run_dir / "summary.json").is_file():
        raise UserError(f"{run_dir}: not a finished compoformer run (no summary.json)")
    s = read_summary(run_dir)
    tasks = [short(t) for t in s["tasks"]]
    lines = [f"{run_dir}: {s['method']} seed {s['seed']}",
             "R[t][i] (rows: after stage t)", "        " + " ".join(f"{t[:8]:>8}" for t in tasks)]
    for t, row in enumerate(s["R"]):
        lines.append(f"stage {t:<2}" + " ".join("       -" if v is None else f"{v:8.2f}" for v in row))
    extra = "" if s["F"] is None else f"  F {s['F']:.3f}  FWT {s['FWT']:.3f}"
    lines.append(f"P {s['P']:.3f}{extra}")
    return {**s, "text": "\n".join(lines)}
