"""python -m papers.neuron {data,train,reproduce} --config {smoke,small,paper} [key=value ...]"""

from __future__ import annotations

import sys
from pathlib import Path

from papers.neuron.config import NeuronExperimentConfig
from shared.cli import Context, run_cli


def data(cfg: NeuronExperimentConfig, ctx: Context) -> None:
    """Generate (or read) the sequences and embed the side information; print a summary."""
    from papers.neuron import pipeline

    train, test, num_classes = pipeline.sequences(cfg)
    text = pipeline.text_embeddings(cfg, num_classes)
    print(f"{cfg.data.source}: {len(train['y'])} train / {len(test['y'])} test sequences, "
          f"{num_classes} classes, array {tuple(train['x'].shape[1:])}; text {tuple(text.shape)}")
    for name, unseen in pipeline.splits(cfg, num_classes):
        print(f"split {name}: unseen {unseen}")


def train(cfg: NeuronExperimentConfig, ctx: Context) -> None:
    from papers.neuron.train import train as run

    result = run(cfg, ctx)
    zsl = ", ".join(f"{k}={100 * v:.1f}%" for k, v in result["zsl"].items())
    print(f"{result['method']} on {result['split']} (seed {result['seed']}): ZSL {zsl}")
    for group in ("gzsl_val_gamma", "gzsl_test_gamma"):
        if group in result:
            g = result[group]
            print(f"  {group}: S={100 * g['S']:.1f}% U={100 * g['U']:.1f}% H={100 * g['H']:.1f}% (γ={g['gamma']:.3g})")


def reproduce(cfg: NeuronExperimentConfig, ctx: Context) -> None:
    from papers.neuron.reproduce import reproduce as run

    run(cfg, ctx)


COMMANDS = {"data": data, "train": train, "reproduce": reproduce}


def main(argv: list[str] | None = None) -> int:
    """The command line (also called in-process by the tests)."""
    return run_cli("neuron", NeuronExperimentConfig, COMMANDS, Path(__file__).parent, argv)


if __name__ == "__main__":
    sys.exit(main())
