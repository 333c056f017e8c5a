"""`reproduce`: build (or load) the base model and the reward model once, run every
(method, seed) and (SDPO ablation, seed) side by side in `parallel_runs` processes, then
write results.json, RESULTS.md, the curves and the before/after image grids.

With `resume=latest` finished runs are reused and interrupted ones continue from their
latest checkpoint.
"""

from __future__ import annotations

import copy
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

import torch

from papers.sdpo import claims, report
from papers.sdpo.config import SDPOExperimentConfig
from papers.sdpo.train import check_inputs, load_backbone, new_accelerator, on_main, run_name, train
from shared import UserError
from shared.cli import Context
from shared.results import build_results, summary_line, write_results
from shared.runs import new_reproduce_dir, run_jobs

TITLE = "SDPO: Aligning Few-Step Diffusion Models with Dense Reward Difference Learning"


def prepare(cfg: SDPOExperimentConfig) -> None:
    """Build the cached base model and reward model before the runs start (once, here)."""
    from papers.sdpo.rewards import build_reward

    check_inputs(cfg)
    device = torch.device("cpu") if cfg.device == "auto" else torch.device(cfg.device)
    load_backbone(cfg, device)
    build_reward(cfg, device)


def jobs(cfg: SDPOExperimentConfig) -> list[tuple[str, str, int]]:
    runs = [(m, "", s) for m in cfg.train.methods for s in cfg.seeds]
    ablation_seeds = cfg.seeds[: cfg.train.ablation_seeds]
    runs += [("sdpo", a, s) for a in cfg.train.ablations for s in ablation_seeds]
    return runs


def _one_run(args: tuple) -> dict:
    cfg, ctx, method, ablation, seed, *name = args
    return train(cfg, ctx, method, ablation, seed, name=name[0] if name else None)


# ------------------------------------------------------------------ the sweep (equal terms)


def _get(cfg, path: str) -> float:
    obj = cfg
    for part in path.split("."):
        obj = getattr(obj, part)
    return float(obj)


def setting_config(cfg: SDPOExperimentConfig, method: str, lr: float, clip: float | None,
                   split: str | None = None, every: int | None = None) -> SDPOExperimentConfig:
    """`cfg` with the method's learning rate and trust-region value (and eval split)."""
    out = copy.deepcopy(cfg)
    out.train.lr = float(lr)
    knob = claims.TRUST_REGION[method]
    if knob is not None and clip is not None:
        section, name = knob.split(".")
        setattr(getattr(out, section), name, float(clip))
    if split is not None:
        out.eval.split = split
    if every is not None:
        out.eval.every = every
    return out


def sweep_points(cfg: SDPOExperimentConfig, method: str) -> list[tuple[float, float | None]]:
    """(lr, trust-region value) pairs the sweep tries for `method`: every learning rate of
    train.sweep_lrs and, for SDPO, DDPO and D3PO, every value of train.sweep_clips."""
    knob = claims.TRUST_REGION[method]
    lrs = cfg.train.sweep_lrs or [cfg.train.lr]
    clips = (cfg.train.sweep_clips or [_get(cfg, knob)]) if knob else [None]
    return [(float(lr), None if c is None else float(c)) for lr in lrs for c in clips]


def sweep_name(method: str, lr: float, clip: float | None) -> str:
    return f"sweep-{method}-lr{lr:g}" + ("" if clip is None else f"-clip{clip:g}")


def has_sweep(cfg: SDPOExperimentConfig) -> bool:
    return bool(cfg.train.sweep_lrs or cfg.train.sweep_clips)


def score(summary: Mapping, steps: list[int]) -> float:
    """What the sweep maximises: the final validation reward averaged over the step counts
    (the paper's claim is about every budget at once)."""
    return float(sum(summary[f"final_{n}"] for n in steps) / len(steps))


def run_sweep(cfg: SDPOExperimentConfig, ctx: Context) -> tuple[dict, list[dict]]:
    """Every method at every sweep point, seed `train.sweep_seed`, the same epochs (the same
    sample budget), scored on the validation prompts; returns ({method: (lr, clip)}, rows)."""
    methods = list(cfg.train.methods)
    if cfg.train.ablations and "sdpo" not in methods:
        methods.insert(0, "sdpo")
    points = [(m, lr, c) for m in methods for lr, c in sweep_points(cfg, m)]
    args = [(setting_config(cfg, m, lr, c, split="val", every=cfg.train.epochs), ctx, m, "",
             cfg.train.sweep_seed, sweep_name(m, lr, c)) for m, lr, c in points]
    summaries = run_jobs(_one_run, args, cfg.parallel_runs, "sdpo sweep")
    best, rows = {}, []
    for (m, lr, c), summ in zip(points, summaries, strict=True):
        value = score(summ, cfg.eval.steps)
        rows.append({"method": m, "lr": lr, "clip": c, "score": value, "summary": summ})
        if m not in best or value > best[m][2]:
            best[m] = (lr, c, value)
    return {m: (lr, c) for m, (lr, c, _) in best.items()}, rows


def sweep_table(cfg: SDPOExperimentConfig, rows: list[dict], chosen: Mapping) -> dict:
    columns = ["Method", "lr", "Trust region", *[f"val {steps_label(n)}" for n in cfg.eval.steps],
               "val mean", "clip fraction", "mean |Δ log π|", "chosen"]
    out = []
    for r in rows:
        s = r["summary"]
        knob = claims.TRUST_REGION[r["method"]]
        out.append([r["method"], r["lr"], f"{knob} = {r['clip']:g}" if knob else "none",
                    *[round(s[f"final_{n}"], 4) for n in cfg.eval.steps], round(r["score"], 4),
                    round(s.get("clipfrac", float("nan")), 4), float(f"{s.get('abs_dlogp', float('nan')):.3g}"),
                    "yes" if chosen.get(r["method"]) == (r["lr"], r["clip"]) else ""])
    return {"title": SWEEP_TABLE, "columns": columns, "rows": out}


