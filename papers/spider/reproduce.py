"""`reproduce`: pre-train (or reuse) the tiny MLLM, evaluate it, fine-tune every method on
every downstream task for every seed, then the per-task tables (downstream, upstream, H; mean
± std over seeds), the tables the claims read (vocabulary coverage, the baselines' tuning, the
training-loss curves), the claims (papers/spider/claims.py) and a trade-off plot."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from papers.spider import pipeline
from papers.spider.claims import (
    BASE_ROW,
    build_claims,
    curve_table,
    skipped_note,
    sweep_table,
    task_table_title,
    tuning_table,
    vocabulary_table,
)
from papers.spider.train import POST_HOC, FinetuneJob, run_finetune
from shared import UserError
from shared.cli import Context
from shared.results import build_results, summarize, write_results
from shared.runs import mark_done, new_reproduce_dir, run_jobs, write_run_info

TITLE = "SPIDER: Learn from Downstream and Be Yourself in MLLM Fine-Tuning"
H_COLUMN = "H (relative: upstream % of pre-trained, downstream % of full FT)"
H_NOTE = ("H (the claims, the sweeps' choice) is the relative one: the harmonic mean of the upstream score as "
          "a % of the pre-trained model's ({up}) and the downstream score as a % of full FT's mean over seeds "
          "({refs}); the sweeps use the same references on the validation split. CIDEr-D × 100 of the tiny "
          "captions (~160) is not on the accuracies' 0-100 scale, so the paper's H of the raw scores (last "
          "column) is nearly 2 × upstream. README, Deviations.")


def _per_seed(results, method, task, key, seeds):
    by_seed = {r["seed"]: r[key] for r in results if r["method"] == method and r["task"] == task}
    return [by_seed[s] for s in seeds]


def _curves(results, tasks, methods, seeds) -> dict:
    """{(task, method): the binned training loss, mean over seeds} for every pair whose runs
    all recorded a curve of one length (a run reused from before curves were kept has none)."""
    out = {}
    for task in tasks:
        for m in methods:
            runs = {r["seed"]: r.get("loss_curve") for r in results if r["method"] == m and r["task"] == task}
            curves = [runs.get(s) for s in seeds]
            if all(curves) and len({len(c) for c in curves}) == 1:
                out[(task, m)] = np.mean(np.asarray(curves, dtype=np.float64), axis=0).tolist()
    return out


SWEPT = {"l2sp": ("l2sp_weight", "l2sp_weights"), "dare": ("dare_drop", "dare_drops"),
         "grafting": ("graft_keep", "graft_keeps")}


def sweep_values(cfg, method: str) -> list[float]:
    """The values `reproduce` tries for a baseline's hyper-parameter (the finetune.* value
    alone when experiment.<list> is empty)."""
    key, listed = SWEPT[method]
    return list(dict.fromkeys(getattr(cfg.experiment, listed))) or [getattr(cfg.finetune, key)]


def with_value(cfg, method: str, value: float):
    import dataclasses

    return dataclasses.replace(cfg, finetune=dataclasses.replace(cfg.finetune, **{SWEPT[method][0]: value}))


def rescale_h(r: dict, u_ref: float | None, d_ref: float | None) -> None:
    """Set r["H"] to the relative H (`pipeline.relative_h`) of r's upstream and downstream
    scores, keeping the paper's H of the raw scores as r["H_raw"]; without positive
    references (no full FT in experiment.methods, or a reference scoring 0) H stays the raw
    one. Idempotent."""
    r["H_raw"] = pipeline.harmonic(r["upstream"], r["downstream"])
    r["H"] = pipeline.relative_h(r["upstream"], r["downstream"], u_ref, d_ref) if _usable(u_ref, d_ref) else r["H_raw"]


def _usable(u_ref, d_ref) -> bool:
    return u_ref is not None and d_ref is not None and u_ref > 0 and d_ref > 0


def _fine_tune_all(cfg, ctx: Context, tasks, methods, val_upstream_ref: float | None = None) -> tuple[list[dict], dict]:
    """Every (method, task, seed) run, the swept baselines at their chosen values.

    A swept baseline (two or more values) runs every value on the first seed, each scored on
    the validation split too; the value with the best validation H is chosen per task and run
    on the other seeds (its first-seed run is the sweep's). That H is the relative one
    (`rescale_h`): its references are the pre-trained model's validation upstream score
    (`val_upstream_ref`) and full FT's first-seed validation downstream score (full FT's
    first-seed run is scored on the validation split too when a sweep runs). DARE and Grafting act only after
    training, so with full FT in the set they start from full FT's final weights of the same
    task and seed (FinetuneJob.source) instead of training again. Returns (results, sweep:
    {"runs": every sweep run's result, "chosen": {task: {method: value}}})."""
    seeds, s0 = cfg.seeds, cfg.seeds[0]
    swept = {m: sweep_values(cfg, m) for m in SWEPT if m in methods}
    swept = {m: v for m, v in swept.items() if len(v) > 1}
    post_hoc = [m for m in methods if m in POST_HOC and "full_ft" in methods]
    chosen: dict = {t: {} for t in tasks}
    sweep_runs: list[dict] = []

    def tag(m, v):
        return f"_{v:g}"

    def sweep_jobs(m, t, source=None):
        return [FinetuneJob(with_value(cfg, m, v), ctx, m, t, s0, val=True, tag=tag(m, v),
                            source=source(t, s0) if source else None) for v in swept[m]]

    def chosen_jobs(m, t, source=None):
        v = chosen[t][m]
        return [FinetuneJob(with_value(cfg, m, v), ctx, m, t, s, tag=tag(m, v),
                            source=source(t, s) if source else None) for s in seeds[1:]]

    def plain_jobs(m, t, source=None):
        return [FinetuneJob(cfg, ctx, m, t, s, val=bool(swept) and m == "full_ft" and s == s0,
                            source=source(t, s) if source else None) for s in seeds]

    val_down_ref: dict = {}

    def choose(runs, m, t):
        mine = [r for r in runs if r["method"] == m and r["task"] == t]
        for r, v in zip(mine, swept[m], strict=True):
            r["value"] = v
            rescale_h(r["val"], val_upstream_ref, val_down_ref.get(t))
        best = max(range(len(mine)), key=lambda i: mine[i]["val"]["H"])  # first of equals
        chosen[t][m] = swept[m][best]
        sweep_runs.extend(mine)
        return mine[best]

    # phase 1: every method that trains (the swept ones on the first seed, at each value)
    first = [j for t in tasks for m in methods if m not in post_hoc
             for j in (sweep_jobs(m, t) if m in swept else plain_jobs(m, t))]
    done = run_jobs(run_finetune, first, cfg.experiment.processes, desc="fine-tuning")
    full = {(r["task"], r["seed"]): r["run_dir"] for r in done if r["method"] == "full_ft"}
    val_down_ref.update({r["task"]: r["val"]["downstream"] for r in done
                         if r["method"] == "full_ft" and r["seed"] == s0 and "val" in r})

    def source(t, s):
        return full[(t, s)]

    final = {}
    for t in tasks:
        for m in methods:
            if m in swept and m not in post_hoc:
                final[(m, t)] = [choose(done, m, t)]
            elif m not in post_hoc:
                final[(m, t)] = [r for r in done if r["method"] == m and r["task"] == t]
    # phase 2: the trained sweeps' other seeds, the post-hoc methods' sweeps or runs
    second = [j for t in tasks for m in methods
              for j in (chosen_jobs(m, t) if m in swept and m not in post_hoc else
                        sweep_jobs(m, t, source) if m in swept else
                        plain_jobs(m, t, source) if m in post_hoc else [])]
    done = run_jobs(run_finetune, second, cfg.experiment.processes, desc="fine-tuning (2)") if second else []
    for t in tasks:
        for m in methods:
            if m in swept and m in post_hoc:
                final[(m, t)] = [choose(done, m, t)]
            elif m in swept or m in post_hoc:
                final.setdefault((m, t), []).extend(r for r in done if r["method"] == m and r["task"] == t)
    # phase 3: the post-hoc sweeps' other seeds
    third = [j for t in tasks for m in post_hoc if m in swept for j in chosen_jobs(m, t, source)]
    done = run_jobs(run_finetune, third, cfg.experiment.processes, desc="fine-tuning (3)") if third else []
    for r in done:
        final[(r["method"], r["task"])].append(r)
    results = [r for t in tasks for m in methods for r in sorted(final[(m, t)], key=lambda r: r["seed"])]
    return results, {"runs": sweep_runs, "chosen": chosen}


def reproduce(cfg, ctx: Context) -> Path:
    from papers.spider.train import launched

    if launched():
        raise UserError("reproduce on the tiny model runs experiment.processes fine-tuning runs side by "
                        "side itself: start it with plain python, not torchrun / accelerate launch (the "
                        "paper path, model.source=local, is the one to launch on several processes)")
    _warn_skipped(cfg.experiment.methods)
    import torch

    torch.set_num_threads(1)  # the tiny model's ops are too small for intra-op threads (pipeline._build_base)
    out = new_reproduce_dir(cfg.runs_dir, ctx.slug, ctx.config_name)
    write_run_info(out, cfg)
    model, tokenizer, record = pipeline.load_base(cfg)
    upstream, downstream = pipeline.eval_sets(cfg)
    base = pipeline.evaluate(cfg, model, tokenizer, upstream, downstream)
    tasks, methods = cfg.data.downstream_tasks, cfg.experiment.methods
    relative = "full_ft" in methods
    val_up_ref = None
    if relative and any(len(sweep_values(cfg, m)) > 1 for m in SWEPT if m in methods):
        val_up_ref = pipeline.evaluate(cfg, model, tokenizer, pipeline.val_sets(cfg, tasks[0])[0], {})["upstream"]
    del model
    results, sweep = _fine_tune_all(cfg, ctx, tasks, methods, val_up_ref)
    down_ref = {t: float(np.mean([r["downstream"] for r in results if r["method"] == "full_ft" and r["task"] == t]))
                for t in tasks} if relative else {}
    for r in {id(r): r for r in [*results, *sweep["runs"]]}.values():
        rescale_h(r, base["upstream"] if relative else None, down_ref.get(r["task"]))
    (out / "raw.json").write_text(json.dumps({"base": base, "runs": results, "sweep": sweep["runs"]}) + "\n")
    tables, summary = [], {}
    for task in tasks:
        b = {"upstream": base["upstream"], "downstream": base[f"downstream/{task}"]}
        rescale_h(b, base["upstream"] if relative else None, down_ref.get(task))
        rows = [[BASE_ROW, b["downstream"], b["upstream"], b["H"], b["H_raw"]]]
        for m in methods:
            d, u, h, hr = (summarize(_per_seed(results, m, task, k, cfg.seeds))
                           for k in ("downstream", "upstream", "H", "H_raw"))
            rows.append([m, d, u, h, hr])
            summary.setdefault(m, {}).update({f"{task} downstream": d, f"{task} upstream": u, f"{task} H": h,
                                              f"{task} H raw": hr})
        tables.append({"title": task_table_title(task),
                       "columns": ["method", "downstream", "upstream",
                                   H_COLUMN if _usable(base["upstream"], down_ref.get(task)) else "H (raw scores)",
                                   "H of the raw scores (the paper's)"], "rows": rows})
    tables.append({"title": "Upstream tasks of the pre-trained model (%)",
                   "columns": ["task", "score"],
                   "rows": [[k.split("/", 1)[1], v] for k, v in base.items() if k.startswith("upstream/")]})
    tables += [vocabulary_table(pipeline.vocabulary_coverage(cfg, tokenizer, tasks)),
               tuning_table(cfg, methods, sweep["chosen"], cfg.seeds[0]), sweep_table(sweep["runs"], sweep["chosen"]),
               curve_table(_curves(results, tasks, methods, cfg.seeds))]
    plot = _plot(out / "plots", results, tasks, methods, cfg.seeds)
    res = build_results(
        paper=ctx.slug, title=TITLE, config=ctx.config_name, seeds=cfg.seeds, methods=summary,
        claims=build_claims(summary, tables, tasks, methods), tables=tables, plots=[plot],
        notes=["Tiny LLaVA-architecture model pre-trained here on procedural scenes; numbers are "
               "not comparable with LLaVA-1.5 (papers/spider/README.md).",
               "Final weights of every run are evaluated; no checkpoint selection.",
               H_NOTE.format(up=f"{base['upstream']:.1f}", refs=", ".join(f"{t} {v:.1f}" for t, v in down_ref.items()))
               if all(_usable(base["upstream"], down_ref.get(t)) for t in tasks) else
               "H is the paper's, of the raw scores, where the relative H has no positive reference (full FT "
               "not in experiment.methods, or it or the pre-trained model scoring 0)",
               *filter(None, [skipped_note(methods)])])
    write_results(out, res)
    mark_done(out)
    return out


def reproduce_local(cfg, ctx: Context) -> Path | None:
    """The paper path: every method × seed on data.local_task, one run after another (each
    spread over the processes of `accelerate launch`: every process trains on its share of
    each batch and generates its share of the evaluation). Only the main process writes the
    run directories and the one result set; the others return None."""
    from accelerate import PartialState

    from papers.spider.local import run_local

    # The process state is shared and set up once, by its first constructor: it takes the
    # same `cpu=` as run_local's Accelerator. A bare PartialState() on a machine without CUDA
    # sets up a single non-distributed process under torchrun / accelerate launch, and every
    # process would then act as the main one (its own run directories, its own result set).
    state = PartialState(cpu=cfg.device == "cpu")
    if state.is_main_process:
        _warn_skipped(cfg.experiment.methods)
    results = [run_local(cfg, ctx, method, seed) for method in cfg.experiment.methods for seed in cfg.seeds]
    if not state.is_main_process:
        return None
    assert all(results), "the main process has every run's result"
    task = cfg.data.local_task
    for r in results:
        r["task"] = task
    out = new_reproduce_dir(cfg.runs_dir, ctx.slug, ctx.config_name)
    write_run_info(out, cfg)
    methods = cfg.experiment.methods
    rows, summary = [], {}
    for m in methods:
        d, u, h = (summarize(_per_seed(results, m, task, k, cfg.seeds)) for k in ("downstream", "upstream", "H"))
        rows.append([m, d, u, h])
        summary[m] = {f"{task} downstream": d, f"{task} upstream": u, f"{task} H": h}
    (out / "raw.json").write_text(json.dumps({"runs": results}) + "\n")
    tables = [{"title": task_table_title(task), "columns": ["method", "downstream", "upstream", "H"],
               "rows": rows},
              tuning_table(cfg, methods), curve_table(_curves(results, [task], methods, cfg.seeds))]
    res = build_results(
        paper=ctx.slug, title=TITLE, config=ctx.config_name, seeds=cfg.seeds, methods=summary,
        claims=build_claims(summary, tables, [task], methods, released_model=True),
        tables=tables,
        plots=[_plot(out / "plots", results, [task], methods, cfg.seeds)],
        notes=[f"LLaVA from {cfg.model.path}; datasets from {cfg.data.local_dir}.",
               *filter(None, [skipped_note(methods)])])
    write_results(out, res)
    mark_done(out)
    return out


def _warn_skipped(methods) -> None:
    """One line up front when experiment.methods leaves every claim out."""
    note = skipped_note(methods)
    if note and note.startswith("no claim"):
        print(f"warning: {note}; the tables are still written", file=sys.stderr, flush=True)


def _plot(out: Path, results, tasks, methods, seeds) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(tasks), figsize=(5.5 * len(tasks), 4), dpi=110, squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for i, m in enumerate(methods):
            u = _per_seed(results, m, task, "upstream", seeds)
            d = _per_seed(results, m, task, "downstream", seeds)
            ddof = 1 if len(d) > 1 else 0  # the sample std, as the tables
            ax.errorbar(np.mean(d), np.mean(u), xerr=np.std(d, ddof=ddof), yerr=np.std(u, ddof=ddof), fmt="o",
                        color=f"C{i % 10}",
                        label=m, capsize=2)
        ax.set(xlabel="downstream score", ylabel="upstream VQA accuracy (%)", title=task)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    path = out / "tradeoff.png"
    fig.savefig(path)
    plt.close(fig)
    return str(path.relative_to(out.parent))
