"""`reproduce`: the datasets and their report, every (method, quality, seed) run side by side
in `parallel_runs` processes, then results.json, RESULTS.md and plots.

With `resume=latest` finished runs are reused and interrupted ones continue from their
latest checkpoint. Under `torchrun` / `accelerate launch` the runs go one after another, each
data-parallel over every process (`parallel_runs` is not used), and the main process alone
writes the datasets' report and the results.
"""

from __future__ import annotations

from pathlib import Path

from papers.harmodt import report
from papers.harmodt.claims import paper_claims, paper_protocol_notes
from papers.harmodt.config import HarmoDTConfig
from papers.harmodt.data import load_prompts, load_quality, train_tasks, unseen_tasks
from papers.harmodt.train import train
from shared.cli import Context
from shared.offline_rl import dataset_report
from shared.replicas import Replicas, launched_processes
from shared.results import build_results, write_results
from shared.runs import new_reproduce_dir, run_jobs

TITLE = "HarmoDT: Harmony Multi-Task Decision Transformer (and G-HarmoDT)"


def prepare_data(cfg: HarmoDTConfig, out_dir: Path) -> str:
    """Generate or verify every dataset (in parallel, cached) and write the dataset report."""
    tasks = train_tasks(cfg)
    reported = {q: load_quality(cfg, tasks, q) for q in cfg.data.qualities}
    reported["expert prompts"] = load_prompts(cfg, tasks + unseen_tasks(cfg))
    return dataset_report(reported, out_dir)


def _one_run(args: tuple) -> dict:
    cfg, ctx, method, quality, seed = args
    return train(cfg, ctx, method, quality, seed)


def run_all(cfg: HarmoDTConfig, ctx: Context) -> list[dict]:
    jobs = [(cfg, ctx, m, q, s) for q in cfg.data.qualities for m in cfg.train.methods for s in cfg.seeds]
    processes = 1 if launched_processes() > 1 else cfg.parallel_runs
    return run_jobs(_one_run, jobs, processes, "harmodt runs")


def episodes(cfg: HarmoDTConfig) -> dict[str, int | None]:
    """Evaluated episodes of one run: every task × `eval.goals`, seen and unseen."""
    unseen = len(unseen_tasks(cfg)) * (cfg.eval.unseen_goals or cfg.eval.goals)
    return {"seen": len(train_tasks(cfg)) * cfg.eval.goals, "unseen": unseen or None}


def reproduce(cfg: HarmoDTConfig, ctx: Context) -> Path | None:
    from shared.device import resolve_device

    replicas = Replicas(Replicas.local_device(resolve_device(cfg.device)))
    out = replicas.from_main(lambda: new_reproduce_dir(cfg.runs_dir, ctx.slug, ctx.config_name))
    data_md = replicas.from_main(lambda: prepare_data(cfg, out))  # the others read its caches
    summaries = run_all(cfg, ctx)
    if not replicas.is_main:
        return None
    methods, tables = report.tables(cfg, summaries)
    plots = report.plots(cfg, summaries, out)
    results = build_results(
        paper="harmodt", title=TITLE, config=ctx.config_name, seeds=cfg.seeds, methods=methods,
        claims=paper_claims(methods, cfg.data.qualities, episodes(cfg)),
        protocol_notes=paper_protocol_notes(methods, cfg.data.qualities), tables=tables,
        plots=plots, notes=report.notes(cfg, summaries) + ["Datasets:\n\n" + data_md])
    results["runs"] = report.runs_record(summaries)  # per run: curves, per-task success, masks' IoU
    write_results(out, results)
    return out
