"""`reproduce`: pre-train (or reuse) the tiny MLLM, evaluate it, fine-tune every method on
every downstream task for every seed, then the claims and per-task tables (downstream,
upstream, H; mean ± std over seeds) and a trade-off plot."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from papers.spider import pipeline
from papers.spider.train import FinetuneJob, run_finetune
from shared.cli import Context
from shared.results import build_results, claim, significantly_lower, summarize, write_results
from shared.runs import mark_done, new_reproduce_dir, run_jobs, write_run_info

TITLE = "SPIDER: Learn from Downstream and Be Yourself in MLLM Fine-Tuning"


def _per_seed(results, method, task, key, seeds):
    by_seed = {r["seed"]: r[key] for r in results if r["method"] == method and r["task"] == task}
    return [by_seed[s] for s in seeds]


def build_claims(cfg, results, tasks, methods) -> list[dict]:
    seeds, out = cfg.seeds, []
    baselines = [m for m in methods if m not in ("spider", "spider_hard")]
    for task in tasks:
        def vals(m, key, task=task):
            return _per_seed(results, m, task, key, seeds)

        if "spider" in methods and "full_ft" in methods:
            out.append(claim(
                f"{task}: SPIDER keeps more upstream ability than full fine-tuning",
                "masks keep upstream; full FT forgets most",
                f"upstream {np.mean(vals('spider', 'upstream')):.1f} vs {np.mean(vals('full_ft', 'upstream')):.1f} %",
                significantly_lower(vals("full_ft", "upstream"), vals("spider", "upstream")),
                "paired over seeds by 2 SE"))
            out.append(claim(
                f"{task}: full fine-tuning gives the best downstream score",
                "full FT is the specialisation upper end",
                "best mean downstream: " + max(methods, key=lambda m: np.mean(vals(m, "downstream"))),
                all(np.mean(vals("full_ft", "downstream")) >= np.mean(vals(m, "downstream")) for m in methods)))
        if "spider" in methods:
            best = max(baselines, key=lambda m: np.mean(vals(m, "H")))
            out.append(claim(
                f"{task}: SPIDER has the best harmonic mean H of upstream and downstream",
                "SPIDER best or near-best H",
                f"SPIDER {np.mean(vals('spider', 'H')):.1f} vs best baseline {best} {np.mean(vals(best, 'H')):.1f}",
                not significantly_lower(vals("spider", "H"), vals(best, "H"))
                and np.mean(vals("spider", "H")) >= max(np.mean(vals(m, "H")) for m in baselines) - 1e-12,
                "holds = SPIDER's mean H is the highest (ties count) and no baseline beats it by 2 SE"))
        if "spider" in methods and "spider_hard" in methods:
            out.append(claim(
                f"{task}: the soft mask is at least as good as the hard mask (H)",
                "the released rule is soft; the paper states a hard mask",
                f"soft {np.mean(vals('spider', 'H')):.1f} vs hard {np.mean(vals('spider_hard', 'H')):.1f}",
                not significantly_lower(vals("spider", "H"), vals("spider_hard", "H"))))
    return out


def reproduce(cfg, ctx: Context) -> Path:
    out = new_reproduce_dir(cfg.runs_dir, ctx.slug, ctx.config_name)
    write_run_info(out, cfg)
    model, tokenizer, record = pipeline.load_base(cfg)
    upstream, downstream = pipeline.eval_sets(cfg)
    base = pipeline.evaluate(cfg, model, tokenizer, upstream, downstream)
    del model
    tasks, methods = cfg.data.downstream_tasks, cfg.experiment.methods
    jobs = [FinetuneJob(cfg, ctx, m, t, s) for t in tasks for m in methods for s in cfg.seeds]
    results = run_jobs(run_finetune, jobs, cfg.experiment.processes, desc="fine-tuning")
    (out / "raw.json").write_text(json.dumps({"base": base, "runs": results}) + "\n")
    tables, summary = [], {}
    for task in tasks:
        rows = [["pre-trained (no fine-tuning)", base[f"downstream/{task}"], base["upstream"],
                 pipeline.harmonic(base["upstream"], base[f"downstream/{task}"])]]
        for m in methods:
            d, u, h = (summarize(_per_seed(results, m, task, k, cfg.seeds)) for k in ("downstream", "upstream", "H"))
            rows.append([m, d, u, h])
            summary.setdefault(m, {}).update({f"{task} downstream": d, f"{task} upstream": u, f"{task} H": h})
        tables.append({"title": f"{task}: downstream score, upstream VQA accuracy (%), H",
                       "columns": ["method", "downstream", "upstream", "H"], "rows": rows})
    tables.append({"title": "Upstream tasks of the pre-trained model (%)",
                   "columns": ["task", "score"],
                   "rows": [[k.split("/", 1)[1], v] for k, v in base.items() if k.startswith("upstream/")]})
    plot = _plot(out / "plots", results, tasks, methods, cfg.seeds)
    res = build_results(
        paper=ctx.slug, title=TITLE, config=ctx.config_name, seeds=cfg.seeds, methods=summary,
        claims=build_claims(cfg, results, tasks, methods), tables=tables, plots=[plot],
        notes=["Tiny LLaVA-architecture model pre-trained here on procedural scenes; numbers are "
               "not comparable with LLaVA-1.5 (papers/spider/README.md).",
               "Final weights of every run are evaluated; no checkpoint selection."])
    write_results(out, res)
    mark_done(out)
    print(f"wrote {out / 'results.json'} and {out / 'RESULTS.md'}")
    return out


def reproduce_local(cfg, ctx: Context) -> Path | None:
    """The paper path: every method × seed on data.local_task, one run after another (each
    spread over the processes of `accelerate launch`); tables and claims on the main process."""
    from papers.spider.local import run_local

    results = [run_local(cfg, ctx, method, seed) for method in cfg.experiment.methods for seed in cfg.seeds]
    if not all(results):  # a non-main process
        return None
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
    res = build_results(
        paper=ctx.slug, title=TITLE, config=ctx.config_name, seeds=cfg.seeds, methods=summary,
        claims=build_claims(cfg, results, [task], methods),
        tables=[{"title": f"{task}: downstream score, upstream VQA accuracy (%), H",
                 "columns": ["method", "downstream", "upstream", "H"], "rows": rows}],
        plots=[_plot(out / "plots", results, [task], methods, cfg.seeds)],
        notes=[f"LLaVA from {cfg.model.path}; datasets from {cfg.data.local_dir}."])
    write_results(out, res)
    mark_done(out)
    print(f"wrote {out / 'results.json'} and {out / 'RESULTS.md'}")
    return out


def _plot(out: Path, results, tasks, methods, seeds) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(tasks), figsize=(5.5 * len(tasks), 4), dpi=110, squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for i, m in enumerate(methods):
            u = _per_seed(results, m, task, "upstream", seeds)
            d = _per_seed(results, m, task, "downstream", seeds)
            ax.errorbar(np.mean(d), np.mean(u), xerr=np.std(d), yerr=np.std(u), fmt="o", color=f"C{i % 10}",
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
