"""python -m papers.fwa {data,train,eval,reproduce,config} --config {smoke,small,paper} [key=value ...]"""

from __future__ import annotations

import sys
from pathlib import Path

from papers.fwa.config import FWAConfig
from shared.cli import Context, run_cli


def data(cfg: FWAConfig, ctx: Context) -> None:
    """Generate (or check) every dataset the configured experiments use.

    The convex sets (with F* from a Newton solve), the stability pool, and the `train` data:
    MNIST-1D generated locally and cached under data_dir, or CIFAR's binary files read from
    train.data_path. Nothing is downloaded."""
    from papers.fwa import convex, stability
    from papers.fwa.train import load_split

    if "convex" in cfg.experiments:
        for name, (X, _, f_star, *_) in convex.prepare(cfg.convex).items():
            print(f"convex/{name}: {X.shape[0]} samples, {X.shape[1]} features, F* = {f_star:.10f}")
    if "stability" in cfg.experiments:
        X, _, X_test, _ = stability.pool(cfg.stability)
        print(f"stability pool: {len(X)} samples + {len(X_test)} test, {X.shape[1]} features")
    split = load_split(cfg)
    print(f"train/{cfg.train.dataset}: {len(split.x_train)} train, {len(split.x_test)} test, "
          f"{split.num_classes} classes")


def train(cfg: FWAConfig, ctx: Context) -> None:
    """Train the network of experiment 3 for one seed: SGD with LAWA, FWA, SWA and EMA read off it.

    One run directory per run (config, metrics.jsonl, checkpoints, summary.json); resume=latest
    continues the newest unfinished run of this seed from its checkpoint. Under torchrun or
    accelerate launch each process takes its share of every batch (DDP) and the main process
    alone writes: the same final metrics as one process, to float rounding."""
    from papers.fwa.train import train as train_run

    result = train_run(cfg, ctx)
    if not result["final"]:  # a non-main process under torchrun / accelerate launch
        return
    print(f"{result['run_dir']}: " + ", ".join(
        f"{k}={v:.4f}" for k, v in result["final"].items() if k.endswith("/test_acc")))


def evaluate(cfg: FWAConfig, ctx: Context) -> None:
    """Evaluate a finished training run: every method's test/train accuracy and loss gap.

    Defaults to the newest finished `train` run of this config (runs_dir/fwa/<config>/
    train-<dataset>/); eval_run=<run dir> picks one. Restores the newest intact checkpoint and
    writes eval-<stamp>.json beside it."""
    from papers.fwa.eval import evaluate_run

    evaluate_run(cfg, ctx)


def reproduce(cfg: FWAConfig, ctx: Context) -> None:
    """Run the configured experiments for every seed and write results.json, RESULTS.md and plots.

    Convex convergence, stability on neighbouring datasets, and the non-convex training
    (each (experiment, seed) its own run directory; resume=latest reuses finished ones), then
    the claims with their verdicts. Under a launcher only experiments=[nonconvex] is spread
    over the processes."""
    from papers.fwa.reproduce import reproduce as run

    run(cfg, ctx)


COMMANDS = {"data": data, "train": train, "eval": evaluate, "reproduce": reproduce}


def main(argv: list[str] | None = None) -> int:
    """The command line (also called in-process by the tests)."""
    return run_cli("fwa", FWAConfig, COMMANDS, Path(__file__).parent, argv)


if __name__ == "__main__":
    sys.exit(main())
