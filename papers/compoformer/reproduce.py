"""`reproduce`: the sequence's datasets and their report, every (method, seed) continual run
side by side in `parallel_runs` processes, then results.json, RESULTS.md and plots (the R heat
map of every method, P over stages, CompoFormer's α over earlier tasks).

With `resume=latest` finished runs are reused and interrupted ones continue from their latest
checkpoint (also in the middle of the task sequence).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from papers.compoformer.claims import PAPER_F, PAPER_P, paper_claims, paper_protocol_notes
from papers.compoformer.config import COMPOFORMER, CompoFormerConfig
from papers.compoformer.tasks import sequence, short
from papers.compoformer.train import load_sequence_data, train
from shared.cli import Context
from shared.offline_rl import dataset_report
from shared.results import build_results, line_plot, summarize, write_results
from shared.runs import new_reproduce_dir, run_jobs

TITLE = "CompoFormer: continual offline RL by adaptive self-composition (Offline Continual World)"


def prepare_data(cfg: CompoFormerConfig, out_dir: Path) -> str:
    """Generate or verify every task's dataset (in parallel, cached) and write the report."""
    return dataset_report({cfg.data.quality: load_sequence_data(cfg)}, out_dir)


def _one_run(args: tuple) -> dict:
    cfg, ctx, method, seed, *label = args
    return train(cfg, ctx, method, seed, label=label[0] if label else "")


LAMBDA_KEY = {"l2": "l2_lambda", "ewc": "ewc_lambda", "mas": "mas_lambda"}


def sweep_values(cfg: CompoFormerConfig) -> dict[str, list[float]]:
    """method -> its λ values, for the regularised methods of the grid with a sweep list."""
    return {m: [float(v) for v in getattr(cfg.sweep, m)] for m in LAMBDA_KEY
            if m in cfg.train.methods and getattr(cfg.sweep, m)}


def with_lambda(cfg: CompoFormerConfig, method: str, lam: float, validation: bool = False) -> CompoFormerConfig:
    """A copy of cfg with the method's λ (and, for a validation run, the held-out goals)."""
    out = replace(cfg, baselines=replace(cfg.baselines, **{LAMBDA_KEY[method]: float(lam)}))
    if validation:
        out = replace(out, eval=replace(cfg.eval, first_goal=cfg.sweep.first_goal))
    return out


def lambda_label(lam: float) -> str:
    return f"val-lambda{lam:g}"


def choose_lambda(values: list[float], scores: list[float]) -> float:
    """The λ of the highest validation P; ties go to the earlier value of the list."""
    best = max(range(len(values)), key=lambda i: (scores[i], -i))
    return values[best]


def sweep_jobs(cfg: CompoFormerConfig, ctx: Context) -> list[tuple]:
    return [(with_lambda(cfg, m, lam, validation=True), ctx, m, cfg.sweep.seed, lambda_label(lam))
            for m, values in sweep_values(cfg).items() for lam in values]


def sweep_table(cfg: CompoFormerConfig, summaries: dict[tuple[str, float], dict]) -> tuple[dict, dict]:
    """method -> chosen λ, and the sweep record (per method: values, validation P and F)."""
    chosen, record = {}, {}
    for m, values in sweep_values(cfg).items():
        runs = [summaries[(m, v)] for v in values]
        p = [float(r["P"]) for r in runs]
        chosen[m] = choose_lambda(values, p)
        record[m] = {"values": values, "P": p, "F": [float(r["F"]) for r in runs],
                     "learned": [float(np.mean(np.asarray(r["learned"]) >= cfg.eval.learned_level)) for r in runs],
                     "chosen": chosen[m]}
    return chosen, record


def stage_curve(summary: dict) -> list[float]:
    """The current task's success against position within a stage, averaged over the stages
    that trained (a reused stage stops after its warm-up and check)."""
    points: dict[int, list[float]] = {}
    reused = {str(k) for k, c in summary.get("checks", {}).items() if c["reused"]}
    for stage, curve in summary["curves"].items():
        if stage in reused:
            continue
        for pos, success in curve:
            points.setdefault(int(pos), []).append(float(success))
    return [float(np.mean(points[p])) for p in sorted(points)]


def per_run_metrics(summary: dict, level: float) -> dict[str, float]:
    out = {"P": summary["P"]}
    if summary["F"] is not None:
        learned = np.asarray(summary["learned"])
        out.update(F=summary["F"], FWT=summary["FWT"],
                   learned_fraction=float(np.mean(learned >= level)),
                   learned_mean=float(np.mean(learned)))
    if summary.get("reused") is not None:
        final = np.asarray(summary["R"][-1], dtype=float)
        reused = [i + 1 for i, r in enumerate(summary["reused"]) if r]
        out["reused_tasks"] = float(len(reused))
        out["reuse_share"] = float(final[reused].sum() / len(final)) if reused else 0.0
    return out


