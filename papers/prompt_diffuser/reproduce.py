"""`reproduce`: the ML1 buffers and their report; per seed the frozen Prompt-DT and the
full-data upper bound (stage 1), then every tuning method on each seed's frozen policy
(stage 2), side by side in `parallel_runs` processes; then results.json, RESULTS.md, plots.
With `resume=latest` finished runs are reused and interrupted ones continue."""

from __future__ import annotations

import json
from pathlib import Path

from papers.prompt_diffuser import report
from papers.prompt_diffuser.claims import paper_claims, paper_protocol_notes
from papers.prompt_diffuser.config import QUALITY_METHODS, PromptDiffuserConfig
from papers.prompt_diffuser.data import GoalData, held_out_overlap, load_goal_data
from papers.prompt_diffuser.distributed import barrier, shared_jobs, world
from papers.prompt_diffuser.evaluate import evaluate
from papers.prompt_diffuser.pretrain import pretrain_run
from papers.prompt_diffuser.tune import build, run_name, tune_run
from shared import UserError
from shared.checkpoint import latest_checkpoint, load_checkpoint
from shared.cli import Context
from shared.offline_rl import dataset_report
from shared.results import build_results, write_results
from shared.runs import method_dir, new_reproduce_dir, run_jobs
from shared.seeding import torch_generator

TITLE = "Prompt Diffuser: prompt tuning with diffusion for few-shot pre-trained policy generalisation"


def prepare_data(cfg: PromptDiffuserConfig, out_dir: Path) -> tuple[GoalData, str]:
    """Every buffer (cached) and the dataset report; refuses a split that leaks held-out goals."""
    if held_out_overlap(cfg):
        raise UserError("a held-out ML1 goal equals a training goal; change data.benchmark_seed")
    data = load_goal_data(cfg, upper="upper" in cfg.tune.methods)
    reported = {"pre-training (train goals)": _flat(data.train),
                "prompt demos (train goals)": _flat(data.train_prompts),
                "few-shot (held-out goals)": _flat(data.fewshot)}
    reported.update({f"{q} demos (held-out goals)": _flat(d) for q, d in data.demos.items() if q != "expert"})
    if data.upper:
        reported["upper bound (held-out goals)"] = _flat(data.upper)
    return data, dataset_report(reported, out_dir)


def _flat(by_goal: dict) -> dict:
    episodes = [e for g in sorted(by_goal) for e in by_goal[g]]
    return {episodes[0].task: episodes} if episodes else {}


def _pretrain_job(args: tuple) -> dict:
    cfg, ctx, seed, upper = args
    return pretrain_run(cfg, ctx, seed, load_goal_data(cfg, upper=upper), upper=upper)


def _tune_job(args: tuple) -> dict:
    cfg, ctx, method, quality, seed, ckpt = args
    return tune_run(cfg, ctx, method, quality, seed, ckpt, load_goal_data(cfg, upper=False))


def tuning_jobs(cfg: PromptDiffuserConfig) -> list[tuple[str, str]]:
    """(method, quality) pairs: the quality methods once per initial quality, the others expert."""
    out = []
    for m in cfg.tune.methods:
        if m == "upper":
            continue
        out += [(m, q) for q in cfg.tune.init_qualities] if m in QUALITY_METHODS else [(m, "expert")]
    return out


def run_all(cfg: PromptDiffuserConfig, ctx: Context) -> tuple[list[dict], list[dict]]:
    uppers = [True] if "upper" in cfg.tune.methods else []
    def local(desc: str):
        return lambda fn, jobs: run_jobs(fn, jobs, cfg.parallel_runs, desc)

    stage1 = shared_jobs(_pretrain_job, [(cfg, ctx, s, u) for s in cfg.seeds for u in [False, *uppers]],
                         local("pre-training"))
    ckpt = {r["seed"]: r["checkpoint"] for r in stage1 if r["method"] == "pretrain"}
    jobs = [(cfg, ctx, m, q, s, ckpt[s]) for s in cfg.seeds for m, q in tuning_jobs(cfg)]
    return stage1, shared_jobs(_tune_job, jobs, local("tuning"))


def train_one(cfg: PromptDiffuserConfig, ctx: Context) -> dict | None:
    """Pre-train, then tune `method`; under a launcher on the main process only (None elsewhere)."""
    size, rank = world()
    if size > 1:
        summary = _train_one(cfg, ctx) if rank == 0 else None
        barrier()
        return summary
    return _train_one(cfg, ctx)


def _train_one(cfg: PromptDiffuserConfig, ctx: Context) -> dict:
    data = load_goal_data(cfg, upper=cfg.method == "upper")
    pre = pretrain_run(cfg, ctx, cfg.seed, data, upper=cfg.method == "upper")
    if cfg.method == "upper":
        return pre
    return tune_run(cfg, ctx, cfg.method, cfg.init_quality, cfg.seed, pre["checkpoint"], data)


def evaluate_latest(cfg: PromptDiffuserConfig, ctx: Context) -> dict:
    """Rebuild the newest finished tuning run of `method` from its checkpoint and evaluate it."""
    name = run_name(cfg.method, cfg.init_quality)
    parent = method_dir(cfg.runs_dir, ctx.slug, ctx.config_name, name)
    runs = sorted(p for p in parent.glob(f"seed{cfg.seed}-*") if (p / "summary.json").exists()) \
        if parent.exists() else []
    if not runs or cfg.method == "upper":
        raise UserError(f"no finished {name} run of seed {cfg.seed} under {parent} "
                        "(run `train` first; the upper bound is evaluated when it trains)")
    run = runs[-1]
    info = json.loads((run / "run.json").read_text())
    data = load_goal_data(cfg, upper=False)
    m, norm = build(cfg, cfg.method, cfg.init_quality, info["policy"], data, cfg.seed)
    ckpt = latest_checkpoint(run / "checkpoints")
    if ckpt is not None:
        m.load(load_checkpoint(ckpt)[0])
    from papers.prompt_diffuser.tune import EVAL_SEED

    gen = torch_generator(cfg.seed + EVAL_SEED)
    rounds = [m.eval_prompts(gen) for _ in range(cfg.eval.rounds if m.sampled else 1)]
    out = evaluate(cfg, m.eval_model(), norm, "test", data.test_goals, rounds)
    (run / "eval.json").write_text(json.dumps(out, indent=2))
    return {**out, "run_dir": str(run)}


def reproduce(cfg: PromptDiffuserConfig, ctx: Context) -> Path | None:
    """Everything the results need; under a launcher the runs are shared out over the
    processes and the main process alone writes the result set (None elsewhere)."""
    main = world()[1] == 0
    if main:
        out = new_reproduce_dir(cfg.runs_dir, ctx.slug, ctx.config_name)
        _, data_md = prepare_data(cfg, out)
    barrier()  # the data are generated once, by the main process
    stage1, tuned = run_all(cfg, ctx)
    if not main:
        return None
    methods, tables = report.tables(cfg, stage1, tuned)
    plots = report.plots(cfg, stage1, tuned, out)
    results = build_results(
        paper="prompt_diffuser", title=TITLE, config=ctx.config_name, seeds=cfg.seeds,
        methods=methods, claims=paper_claims(cfg, methods),
        protocol_notes=paper_protocol_notes(methods), tables=tables, plots=plots,
        notes=report.notes(cfg, stage1, tuned) + ["Datasets:\n\n" + data_md])
    write_results(out, results)
    return out