def steps_label(n: int) -> str:
    return f"{n} step{'s' * (n > 1)}"


SWEEP_TABLE = "Sweep (seed train.sweep_seed, validation prompts, same sample budget)"


def run_all(cfg: SDPOExperimentConfig, ctx: Context, chosen: Mapping | None = None) -> list[dict]:
    """The final runs: each method at its chosen setting (or the config's), evaluated on
    the test prompts; the SDPO ablations at SDPO's chosen setting."""
    args = []
    for m, a, s in jobs(cfg):
        if chosen:
            lr, clip = chosen[m]
            run_cfg = setting_config(cfg, m, lr, clip)
        else:
            run_cfg = cfg
        args.append((run_cfg, ctx, m, a, s))
    return run_jobs(_one_run, args, cfg.parallel_runs, "sdpo runs")


def copy_grids(groups: dict[str, list[dict]], out: Path) -> list[str]:
    """The before grid (the base model, shared) and each run name's after grid (first seed)."""
    files = []
    for name, runs in groups.items():
        run_dir = Path(runs[0]["run_dir"])
        if not files and (run_dir / "grid-before.png").exists():
            shutil.copy(run_dir / "grid-before.png", out / "grid_base.png")
            files.append("grid_base.png")
        if (run_dir / "grid-after.png").exists():
            shutil.copy(run_dir / "grid-after.png", out / f"grid_{name}.png")
            files.append(f"grid_{name}.png")
    return files


def reproduce(cfg: SDPOExperimentConfig, ctx: Context) -> Path:
    """Every run, then the results. Under `accelerate launch` / torchrun (several processes)
    the runs go one after another, each on every process; the main process alone makes the
    reproduce directory and writes the results (one result set)."""
    check_inputs(cfg)
    processes = int(os.environ.get("WORLD_SIZE", "1"))
    if processes > 1 and cfg.parallel_runs != 1:
        raise UserError(f"parallel_runs={cfg.parallel_runs}: under {processes} processes the runs "
                        "already share the processes; set parallel_runs=1")
    accelerator = new_accelerator(cfg) if processes > 1 else None
    if accelerator is None:
        out = new_reproduce_dir(cfg.runs_dir, ctx.slug, ctx.config_name)
    else:
        out = on_main(accelerator, lambda: new_reproduce_dir(cfg.runs_dir, ctx.slug, ctx.config_name))
    prepare(cfg)
    chosen, sweep_rows = run_sweep(cfg, ctx) if has_sweep(cfg) else ({}, [])
    summaries = run_all(cfg, ctx, chosen)
    if accelerator is not None and not accelerator.is_main_process:
        return out
    groups = report.by_name(summaries)
    metrics = report.method_metrics(cfg, groups)
    methods = ["base", *cfg.train.methods]
    ablations = ["sdpo", *[run_name("sdpo", a) for a in cfg.train.ablations]]
    tables = [report.step_table(cfg, metrics, methods,
                                f"Held-out {cfg.reward.name} reward by sampling steps (final evaluation)",
                                with_paper=True)]
    if cfg.train.ablations:
        tables.append(report.step_table(cfg, metrics, ["base", *ablations], "SDPO ablations", with_paper=False))
    tables += [claims.settings_table(cfg, ctx.config_name, chosen or None), report.curves(cfg, groups),
               report.diagnostics_table(cfg, groups)]
    if sweep_rows:
        tables.append(sweep_table(cfg, sweep_rows, chosen))
    found, tables = claims.with_claims(metrics, tables, cfg.seeds)
    plots = report.plots(cfg, groups, out) + copy_grids(groups, out)
    notes = [
        f"reward: {cfg.reward.name}; policy: {cfg.policy.model} "
        f"({'LoRA rank ' + str(cfg.policy.lora_rank) if cfg.policy.lora_rank else 'full fine-tuning'}); "
        f"T = {cfg.sample.steps} training steps; {cfg.train.epochs} epochs × "
        f"{2 * cfg.sample.pairs_per_epoch} trajectories.",
        "paper columns: aesthetic score on SD-Turbo after ~30k samples (read off the authors' curves); "
        "our scale and reward differ, compare the direction and the shape across step counts.",
        f"{cfg.eval.split} prompts (held out of training) × {cfg.eval.images_per_prompt} fixed noise seeds, "
        "identical for every method, seed and evaluation; final evaluation, never the best.",
        *([f"equal terms: every method swept lr {cfg.train.sweep_lrs or [cfg.train.lr]} and, SDPO/DDPO/D3PO, "
           f"their trust region {cfg.train.sweep_clips or 'as configured'} at seed {cfg.train.sweep_seed} "
           f"and the same {cfg.train.epochs} epochs, chosen on the validation prompts (best mean reward over "
           "the step counts), then run on the seeds and scored on the test prompts"] if sweep_rows else []),
    ]
    results = build_results(paper=ctx.slug, title=TITLE, config=ctx.config_name, seeds=cfg.seeds,
                            methods=metrics, claims=found, protocol_notes=[], tables=tables,
                            plots=plots, notes=notes)
    write_results(out, results, announce=False)
    print((out / "RESULTS.md").read_text())
    print(summary_line(results, out / "results.json"), flush=True)
    return out
