"""python -m papers.spider {data,train,reproduce} --config {smoke,small,paper} [key=value ...]"""

from __future__ import annotations

import sys
from pathlib import Path

from papers.spider.config import SpiderConfig
from shared.cli import Context, run_cli


def data(cfg: SpiderConfig, ctx: Context) -> None:
    """Build (or reuse) the pre-trained tiny model and print its upstream scores."""
    from papers.spider import pipeline

    if cfg.model.source == "local":
        from shared import UserError

        raise UserError("`data` builds the tiny model; with model.source=local the model and data are read from disk")
    _, _, record = pipeline.load_base(cfg)
    print(f"pre-trained model at {pipeline.base_dir(cfg)}: " + ", ".join(
        f"{k}={v:.1f}" for k, v in record["upstream"].items()))


def train(cfg: SpiderConfig, ctx: Context) -> None:
    if cfg.model.source == "local":  # the paper path: LLaVA from disk, datasets from disk, accelerate
        from papers.spider.local import run_local

        r = run_local(cfg, ctx)
        if not r:  # a non-main process
            return
    else:
        from papers.spider.train import train as run

        r = run(cfg, ctx)
    print(f"{r['method']} on {r['task']} (seed {r['seed']}): downstream {r['downstream']:.1f}, "
          f"upstream {r['upstream']:.1f}, H {r['H']:.1f}")


def reproduce(cfg: SpiderConfig, ctx: Context) -> None:
    if cfg.model.source == "local":
        from papers.spider.reproduce import reproduce_local as run
    else:
        from papers.spider.reproduce import reproduce as run

    run(cfg, ctx)


COMMANDS = {"data": data, "train": train, "reproduce": reproduce}


def main(argv: list[str] | None = None) -> int:
    """The command line (also called in-process by the tests)."""
    return run_cli("spider", SpiderConfig, COMMANDS, Path(__file__).parent, argv)


if __name__ == "__main__":
    sys.exit(main())
