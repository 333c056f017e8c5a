"""python -m papers.harmodt {data,train,eval,reproduce} --config {smoke,small,paper} [key=value ...]"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from papers.harmodt.config import HarmoDTConfig
from shared.cli import Context, run_cli


def data(cfg: HarmoDTConfig, ctx: Context) -> None:
    """Generate (or verify) every dataset the config uses and write the dataset report."""
    from papers.harmodt.reproduce import prepare_data

    out = Path(cfg.data_dir) / "harmodt-report" / ctx.config_name
    print(prepare_data(cfg, out))
    print(f"dataset report: {out}")


def train(cfg: HarmoDTConfig, ctx: Context) -> None:
    from papers.harmodt.train import train as train_run

    s = train_run(cfg, ctx)
    if int(os.environ.get("RANK", "0")) != 0:
        return  # a launch's other processes: the main one reports
    print(f"{s['run_dir']}: final success {s['final_success']:.3f}, best {s['best_success']:.3f}"
          + (f", unseen {s['unseen_success']:.3f}" if s["unseen_success"] is not None else ""))


def evaluate(cfg: HarmoDTConfig, ctx: Context) -> None:
    from papers.harmodt.eval import evaluate_run

    result = evaluate_run(cfg, ctx)
    print(f"{result['run_dir']} at iteration {result['iteration']}: success {result['success']:.3f}")
    for task, success in result["per_task"].items():
        print(f"  {task}: {success:.3f}")
    if result["unseen_success"] is not None:
        print(f"unseen tasks: success {result['unseen_success']:.3f}")
        for task, success in result["unseen_per_task"].items():
            print(f"  {task}: {success:.3f}")


def reproduce(cfg: HarmoDTConfig, ctx: Context) -> None:
    from papers.harmodt.reproduce import reproduce as run

    run(cfg, ctx)


COMMANDS = {"data": data, "train": train, "eval": evaluate, "reproduce": reproduce}


def main(argv: list[str] | None = None) -> int:
    """The command line (also called in-process by the tests)."""
    return run_cli("harmodt", HarmoDTConfig, COMMANDS, Path(__file__).parent, argv)


if __name__ == "__main__":
    sys.exit(main())
