"""python -m papers.spider {data,train,eval,reproduce,config} --config {smoke,small,paper} [key=value ...]"""

from __future__ import annotations

import sys
from pathlib import Path

from papers.spider.config import SpiderConfig
from shared.cli import Context, run_cli


def data(cfg: SpiderConfig, ctx: Context) -> None:
    """Build (or reuse) the pre-trained tiny model and print its upstream scores.

    The model is cached under data_dir/spider/base-<key>, the key covering every model, data
    and pre-training field it depends on; its files are checked against a sha256 manifest on
    every load, and a corrupt or incomplete cache is rebuilt (one line says so). The paper
    path (model.source=local) reads its model and datasets from disk and has nothing to build."""
    from papers.spider import pipeline

    if cfg.model.source == "local":
        from shared import UserError

        raise UserError("`data` builds the tiny model; with model.source=local the model and data are read from disk")
    _, _, record = pipeline.load_base(cfg)
    print(f"pre-trained model at {pipeline.base_dir(cfg)}: " + ", ".join(
        f"{k}={v:.1f}" for k, v in record["upstream"].items()))


def train(cfg: SpiderConfig, ctx: Context) -> None:
    """Fine-tune finetune.method on task (or data.local_task) with seed, then evaluate it.

    One run directory under runs_dir/spider/<config>/<method>-<task>/; resume=latest reuses a
    finished run or continues a killed one from its last checkpoint. The tiny model trains in
    this process, or data-parallel over the processes of `torchrun` / `accelerate launch`
    (the same gradients as one process). model.source=local is the paper path: LLaVA-1.5 from
    model.path and the datasets under data.local_dir, under `accelerate launch`."""
    if cfg.model.source == "local":  # the paper path: LLaVA from disk, datasets from disk, accelerate
        from papers.spider.local import run_local as run
    else:
        from papers.spider.train import train as run

    r = run(cfg, ctx)
    if not r:  # a non-main process of a launch
        return
    print(f"{r['method']} on {r['task']} (seed {r['seed']}): downstream {r['downstream']:.1f}, "
          f"upstream {r['upstream']:.1f}, H {r['H']:.1f}")


def evaluate(cfg: SpiderConfig, ctx: Context) -> None:
    """Re-evaluate a finished fine-tuning run and print downstream, upstream and H.

    By default the newest finished run of the config, narrowed by finetune.method=, task= (or
    data.local_task=) and seed= when given; resume=<run dir> picks one. The run's final weights
    are evaluated with its own config and this command's eval.* settings."""
    from papers.spider.evaluate import evaluate_run

    r = evaluate_run(cfg, ctx)
    if not r:  # a non-main process of a launch
        return
    what = "evaluated" if r["reevaluated"] else "recorded (the run kept no final weights to re-evaluate)"
    print(f"{r['run_dir']}: {r['method']} on {r['task']} (seed {r['seed']}), {what}: "
          f"downstream {r['downstream']:.1f}, upstream {r['upstream']:.1f}, H {r['H']:.1f}")
    print("  upstream: " + ", ".join(f"{k.split('/', 1)[1]} {v:.1f}" for k, v in r.items()
                                     if k.startswith("upstream/")))
    if r["reevaluated"]:
        rec = r["recorded"]
        print(f"  recorded at the end of training: downstream {rec['downstream']:.1f}, "
              f"upstream {rec['upstream']:.1f}, H {rec['H']:.1f}")


def reproduce(cfg: SpiderConfig, ctx: Context) -> None:
    """Every method on every downstream task for every seed, then the tables, claims and plot.

    The tiny model: pre-train (or reuse) it, then experiment.processes fine-tuning runs side
    by side; plain python, not a launcher. model.source=local: every method and seed on
    data.local_task one after another, each spread over the processes of `accelerate launch`;
    only the main process writes the run directories and the one result set."""
    if cfg.model.source == "local":
        from papers.spider.reproduce import reproduce_local as run
    else:
        from papers.spider.reproduce import reproduce as run

    run(cfg, ctx)


COMMANDS = {"data": data, "train": train, "eval": evaluate, "reproduce": reproduce}


def main(argv: list[str] | None = None) -> int:
    """The command line (also called in-process by the tests)."""
    return run_cli("spider", SpiderConfig, COMMANDS, Path(__file__).parent, argv)


if __name__ == "__main__":
    sys.exit(main())
