"""python -m papers.compoformer {data,train,eval,reproduce} --config {smoke,small,paper} [key=value ...]"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from papers.compoformer.config import CompoFormerConfig
from shared.cli import Context, run_cli


def data(cfg: CompoFormerConfig, ctx: Context) -> None:
    """Generate (or verify) every task's dataset of the sequence and write the dataset report."""
    from papers.compoformer.reproduce import prepare_data

    out = Path(cfg.data_dir) / "compoformer-report" / ctx.config_name
    print(prepare_data(cfg, out))
    print(f"dataset report: {out}")


def train(cfg: CompoFormerConfig, ctx: Context) -> None:
    """Train `method` over the task sequence (one stage per task); resume=latest continues a run,
    also in the middle of the sequence."""
    from papers.compoformer.train import train as train_run

    s = train_run(cfg, ctx)
    extra = "" if s["F"] is None else f", F {s['F']:.3f}, FWT {s['FWT']:.3f}"
    print(f"{s['run_dir']}: P {s['P']:.3f}{extra}")


def evaluate(cfg: CompoFormerConfig, ctx: Context) -> None:
    """Print the success matrix R[t][i] and P/F/FWT of the newest finished run of `method`
    (or resume=<run dir>)."""
    from papers.compoformer.eval import evaluate_run

    s = evaluate_run(cfg, ctx)
    print(s["text"])


def reproduce(cfg: CompoFormerConfig, ctx: Context) -> None:
    from papers.compoformer.reproduce import reproduce as run

    run(cfg, ctx)


COMMANDS = {"data": data, "train": train, "eval": evaluate, "reproduce": reproduce}


def _launched() -> int:
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def main(argv: list[str] | None = None) -> int:
    """The command line (also called in-process by the tests).

    Under `torchrun` / `accelerate launch` (WORLD_SIZE > 1) a continual run is sequential and
    small, so it is not split over processes: the main process (RANK 0) runs the command (one
    run directory, one result set) and the others exit at once with status 0; the launcher
    reports the main process's status."""
    if _launched() > 1 and os.environ.get("RANK", "0") != "0":
        return 0
    return run_cli("compoformer", CompoFormerConfig, COMMANDS, Path(__file__).parent, argv)


if __name__ == "__main__":
    sys.exit(main())
