"""Throughput of the continual trainer and of the evaluator (small config by default).

    python -m papers.compoformer.benchmark [--config small] [--steps 100] [key=value ...]

Training: updates/s of one method at a given stage (CompoFormer's cost grows with the stage:
every update also runs the frozen earlier policies), one torch thread. Evaluation: episodes/s
and env steps/s of the end-of-stage evaluation (all tasks of the sequence, `eval.goals` each)
with the last stage's policies, untrained (episodes run to `data.max_steps`).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from papers.compoformer.config import CompoFormerConfig
from papers.compoformer.train import Trainer
from shared.config import load_config

CASES = [("finetune", 0), ("finetune", 4), ("compoformer-grow", 4), ("compoformer-prune", 4),
         ("packnet", 4), ("ewc", 4), ("agem", 4)]


def _at_stage(cfg: CompoFormerConfig, method: str, stage: int) -> Trainer:
    trainer = Trainer(cfg, method, 0)
    stage = min(stage, trainer.T - 1)
    for j in range(stage):  # what a replay method / regulariser would hold at this stage
        trainer.stage = j
        trainer.open_stage(j)
        if method in ("perfect-memory", "agem"):
            trainer.keep_memory(j, trainer.current_episodes)
        if method in ("l2", "ewc", "mas"):
            trainer.importance = trainer.importance_of_stage()
            trainer.anchor = {k: p.detach().clone() for k, p in trainer.model.backbone.named_parameters()
                              if k in trainer.importance}
    trainer.stage = stage
    trainer.open_stage(stage)
    trainer.setup_phase("train")
    return trainer


def train_rate(cfg: CompoFormerConfig, method: str, stage: int, steps: int) -> float:
    trainer = _at_stage(cfg, method, stage)
    for _ in range(5):
        trainer.update("train")
    start = time.perf_counter()
    for _ in range(steps):
        trainer.update("train")
    return steps / (time.perf_counter() - start)


def eval_rate(cfg: CompoFormerConfig, method: str) -> tuple[float, float, int]:
    trainer = _at_stage(cfg, method, 10**6)
    trainer.model.live_stage = None
    stages = list(range(trainer.T))
    trainer.evaluate_stages(stages[:1])  # builds the environments
    envs = tuple(trainer.tasks[j] for j in stages)
    ev = trainer.evaluator(envs, cfg.eval.goals)
    start = time.perf_counter()
    jobs = [(j, j, j) for j in stages]
    trainer.run_policy(jobs, cfg.eval.goals)
    seconds = time.perf_counter() - start
    episodes = len(ev.slots)
    return episodes / seconds, episodes * cfg.data.max_steps / seconds, episodes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m papers.compoformer.benchmark")
    parser.add_argument("--config", default="small")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args(argv)
    cfg = load_config(CompoFormerConfig, Path(__file__).parent / "configs", args.config,
                      ["wandb=false", "eval.stop_on_success=false", *args.overrides])
    torch.set_num_threads(1)
    print(f"| measurement ({args.config} config, 1 thread) | rate |\n|---|---|")
    for method, stage in CASES:
        rate = train_rate(cfg, method, stage, args.steps)
        print(f"| training, {method}, stage {stage} (batch {cfg.train.batch_size}) | {rate:.1f} updates/s |",
              flush=True)
    for method in ("finetune", "compoformer-prune", "compoformer-grow"):
        eps, steps, n = eval_rate(cfg, method)
        print(f"| evaluator, {method} policies of every stage, {n} episodes × {cfg.data.max_steps} steps, "
              f"{cfg.eval.workers} process(es) | {eps:.2f} episodes/s ({steps:,.0f} env steps/s) |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
