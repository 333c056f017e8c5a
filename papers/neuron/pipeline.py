"""From configuration to what a head trains on: sequences (synthesised or real), the class
text embeddings, and for every unseen-class split a skeleton encoder pre-trained on that
split's seen classes only (then frozen) and its cached feature maps.

One encoder per split, shared by every head and seed on that split (its pre-training seed
is fixed by the split), so seeds vary the heads, not the features."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from papers.neuron.classes import all_classes, unseen_split
from papers.neuron.config import LEVELS, NeuronExperimentConfig
from shared import UserError
from shared.cache import cache_key, cached_arrays
from shared.config import to_dict


def sequences(cfg: NeuronExperimentConfig) -> tuple[dict, dict, int]:
    """(train, test, number of classes): dicts of x (N, 300, 150), y, length."""
    if cfg.data.source == "synthetic":
        from papers.neuron.synth import load_or_generate

        classes = all_classes()
        train = load_or_generate(cfg.data, cfg.data_dir, classes, "train")
        test = load_or_generate(cfg.data, cfg.data_dir, classes, "test")
        return train, test, len(classes)
    from papers.neuron.ntu import load_real

    train, test = load_real(cfg.data)
    return train, test, int(max(train["y"].max(), test["y"].max())) + 1


def text_embeddings(cfg: NeuronExperimentConfig, num_classes: int) -> torch.Tensor:
    """(K, 6 levels, per_level, D) unit vectors: generated descriptions of our vocabulary, or
    a user's JSON {level: [[descriptions of class 0], ...]} for real data."""
    from papers.neuron import text

    if not cfg.text.descriptions_path:
        if cfg.data.source != "synthetic":
            raise UserError("real skeleton data needs text.descriptions_path (a JSON file "
                            "{level: [[descriptions per class], ...]} for the levels " + ", ".join(LEVELS) + ")")
        return text.embed_descriptions(all_classes(), cfg.text, cfg.data_dir)
    path = Path(cfg.text.descriptions_path)
    try:
        table = json.loads(path.read_text())
        rows = [[table[level][c] for level in LEVELS] for c in range(num_classes)]
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise UserError(f"text.descriptions_path {path}: unreadable or incomplete ({type(exc).__name__})") from None
    n = cfg.text.per_level
    if any(len(texts) < n for row in rows for texts in row):
        raise UserError(f"text.descriptions_path {path}: every class and level needs {n} descriptions")
    flat = [t for row in rows for texts in row for t in texts[:n]]
    key = cache_key(encoder=cfg.text.encoder, texts=flat)
    arrays = cached_arrays(Path(cfg.data_dir) / "neuron" / f"text-user-{key}.npz", lambda: {
        "emb": text.embed_texts(text.load_encoder(cfg.text.encoder), flat, cfg.text.batch_size).numpy()})
    return torch.from_numpy(arrays["emb"]).reshape(num_classes, len(LEVELS), n, -1)


def splits(cfg: NeuronExperimentConfig, num_classes: int) -> list[tuple[str, list[int]]]:
    """[(name, unseen classes)] for reproduce: the configured lists, or `splits` seeded
    splits per size of our vocabulary."""
    e = cfg.experiment
    if e.unseen_lists:
        return [(f"u{len(u)}-{i}", sorted(u)) for i, u in enumerate(e.unseen_lists)]
    if cfg.data.source != "synthetic":
        raise UserError("real data: give the unseen classes with experiment.unseen_lists")
    return [(f"u{size}-{i}", unseen_split(size, i)) for size in e.unseen_sizes for i in range(e.splits)]


def class_count(cfg: NeuronExperimentConfig) -> int:
    if cfg.data.source == "synthetic":
        return len(all_classes())
    from papers.neuron.ntu import NUM_CLASSES, real_file

    real_file(cfg.data)  # a missing path or file is a one-line error before any work
    return NUM_CLASSES[cfg.data.source]


def split_features(cfg: NeuronExperimentConfig, unseen: list[int], name: str,
                   show_progress: bool = True) -> dict:
    """Pre-train (or reuse) this split's encoder and return its frozen features:
    {"train_feats" (seen-class training samples), "train_labels", "test_feats", "test_labels",
    "seen", "unseen", "encoder_seen_acc"}. The sequences are only read on a cache miss."""
    from papers.neuron.pretrain import encoder_accuracy, extract_features, pretrain

    seen = [c for c in range(class_count(cfg)) if c not in unseen]
    key = cache_key(data=to_dict(cfg.data), encoder=to_dict(cfg.encoder), unseen=unseen, name=name)
    root = Path(cfg.data_dir) / "neuron"

    def build() -> dict:
        train, test, _ = sequences(cfg)
        seen_train = {k: v[np.isin(train["y"], seen)] for k, v in train.items()}
        test_seen = {k: v[np.isin(test["y"], seen)] for k, v in test.items()}
        torch.manual_seed(0)
        encoder = pretrain(cfg, seen_train, seen, seed=_split_seed(name), ckpt_dir=root / f"encoder-{key}",
                           progress=show_progress)
        return {
            "train_feats": extract_features(encoder, seen_train, cfg, cfg.encoder.batch_size).numpy(),
            "train_labels": np.asarray(seen_train["y"], dtype=np.int64),
            "test_feats": extract_features(encoder, test, cfg, cfg.encoder.batch_size).numpy(),
            "test_labels": np.asarray(test["y"], dtype=np.int64),
            "encoder_seen_acc": np.array(encoder_accuracy(encoder, test_seen, seen, cfg)),
        }

    arrays = cached_arrays(root / f"features-{key}.npz", build)
    return {"train_feats": torch.from_numpy(arrays["train_feats"]),
            "train_labels": torch.from_numpy(arrays["train_labels"]),
            "test_feats": torch.from_numpy(arrays["test_feats"]),
            "test_labels": torch.from_numpy(arrays["test_labels"]),
            "seen": seen, "unseen": unseen, "encoder_seen_acc": float(arrays["encoder_seen_acc"])}


def _split_seed(name: str) -> int:
    return int(cache_key(name=name)[:8], 16)
