"""`eval`: re-evaluate a finished fine-tuning run from its final weights (`<run>/final/`).

Which run: `resume=<run dir>`, else the newest finished run of the config under runs_dir,
narrowed to the method / task / seed given on the command line (`finetune.method=`, `task=`
or `data.local_task=`, `seed=`) when any is given. The run is rebuilt from its own
config.yaml (base model, data, fine-tuning), with the current command's `eval.*`, `data_dir`,
`device` and `precision`. The tiny model's pre-trained weights come from the base cache (built
again, identically, if missing); the paper path's from the run's `model.path`. Under
`accelerate launch` every process generates its share of the evaluation.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from papers.spider import pipeline
from papers.spider.config import SpiderConfig
from papers.spider.finetune import FINAL, load_final
from shared import UserError
from shared.cli import Context
from shared.config import load_config
from shared.runs import RESULT_FILE, is_done

SELECTORS = {"finetune.method": "method", "task": "task", "data.local_task": "task", "seed": "seed"}


def _given(ctx: Context) -> dict:
    """{"method"/"task"/"seed": value} for the selectors on the command line."""
    out = {}
    for item in ctx.overrides:
        key, _, value = item.partition("=")
        if key in SELECTORS:
            out[SELECTORS[key]] = int(value) if key == "seed" else value
    return out


def _stamp(run: Path) -> str:
    return run.name.split("-", 1)[1] if "-" in run.name else ""


def find_run(cfg: SpiderConfig, ctx: Context) -> Path:
    """The finished run `eval` evaluates (see the module docstring)."""
    if cfg.resume not in ("", "latest"):
        run = Path(cfg.resume)
        if not run.is_dir():
            raise UserError(f"resume={cfg.resume}: no such run directory")
        if not (run / "config.yaml").is_file() or run.parent.name == "reproduce":
            raise UserError(f"resume={cfg.resume}: not a spider fine-tuning run directory (it holds no "
                            "config.yaml)")
        if not is_done(run) or not (run / RESULT_FILE).is_file():
            raise UserError(f"run {run} has not finished: continue it with train resume={run}")
        return run
    root = Path(cfg.runs_dir) / ctx.slug / ctx.config_name
    want = _given(ctx)
    runs = []
    for run in root.glob("*/seed*-*") if root.is_dir() else []:
        if run.parent.name == "reproduce" or not is_done(run) or not (run / RESULT_FILE).is_file():
            continue
        result = json.loads((run / RESULT_FILE).read_text())
        if all(result.get(k) == v for k, v in want.items()):
            runs.append(run)
    if not runs:
        which = ", ".join(f"{k} {v}" for k, v in want.items())
        raise UserError(f"no finished spider run of config '{ctx.config_name}'{' with ' + which if which else ''} "
                        f"under {cfg.runs_dir}: train one first (python -m papers.spider train --config "
                        f"{ctx.config_name} ...)")
    return max(runs, key=_stamp)


def run_config(cfg: SpiderConfig, ctx: Context, run: Path) -> SpiderConfig:
    """The run's own config with this command's eval settings, data_dir, device and precision."""
    saved = load_config(SpiderConfig, ctx.paper_dir / "configs", str(run / "config.yaml"), [])
    return replace(saved, eval=cfg.eval, data_dir=cfg.data_dir, device=cfg.device, precision=cfg.precision,
                   runs_dir=cfg.runs_dir, wandb=False, resume="")


def evaluate_run(cfg: SpiderConfig, ctx: Context) -> dict | None:
    """{"run_dir", "method", "task", "seed", "downstream", "upstream", "H", "upstream/<t>"...,
    "recorded": the run's own result, "reevaluated": False when the run kept no final
    weights}; None on a non-main process of a launch."""
    from papers.spider.train import launched, on_main

    accelerator = None
    if launched():
        from shared.device import make_accelerator

        accelerator = make_accelerator(cfg.device, cfg.precision)
    run = Path(on_main(accelerator, lambda: str(find_run(cfg, ctx))) if accelerator else find_run(cfg, ctx))
    recorded = json.loads((run / RESULT_FILE).read_text())
    method, task, seed = recorded["method"], recorded["task"], recorded["seed"]
    head = {"run_dir": str(run), "method": method, "task": task, "seed": seed, "recorded": recorded}
    if not (run / FINAL).is_dir():  # finished before runs kept their final weights
        return {**head, **{k: v for k, v in recorded.items() if k in ("downstream", "upstream", "H")
                           or k.startswith("upstream/")}, "reevaluated": False}
    rcfg = run_config(cfg, ctx, run)
    if rcfg.model.source == "local":
        scores = _evaluate_local(rcfg, run, task, accelerator)
    else:
        model, tokenizer, _ = pipeline.load_base(rcfg, show_progress=False)
        load_final(run, model)
        upstream, _ = pipeline.eval_sets(rcfg, downstream=False)
        scores = pipeline.evaluate(rcfg, model, tokenizer, upstream, {task: pipeline.downstream_eval(rcfg, task)},
                                   accelerator=accelerator)
    if accelerator is not None and not accelerator.is_main_process:
        return None
    out = {**head, **{k: v for k, v in scores.items() if k.startswith("upstream")}, "reevaluated": True}
    out[f"downstream/{task}"] = out["downstream"] = scores[f"downstream/{task}"]
    out["H"] = pipeline.harmonic(out["upstream"], out["downstream"])
    return out


def _evaluate_local(rcfg: SpiderConfig, run: Path, task: str, accelerator) -> dict:
    import numpy as np

    from papers.spider import local

    if accelerator is None:
        from shared.device import make_accelerator

        accelerator = make_accelerator(rcfg.device, rcfg.precision)
    d = rcfg.data
    up_names = local.upstream_names(d.local_dir, d.local_upstream)
    suffix = d.local_suffix == "llava"
    sets = {n: local.load_dataset(d.local_dir, n, "test", local._limit(d.upstream_eval), lazy=True, suffix=suffix)
            for n in up_names}
    sets[task] = local.load_dataset(d.local_dir, task, "test", local._limit(d.downstream_eval), lazy=True,
                                    suffix=suffix)
    model, processor = local.load_llava(rcfg.model.path, rcfg.precision)
    local.llava_groups(model, rcfg.finetune.last_layers)  # the trained tensors in fp32, as in training
    load_final(run, model)
    model.to(accelerator.device)
    scores = local.evaluate_local(rcfg, model, processor, sets, accelerator)
    return {**{f"upstream/{n}": scores[n] for n in up_names},
            "upstream": float(np.mean([scores[n] for n in up_names])), f"downstream/{task}": scores[task]}
