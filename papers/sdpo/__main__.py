"""python -m papers.sdpo {data,train,eval,reproduce,config} --config {smoke,small,paper} [key=value ...]"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from papers.sdpo.config import SDPOExperimentConfig
from shared.cli import Context, run_cli


def _main_process() -> bool:
    """Whether this is the main (or only) process of a torchrun / accelerate launch."""
    return int(os.environ.get("RANK", "0")) == 0


def data(cfg: SDPOExperimentConfig, ctx: Context) -> None:
    """Build (or verify) the cached base model and the reward model the config uses.

    The tiny base model (DDPM pre-training, then few-step distillation) and the small frozen
    reward scorers are built once per config and cached, checksummed, under data_dir;
    `policy.model=stable-diffusion` loads the local SD-Turbo of `policy.path` instead."""
    from papers.sdpo.reproduce import prepare

    prepare(cfg)
    print(f"base model and {cfg.reward.name} reward ready under {cfg.data_dir}")


def train(cfg: SDPOExperimentConfig, ctx: Context) -> None:
    """Fine-tune the base model with one method (method=, ablation=) for one seed.

    Sample pairs of trajectories, score them, update; held-out reward at every budget of
    eval.steps every eval.every epochs; checkpoints; resume=latest continues the newest run.
    Under `accelerate launch` or torchrun every process samples its own pairs and the
    gradients are averaged; one run directory, written by the main process."""
    from papers.sdpo.train import train as train_run

    s = train_run(cfg, ctx)
    if _main_process():
        print(f"{s['run_dir']}: {cfg.reward.name} reward at " + ", ".join(
            f"{n} steps {s[f'initial_{n}']:.4g} -> {s[f'final_{n}']:.4g}" for n in cfg.eval.steps))


def evaluate(cfg: SDPOExperimentConfig, ctx: Context) -> None:
    """Evaluate a finished run: held-out reward at every budget of eval.steps, and a grid.

    Scores the newest finished run of method= / ablation= / seed= (or the run directory
    given as resume=<dir>, finished or not) from its latest checkpoint, and writes
    eval/epoch<k>.json and eval/grid-epoch<k>.png into the run directory."""
    from papers.sdpo.eval import evaluate_run

    result = evaluate_run(cfg, ctx)
    if _main_process():
        print(f"{result['run_dir']} at epoch {result['epoch']}: " + ", ".join(
            f"{n} steps {result[n]:.4g}" for n in cfg.eval.steps))
        print(f"grid: {result['grid']}")


def reproduce(cfg: SDPOExperimentConfig, ctx: Context) -> None:
    """Run every method and ablation for every seed, then write the results table.

    Builds the base and reward models once, trains train.methods × seeds and
    train.ablations × train.ablation_seeds (parallel_runs side by side), and writes
    results.json, RESULTS.md (reward by step count, claims with their verdicts), curves and
    before/after grids under runs_dir/sdpo/<config>/reproduce/."""
    from papers.sdpo.reproduce import reproduce as run

    run(cfg, ctx)


COMMANDS = {"data": data, "train": train, "eval": evaluate, "reproduce": reproduce}


def main(argv: list[str] | None = None) -> int:
    """The command line (also called in-process by the tests)."""
    return run_cli("sdpo", SDPOExperimentConfig, COMMANDS, Path(__file__).parent, argv)


if __name__ == "__main__":
    sys.exit(main())