def collect(cfg: CompoFormerConfig, summaries: list[dict]) -> tuple[dict, dict, dict]:
    by_method: dict[str, list[dict]] = {}
    for s in summaries:
        by_method.setdefault(s["method"], []).append(s)
    methods, curves = {}, {}
    for m in cfg.train.methods:
        runs = sorted(by_method.get(m, []), key=lambda s: s["seed"])
        if not runs:
            continue
        rows = [per_run_metrics(s, cfg.eval.learned_level) for s in runs]
        methods[m] = {k: summarize([r[k] for r in rows]) for k in rows[0]}
        curves[m] = [stage_curve(s) for s in runs]
    return methods, curves, by_method


def mean_matrix(runs: list[dict], key: str = "R") -> np.ndarray:
    import warnings

    mats = np.stack([np.array([[np.nan if v is None else v for v in row] for row in s[key]], float)
                     for s in runs])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN entries stay NaN
        return np.nanmean(mats, 0)


def tables(cfg: CompoFormerConfig, methods: dict, by_method: dict) -> list[dict]:
    col = 0 if len(sequence(cfg.data.sequence, cfg.data.stages)) <= 10 else 1
    rows = []
    for m, metrics in methods.items():
        runs = by_method[m]
        rows.append([m, PAPER_P.get(m, (None, None))[col], metrics["P"], PAPER_F.get(m),
                     metrics.get("F", "-"), metrics.get("FWT", "-"),
                     metrics.get("learned_fraction", "-"),
                     int(np.mean([s["trainable_parameters"] for s in runs]))])
    out = [{"title": "P / F / FWT (mean ± std over seeds) beside the paper's OCW numbers",
            "columns": ["method", "paper P", "ours P", "paper F", "ours F", "ours FWT",
                        "tasks learned in their stage", "backbone parameters trained"],
            "rows": rows}]
    tasks = [short(t) for t in sequence(cfg.data.sequence, cfg.data.stages)]
    for m in methods:
        r = mean_matrix(by_method[m])
        out.append({"title": f"R[t][i] of {m} (mean over seeds; rows: after stage t)",
                    "columns": ["after stage", *tasks],
                    "rows": [[f"{t}: {tasks[t]}", *[None if np.isnan(v) else round(float(v), 3) for v in row]]
                             for t, row in enumerate(r)]})
    checks = []
    for m in methods:
        if m not in COMPOFORMER:
            continue
        for s in by_method[m]:
            for n, c in sorted(s["checks"].items(), key=lambda kv: int(kv[0])):
                checks.append([m, s["seed"], tasks[int(n)], tasks[c["top"]], c["success"], c["reused"],
                               " ".join(f"{a:.2f}" for a in s["alphas"][n])])
    if checks:
        out.append({"title": "Online reuse checks (hard top-1 α, online episodes on the new task)",
                    "columns": ["method", "seed", "new task", "top-1 earlier task", "online success",
                                "reused", "α over earlier tasks"], "rows": checks})
    return out


