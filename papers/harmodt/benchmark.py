"""Throughput of HarmoDT's pieces on this machine (numbers quoted in the README):

    python -m papers.harmodt.benchmark [--config small] [--workers 0]

1. dataset generation in env steps/s against a bare single-core `env.step` loop with the
   same scripted policy (goal: ≥ 0.8 × cores × the bare rate);
2. training iterations/s of each method at the config's model size;
3. evaluator episodes/s with a (untrained) Decision Transformer acting, full-length episodes.

    python -m papers.harmodt.benchmark --prompt-dt-check [--config small]

is the slow-path check of issue 21 instead: Prompt-DT trained on near-optimal (expert-policy)
reach-v3 data alone, for the config's per-task budget (train.iterations / number of tasks),
then evaluated on eval.goals goals; it passes when the final success is ≥ 0.8.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import papers.harmodt
from papers.harmodt.config import HarmoDTConfig
from papers.harmodt.data import load_task_data
from papers.harmodt.eval import RunEvaluation
from papers.harmodt.train import Trainer, train
from shared.cli import Context, check_dir
from shared.config import load_config
from shared.offline_rl import task_set
from shared.offline_rl.benchmark import bare_step_rate, generation_rate
from shared.offline_rl.tasks import resolve_workers


def training_rate(cfg: HarmoDTConfig, method: str, iterations: int = 100) -> float:
    trainer = Trainer(cfg, method, load_task_data(cfg, "near-optimal"), seed=0)
    trainer.iteration = cfg.harmo.mask_interval + 1  # past clustering, between mask updates
    if method == "g-harmodt":
        trainer.cluster()
    start = time.perf_counter()
    for _ in range(iterations):
        trainer.step()
    return iterations / (time.perf_counter() - start)


def evaluation_rate(cfg: HarmoDTConfig, method: str) -> tuple[float, int]:
    trainer = Trainer(cfg, method, load_task_data(cfg, "near-optimal"), seed=0)
    evaluation = RunEvaluation(cfg, trainer)
    try:
        start = time.perf_counter()
        result = evaluation._run(evaluation.seen_eval, evaluation.seen_policy())
        return result["episodes"] / (time.perf_counter() - start), result["episodes"]
    finally:
        evaluation.close()


PROMPT_DT_LEVEL = 0.8  # the bar for Prompt-DT on expert reach data within the small budget


def prompt_dt_check(config: str, data_dir: str, runs_dir: str) -> dict:
    """Prompt-DT on reach-v3 alone for the config's per-task budget: final success and pass."""
    configs = Path(papers.harmodt.__file__).parent / "configs"
    base = load_config(HarmoDTConfig, configs, config, [])
    per_task = max(1, base.train.iterations // len(task_set(base.data.tasks)))
    cfg = load_config(HarmoDTConfig, configs, config, [
        f"data_dir={data_dir}", f"runs_dir={runs_dir}", "data.tasks=reach-v3", "data.unseen_tasks=''",
        "data.qualities=[near-optimal]", f"train.iterations={per_task}",
        f"train.warmup={min(base.train.warmup, per_task)}", f"eval.every={per_task}", "wandb=false"])
    summary = train(cfg, Context("harmodt", f"{config}-prompt-dt-check", [], configs.parent),
                    method="prompt-dt", quality="near-optimal", seed=0)
    success = float(summary["final_success"])
    return {"iterations": per_task, "episodes": cfg.eval.goals, "success": success,
            "passes": success >= PROMPT_DT_LEVEL}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="small")
    parser.add_argument("--workers", type=int, default=0, help="generation processes (0 = all cores)")
    parser.add_argument("--episodes", type=int, default=80, help="episodes per task for generation (small: 80)")
    parser.add_argument("--iterations", type=int, default=100, help="timed training iterations per method")
    parser.add_argument("--bare-steps", type=int, default=1000, help="env steps of the bare loop per task")
    parser.add_argument("--data-dir", default="", help="the training/evaluation datasets' cache "
                        "(default: a temporary one, generated here); generation is timed apart")
    parser.add_argument("--prompt-dt-check", action="store_true",
                        help=f"only the slow-path check: Prompt-DT on expert reach-v3 data reaches "
                        f"≥ {PROMPT_DT_LEVEL:.0%} success within the config's per-task budget")
    args = parser.parse_args(argv)
    if args.data_dir:
        check_dir("data_dir", args.data_dir)
    if args.prompt_dt_check:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            out = prompt_dt_check(args.config, args.data_dir or tmp, tmp)
        print(f"Prompt-DT, reach-v3 near-optimal, {out['iterations']} updates, {out['episodes']} "
              f"episodes: final success {out['success']:.3f} — "
              f"{'passes' if out['passes'] else 'FAILS'} (≥ {PROMPT_DT_LEVEL}); "
              f"{time.perf_counter() - start:.0f} s")
        return
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(HarmoDTConfig, Path(papers.harmodt.__file__).parent / "configs", args.config,
                          [f"data_dir={args.data_dir or tmp}", f"data.workers={args.workers}",
                           "eval.stop_on_success=false", "wandb=false"])
        tasks, workers = task_set(cfg.data.tasks), resolve_workers(args.workers)
        steps = cfg.data.max_steps
        bare = len(tasks) / sum(1 / bare_step_rate(t, args.bare_steps) for t in tasks)
        rows = [("bare env.step loop, 1 core, scripted policy + noise", f"{bare:,.0f} env steps/s", "")]
        gen = generation_rate(tasks, args.episodes, steps, workers, write=True)
        rows.append((f"dataset generation, {workers} processes, Minari write + checksums",
                     f"{gen:,.0f} env steps/s", f"{gen / bare:.2f} × bare (goal ≥ {0.8 * workers:.1f})"))
        for method in cfg.train.methods:
            rate = training_rate(cfg, method, args.iterations)
            rows.append((f"training, {method}, batch {cfg.train.batch_size}, {cfg.train.threads} thread(s)",
                         f"{rate:,.1f} iterations/s", ""))
        for method in ("prompt-dt", "harmodt-f"):
            rate, episodes = evaluation_rate(cfg, method)
            rows.append((f"evaluator, {method} acting, {episodes} episodes × {steps} steps, "
                         f"{cfg.eval.workers} process(es)", f"{rate:,.2f} episodes/s",
                         f"{rate * steps:,.0f} env steps/s"))
    print(f"config {args.config}: {len(tasks)} tasks; cores {os.cpu_count()}\n")
    print("| measurement | rate | note |\n|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    import sys

    from shared import UserError

    try:
        main()
    except UserError as exc:  # a bad --config or --data-dir: one line, exit 2
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
