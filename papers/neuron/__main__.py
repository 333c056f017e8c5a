"""python -m papers.neuron {data,train,eval,reproduce} --config {smoke,small,paper} [key=value ...]"""

from __future__ import annotations

import sys
from pathlib import Path

from papers.neuron.config import NeuronExperimentConfig
from shared.cli import Context, run_cli


def data(cfg: NeuronExperimentConfig, ctx: Context) -> None:
    """Generate (or read) the sequences and embed the side information; print a summary.

    Synthetic skeletons are generated once and cached (checksummed) under data_dir; real
    arrays are read from data.path. The class descriptions are embedded with the text
    encoder and cached. Prints the sizes and every unseen-class split reproduce uses. Under a
    launch of several processes only the main process does it."""
    from papers.neuron import pipeline

    if not pipeline.is_main_process():
        return

    train, test, num_classes = pipeline.sequences(cfg)
    text = pipeline.text_embeddings(cfg, num_classes)
    print(f"{cfg.data.source}: {len(train['y'])} train / {len(test['y'])} test sequences, "
          f"{num_classes} classes, array {tuple(train['x'].shape[1:])}; text {tuple(text.shape)}")
    for name, unseen in pipeline.splits(cfg, num_classes):
        print(f"split {name}: unseen {unseen}")


def train(cfg: NeuronExperimentConfig, ctx: Context) -> None:
    """Train one zero-shot head (method=, ablation=) on one unseen-class split with seed=.

    The split's skeleton encoder is pre-trained on its seen classes first (or reused from the
    cache), then frozen; the head trains on its features and is scored on the split's test
    set (ZSL; GZSL with γ chosen on held-out data and on the test set). unseen=[...] picks
    the unseen classes (default: split 0 of the first experiment.unseen_sizes). Under
    `accelerate launch` the encoder pre-training is data-parallel over the processes; the
    head and its result are the main process's."""
    from papers.neuron.train import print_metrics
    from papers.neuron.train import train as run

    result = run(cfg, ctx)
    if result is None:  # another process of a launch: the main process reports
        return
    print(f"{result['method']} on {result['split']} (seed {result['seed']}):")
    print_metrics(result)


def evaluate(cfg: NeuronExperimentConfig, ctx: Context) -> None:
    """Re-score a finished head run on its split's test set and print ZSL and GZSL.

    The newest finished run of method= (and ablation=) of this config, or eval_run=<run dir>.
    Its head is loaded from the run directory and the split's frozen features from the cache
    (rebuilt deterministically when missing); the scores are written to eval-<stamp>.json in
    the run directory. They equal the run's recorded result. Under a launch of several
    processes only the main process evaluates."""
    from papers.neuron import pipeline
    from papers.neuron.train import evaluate_run

    if not pipeline.is_main_process():
        return

    evaluate_run(cfg, ctx)


def reproduce(cfg: NeuronExperimentConfig, ctx: Context) -> None:
    """Run every split, method, ablation and seed; write results.json, RESULTS.md and plots.

    Per split an encoder is pre-trained on the seen classes (experiment.processes in
    parallel; data-parallel over the processes of `accelerate launch`), then every head
    (experiment.methods with GZSL, experiment.ablations with ZSL) for every seed; the claims
    are computed from the tables (papers/neuron/claims.py). resume=latest reuses finished heads."""
    from papers.neuron.reproduce import reproduce as run

    run(cfg, ctx)


COMMANDS = {"data": data, "train": train, "eval": evaluate, "reproduce": reproduce}


def main(argv: list[str] | None = None) -> int:
    """The command line (also called in-process by the tests)."""
    return run_cli("neuron", NeuronExperimentConfig, COMMANDS, Path(__file__).parent, argv)


if __name__ == "__main__":
    sys.exit(main())
