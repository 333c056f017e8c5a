"""python -m papers.sdpo {data,train,eval,reproduce} --config {smoke,small,paper} [key=value ...]"""

from __future__ import annotations

import sys
from pathlib import Path

from papers.sdpo.config import SDPOExperimentConfig
from shared.cli import Context, run_cli


def data(cfg: SDPOExperimentConfig, ctx: Context) -> None:
    """Build (or verify) the cached base model and reward model the config uses."""
    from papers.sdpo.reproduce import prepare

    prepare(cfg)
    print(f"base model and {cfg.reward.name} reward ready under {cfg.data_dir}")


def train(cfg: SDPOExperimentConfig, ctx: Context) -> None:
    from papers.sdpo.train import train as train_run

    s = train_run(cfg, ctx)
    print(f"{s['run_dir']}: {cfg.reward.name} reward at " + ", ".join(
        f"{n} steps {s[f'initial_{n}']:.4g} -> {s[f'final_{n}']:.4g}" for n in cfg.eval.steps))


def evaluate(cfg: SDPOExperimentConfig, ctx: Context) -> None:
    from papers.sdpo.eval import evaluate_run

    result = evaluate_run(cfg, ctx)
    print(f"{result['run_dir']} at epoch {result['epoch']}: " + ", ".join(
        f"{n} steps {result[n]:.4g}" for n in cfg.eval.steps))
    print(f"grid: {result['grid']}")


def reproduce(cfg: SDPOExperimentConfig, ctx: Context) -> None:
    from papers.sdpo.reproduce import reproduce as run

    run(cfg, ctx)


COMMANDS = {"data": data, "train": train, "eval": evaluate, "reproduce": reproduce}


def main(argv: list[str] | None = None) -> int:
    """The command line (also called in-process by the tests)."""
    return run_cli("sdpo", SDPOExperimentConfig, COMMANDS, Path(__file__).parent, argv)


if __name__ == "__main__":
    sys.exit(main())
