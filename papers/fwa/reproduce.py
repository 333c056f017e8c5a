"""`reproduce`: every experiment for every seed, then results.json, RESULTS.md and plots.

Each (experiment, seed) is its own run directory and wandb run; with `resume=latest` the
finished ones are reused and an interrupted training run continues from its checkpoint.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from papers.fwa import claims, convex, nonsmooth, plots, stability
from papers.fwa.config import SCHEDULE_POWERS, FWAConfig
from papers.fwa.theory import distance_bound, step_schedule
from papers.fwa.train import train
from shared import UserError
from shared.cli import Context
from shared.config import to_dict
from shared.results import build_results, summarize, write_results
from shared.runs import finish_run, mark_done, new_reproduce_dir, open_run, write_run_info
from shared.tracking import Tracker, read_metrics

TITLE = "A Unified Analysis for Finite Weight Averaging (FWA)"


def seeded_run(cfg: FWAConfig, ctx: Context, experiment: str, seed: int,
               work: Callable[[Tracker], dict]) -> dict:
    """Run `work` for one seed in its own run directory, or reuse a finished one on resume."""
    run_dir, done = open_run(cfg, ctx.slug, ctx.config_name, experiment, seed, (f"{experiment}.",),
                             {"seed": seed, "experiment": experiment})
    if done is not None:
        return done
    with Tracker(run_dir, slug=ctx.slug, group=f"{ctx.config_name}-{experiment}",
                 name=f"{ctx.slug}__{experiment}__{ctx.config_name}__{seed}",
                 config=to_dict(cfg), use_wandb=cfg.wandb) as tracker:
        result = json.loads(json.dumps(work(tracker)))  # the same shape as a reused result
    finish_run(run_dir, result)
    return result


def run_sweep(cfg: FWAConfig, ctx: Context, experiment: str, data) -> tuple[dict, list[dict]]:
    """Every seed of the convex or stability sweep: (aggregate over seeds, per-seed results)."""
    module, sub = {"convex": (convex, cfg.convex), "stability": (stability, cfg.stability)}[experiment]
    per_seed = [seeded_run(cfg, ctx, experiment, seed,
                           lambda tr, seed=seed: module.run_seed(sub, seed, tr, data))
                for seed in cfg.seeds]
    return module.aggregate(sub, per_seed), per_seed


def run_nonconvex(cfg: FWAConfig, ctx: Context) -> tuple[dict, dict, dict, list[int]]:
    """Final metrics {method: {metric: [per seed]}} and per-epoch curves of every seed."""
    finals: dict = {}
    curves: dict = {}
    gaps: dict = {}
    epochs: list[int] = []
    for seed in cfg.seeds:
        result = train(cfg, ctx, seed)
        for key, value in result["final"].items():
            method, metric = key.split("/")
            finals.setdefault(method, {}).setdefault(metric, []).append(value)
        evals = [r for r in read_metrics(result["run_dir"]) if "epoch" in r]
        epochs = [r["epoch"] for r in evals]
        for method in finals:
            curves.setdefault(method, []).append([r.get(f"{method}/test_acc", np.nan) for r in evals])
            gaps.setdefault(method, []).append([r.get(f"{method}/loss_gap", np.nan) for r in evals])
    return finals, curves, gaps, epochs


def convex_methods(cfg: FWAConfig, summary: dict, methods: dict) -> list[list]:
    """Headline metric per method (c/√t, T max) and the full table over schedules."""
    rows = []
    for name in cfg.convex.datasets:
        for schedule in cfg.convex.schedules:
            for method, v in summary[name][schedule].items():
                row = [name, schedule, method, summarize(v["final"])]
                row += [v["ratio"][-1], v["theory"][-1]] if "ratio" in v else ["", ""]
                rows.append(row)
                if schedule == "sqrt":
                    methods.setdefault(method, {})[f"convex F−F* ({name})"] = summarize(v["final"])
    return rows


def convex_tables(cfg: FWAConfig, summary: dict, per_seed: list[dict], methods: dict) -> list[dict]:
    c = cfg.convex
    tables = [{"title": f"{claims.CONVEX_FINAL}{c.steps}",
               "columns": ["dataset", "schedule", "method", "F − F*", "ratio to SGD",
                           "theory ratio"],
               "rows": convex_methods(cfg, summary, methods)}]
    if "sqrt" in c.schedules:
        names = ["sgd"] + [f"fwa{k}" for k in c.windows if k > 1]
        rows = []
        for name in c.datasets:
            for T in summary[name]["sqrt"]["sgd"]["T"]:
                row = [name, T]
                for method in names:
                    curve = per_seed[0][name]["sqrt"][method]["T"]
                    row.append(summarize([s[name]["sqrt"][method]["value"][curve.index(T)]
                                          for s in per_seed]) if T in curve else "")
                rows.append(row)
        tables.append({"title": f"{claims.CONVEX_CURVES} (per seed in results.json)",
                       "columns": ["dataset", "T", *names], "rows": rows})
    diag = convex.diagnostics(c, per_seed)
    if diag is not None:
        tables.append({
            "title": f"{claims.CONVEX_DIAGNOSTICS} τ (SGD's F(w_t) − F* over the last half)",
            "columns": ["dataset", "schedule", "SGD F − F* at T/4", "SGD F − F* at T",
                        "τ̂ (steps)", "series length"],
            "rows": [[name, schedule, summarize(d["quarter"]), summarize(d["final"]),
                      summarize(d["tau"]), d["length"]]
                     for name, per in diag.items() for schedule, d in per.items()]})
    return tables


def convex_steps_table(cfg: FWAConfig, datasets: dict) -> dict:
    """α₁, β and α₁·β per dataset and schedule (the step-size rule's record)."""
    rows = []
    for name, (*_, lrs, shifts, steps) in datasets.items():
        for schedule in cfg.convex.schedules:
            first = steps["first"][schedule]
            rows.append([name, schedule, lrs[schedule], shifts[schedule], first, steps["beta"],
                         first * steps["beta"], steps["bound_optimal"]])
    return {"title": claims.CONVEX_STEPS,
            "columns": ["dataset", "schedule", "c", "shift t₀", "α₁", "β", "α₁·β", "D/G"],
            "rows": rows}


def nonsmooth_table(cfg: FWAConfig, rows: list[dict]) -> dict:
    names = list(rows[-1]["window"])
    columns = ["T", "sgd", *names, *[f"sgd/{m}" for m in names],
               *[f"theory {m}" for m in names], "lower bound log T/(32√T)"]
    out = []
    for r in rows:
        out.append([r["T"], r["value"]["sgd"], *[r["value"].get(m, "") for m in names],
                    *[r["ratio"].get(m, "") for m in names],
                    *[r["theory"].get(m, "") for m in names], r["lower_bound"]])
    return {"title": claims.NONSMOOTH_CURVES, "columns": columns, "rows": out}


def stability_methods(cfg: FWAConfig, summary: dict, methods: dict) -> list[list]:
    s = cfg.stability
    rows = []
    for model in s.models:
        for schedule in s.schedules:
            for n in s.sizes:
                entry = summary[model][n][schedule]
                sgd = entry["sgd"]["mean"][-1]
                for method, v in entry.items():
                    window = summarize(v["window_delta"]) if v["window_delta"] is not None else ""
                    rows.append([model, schedule, n, method, summarize(v["final"]),
                                 v["mean"][-1] / sgd, summarize(v["gap"]), window])
                    if model == s.models[0] and schedule == s.schedules[0] and n == max(s.sizes):
                        methods.setdefault(method, {})[f"stability ‖w̄−w̄′‖ ({model}, {schedule}, n={n})"] = summarize(v["final"])
    return rows


def stability_tables(cfg: FWAConfig, summary: dict, data: tuple, methods: dict) -> list[dict]:
    s = cfg.stability
    tables = [{"title": f"{claims.STABILITY_FINAL}{s.steps}",
               "columns": ["model", "schedule", "n", "method", "distance", "ratio to SGD",
                           "test − train loss", "mean δ_t over the window"],
               "rows": stability_methods(cfg, summary, methods)}]
    if "convex" in s.models:
        const = stability.bound_constants(data)
        rows = []
        for schedule in s.schedules:
            alphas = step_schedule(s.steps, s.lr[schedule], SCHEDULE_POWERS[schedule])
            for n in s.sizes:
                sgd = summary["convex"][n][schedule]["sgd"]
                for j, T in enumerate(sgd["T"]):
                    rows.append([schedule, n, T, summarize([v[j] for v in sgd["values"]]),
                                 distance_bound(alphas[:T], const["L"], n)])
        tables.append({"title": f"{claims.STABILITY_CURVES} (2L/n) Σ_{{s≤T}} α_s",
                       "columns": ["schedule", "n", "T", "distance", "bound"], "rows": rows})
        tables.append({"title": claims.STABILITY_CONSTANTS,
                       "columns": ["quantity", "value", "meaning"],
                       "rows": [["L", const["L"], "max‖x‖ over the pool: Lipschitz constant of "
                                 "the logistic loss"],
                                ["beta", const["beta"], "max‖x‖²/4 over the pool: its smoothness"]]})
    return tables


def nonconvex_table(cfg: FWAConfig, curves: dict, gaps: dict, epochs: list[int]) -> dict:
    compared = ["sgd"] + [f"lawa{k}" for k in cfg.train.lawa_windows]

    def cell(runs, j):
        values = [run[j] for run in runs]
        return "" if any(np.isnan(values)) else summarize(values)

    columns = ["epoch"] + [f"{m} test acc" for m in compared] + \
        [f"{m} test − train loss" for m in compared]
    rows = [[epoch] + [cell(curves[m], j) for m in compared] + [cell(gaps[m], j) for m in compared]
            for j, epoch in enumerate(epochs)]
    return {"title": f"{claims.NONCONVEX_CURVES} ({cfg.train.dataset}, per seed in results.json)",
            "columns": columns, "rows": rows}


def launcher_processes() -> tuple[int, bool]:
    """(world size, is this the main process) from torchrun's / accelerate launch's variables."""
    return int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0")) == 0


def reproduce(cfg: FWAConfig, ctx: Context) -> Path | None:
    """Every configured experiment for every seed, then one result set (results.json,
    RESULTS.md, plots) in a new reproduce directory.

    Under a launcher (torchrun, accelerate launch) only the network training is spread over
    the processes: `experiments=[nonconvex]` there (the convex and stability sweeps are
    single-process work), and the main process alone writes the result set; a later
    one-process `reproduce ... resume=latest` reuses those finished training runs."""
    world, main = launcher_processes()
    if world > 1 and set(cfg.experiments) != {"nonconvex"}:
        extra = sorted(set(cfg.experiments) - {"nonconvex"})
        raise UserError(f"reproduce on {world} processes trains the networks only: set "
                        f"experiments=[nonconvex] (the {' and '.join(extra)} sweep runs in one "
                        "process; run it without the launcher, resume=latest reuses the training)")
    if not main:
        run_nonconvex(cfg, ctx)  # each training step is collective; the main process writes
        return None
    out = new_reproduce_dir(cfg.runs_dir, ctx.slug, ctx.config_name)
    write_run_info(out, cfg)
    plot_dir = out / "plots"
    methods: dict = {}
    tables, plot_paths = [], []
    raw: dict = {}
    if "convex" in cfg.experiments:
        datasets = convex.prepare(cfg.convex)
        summary, per_seed = run_sweep(cfg, ctx, "convex", datasets)
        raw["convex"] = summary
        tables += convex_tables(cfg, summary, per_seed, methods)
        tables.append(convex_steps_table(cfg, datasets))
    if "nonsmooth" in cfg.experiments:
        ns = cfg.nonsmooth
        rows = nonsmooth.sweep(ns.horizons, ns.fractions, ns.windows, ns.lr, cfg.convex.theory_c0)
        raw["nonsmooth"] = rows
        tables.append(nonsmooth_table(cfg, rows))
        plot_paths += plots.nonsmooth_plots(cfg, rows, plot_dir)
        plot_paths += plots.convex_plots(cfg, summary, plot_dir)
    if "stability" in cfg.experiments:
        data = stability.pool(cfg.stability)
        summary, _ = run_sweep(cfg, ctx, "stability", data)
        raw["stability"] = summary
        tables += stability_tables(cfg, summary, data, methods)
        plot_paths += plots.stability_plots(cfg, summary, plot_dir)
    if "nonconvex" in cfg.experiments:
        finals, curves, gaps, epochs = run_nonconvex(cfg, ctx)
        raw["nonconvex"] = {"final": finals, "test_acc": curves, "loss_gap": gaps, "epochs": epochs}
        for method, metrics in finals.items():
            for metric in ("test_acc", "train_acc", "acc_gap", "loss_gap"):
                methods.setdefault(method, {})[f"{cfg.train.dataset} {metric}"] = summarize(metrics[metric])
        tables.append(nonconvex_table(cfg, curves, gaps, epochs))
        plot_paths += plots.nonconvex_plots(cfg, curves, gaps, epochs, plot_dir)
    (out / "raw.json").write_text(json.dumps(raw, default=str) + "\n")
    results = build_results(
        paper=ctx.slug, title=TITLE, config=ctx.config_name, seeds=cfg.seeds, methods=methods,
        claims=[], tables=tables, plots=plot_paths,
        notes=["The paper publishes no experiment design or code; every experiment here is ours "
               "(see papers/fwa/README.md).",
               "All averaged outputs of an experiment are read off the same SGD trajectory per seed.",
               "Non-convex numbers are the final epoch's, never the best epoch's."])
    # The claims are computed from exactly what results.json will hold (the JSON round trip),
    # so `python -m papers.fwa.claims rerender` on the written file gives the same claims.
    results = json.loads(json.dumps(results))
    results["claims"], results["protocol_notes"] = claims.claims_from_record(cfg, results)
    write_results(out, results)
    mark_done(out)
    return out