def plots(cfg: CompoFormerConfig, methods: dict, by_method: dict, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = [short(t) for t in sequence(cfg.data.sequence, cfg.data.stages)]
    (out / "plots").mkdir(parents=True, exist_ok=True)
    paths = []
    names = list(methods)
    cols = min(4, len(names))
    rows = int(np.ceil(len(names) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.0 * rows), squeeze=False)
    for ax, m in zip(axes.flat, names):
        r = mean_matrix(by_method[m])
        ax.imshow(np.ma.masked_invalid(r), vmin=0, vmax=1, cmap="viridis")
        ax.set_title(m, fontsize=9)
        ax.set_xticks(range(len(tasks)), tasks, rotation=90, fontsize=6)
        ax.set_yticks(range(len(tasks)), [f"after {t}" for t in range(len(tasks))], fontsize=6)
        for (t, i), v in np.ndenumerate(r):
            if not np.isnan(v):
                ax.text(i, t, f"{v:.2f}", ha="center", va="center", fontsize=5, color="w")
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.suptitle("R[t][i]: success on task i after stage t (mean over seeds)")
    fig.tight_layout()
    fig.savefig(out / "plots" / "R_heatmaps.png", dpi=120)
    plt.close(fig)
    paths.append("plots/R_heatmaps.png")
    series = {}
    for m in names:
        runs = [s for s in by_method[m] if s["p_over_stages"] is not None]
        if runs:
            p = np.mean([s["p_over_stages"] for s in runs], 0)
            series[m] = (list(range(len(p))), list(p))
    if series:
        line_plot(out / "plots" / "P_over_stages.png", series, xlabel="stage",
                  ylabel="mean success over the tasks seen so far", title="P over stages")
        paths.append("plots/P_over_stages.png")
    compo = [m for m in names if m in COMPOFORMER]
    if compo:
        fig, axes = plt.subplots(1, len(compo), figsize=(4 * len(compo), 3.5), squeeze=False)
        for ax, m in zip(axes.flat, compo):
            a = np.full((len(tasks), len(tasks)), np.nan)
            for n in range(1, len(tasks)):
                vals = [s["alphas"][str(n)] for s in by_method[m] if str(n) in s["alphas"]]
                if vals:
                    a[n, :n] = np.mean(vals, 0)
            ax.imshow(np.ma.masked_invalid(a), vmin=0, vmax=1, cmap="magma")
            ax.set_title(f"{m}: α (row: new task)", fontsize=9)
            ax.set_xticks(range(len(tasks)), tasks, rotation=90, fontsize=6)
            ax.set_yticks(range(len(tasks)), tasks, fontsize=6)
            for (t, i), v in np.ndenumerate(a):
                if not np.isnan(v):
                    ax.text(i, t, f"{v:.2f}", ha="center", va="center", fontsize=6, color="c")
        fig.tight_layout()
        fig.savefig(out / "plots" / "alpha.png", dpi=120)
        plt.close(fig)
        paths.append("plots/alpha.png")
    return paths


def notes(cfg: CompoFormerConfig) -> list[str]:
    d = cfg.data
    return [f"Sequence {d.sequence}{f' (first {d.stages} stages)' if d.stages else ''}: "
            f"{', '.join(short(t) for t in sequence(d.sequence, d.stages))}; {d.episodes} "
            f"{d.quality} episodes × {d.max_steps} steps per task (Meta-World v3 scripted policy).",
            f"{cfg.train.iterations} updates per task for every method (MTL: × tasks in one stage); "
            f"evaluation {cfg.eval.goals} goal variations per task.",
            "CompoFormer's reuse check runs the composed policy online "
            f"({cfg.compo.check_episodes} episodes per new task): it is not purely offline."]


def sweep_results_table(cfg: CompoFormerConfig, sweep: dict) -> dict:
    rows = [[m, v, p, f, n, "yes" if v == rec["chosen"] else ""]
            for m, rec in sweep.items()
            for v, p, f, n in zip(rec["values"], rec["P"], rec["F"], rec["learned"])]
    return {"title": f"λ sweep: validation runs (seed {cfg.sweep.seed}, held-out goal variations "
                     f"{cfg.sweep.first_goal}..{cfg.sweep.first_goal + cfg.eval.goals - 1}); the best validation P is used",
            "columns": ["method", "λ", "validation P", "validation F", "tasks learned", "chosen"], "rows": rows}


def sweep_notes(cfg: CompoFormerConfig, sweep: dict) -> list[str]:
    if not sweep:
        return []
    return ["λ sweep for " + ", ".join(f"{m} ({', '.join(f'{v:g}' for v in rec['values'])}: chose {rec['chosen']:g})"
                                      for m, rec in sweep.items())
            + f": one validation run per value (seed {cfg.sweep.seed}, not a recorded seed; held-out goal "
              f"variations from {cfg.sweep.first_goal}), the same budget for each; the highest validation P "
              "wins (ties: the earlier value)."]


def reproduce(cfg: CompoFormerConfig, ctx: Context) -> Path:
    out = new_reproduce_dir(cfg.runs_dir, ctx.slug, ctx.config_name)
    data_md = prepare_data(cfg, out)
    # The λ sweep (validation seed, held-out goals) runs beside the methods that do not
    # depend on it; the swept methods' recorded runs follow with the chosen λ.
    swept = sweep_values(cfg)
    val_jobs = sweep_jobs(cfg, ctx)
    first = [(cfg, ctx, m, s) for m in cfg.train.methods if m not in swept for s in cfg.seeds]
    longest = [j for j in first if j[2] in COMPOFORMER]  # first, so that the pool ends evenly
    order = longest + val_jobs + [j for j in first if j[2] not in COMPOFORMER]
    results_of = dict(zip(map(id, order), run_jobs(_one_run, order, cfg.parallel_runs, "compoformer runs")))
    done = [results_of[id(j)] for j in val_jobs + first]
    val = {(j[2], float(getattr(j[0].baselines, LAMBDA_KEY[j[2]]))): results_of[id(j)] for j in val_jobs}
    chosen, sweep = sweep_table(cfg, val)
    later = [(with_lambda(cfg, m, chosen[m]), ctx, m, s) for m in cfg.train.methods if m in swept
             for s in cfg.seeds]
    summaries = done[len(val_jobs):] + run_jobs(_one_run, later, cfg.parallel_runs, "compoformer runs (swept λ)")
    methods, curves, by_method = collect(cfg, summaries)
    results = build_results(
        paper="compoformer", title=TITLE, config=ctx.config_name, seeds=cfg.seeds, methods=methods,
        claims=paper_claims(methods, curves, cfg.eval.learned_level),
        protocol_notes=paper_protocol_notes(methods), tables=tables(cfg, methods, by_method),
        plots=plots(cfg, methods, by_method, out),
        notes=notes(cfg) + sweep_notes(cfg, sweep) + ["Datasets:\n\n" + data_md])
    if sweep:
        results["tables"].insert(1, sweep_results_table(cfg, sweep))
    results["stage_curves"] = curves
    results["sweep"] = sweep
    results["lambdas"] = {m: chosen.get(m, float(getattr(cfg.baselines, k))) for m, k in LAMBDA_KEY.items()
                          if m in cfg.train.methods}
    results["learned_level"] = cfg.eval.learned_level
    results["runs"] = [{k: s[k] for k in ("method", "seed", "R", "R_init", "checks", "alphas", "reused", "P", "F", "FWT")}
                       for s in summaries]
    write_results(out, results)
    return out
