"""From configuration to what a head trains on: sequences (synthesised or real), the class
text embeddings, and for every unseen-class split a skeleton encoder pre-trained on that
split's seen classes only (then frozen) and its cached feature maps.

One encoder per split, shared by every head and seed on that split (its pre-training seed
is fixed by the split), so seeds vary the heads, not the features.

Several processes (`accelerate launch` / torchrun): `distributed_encoders` pre-trains the
encoders the given splits still need with every process (data-parallel, see pretrain.py),
then releases the other processes; the main process goes on alone (feature extraction, heads,
results), so every cache, run directory and result is written once."""

from __future__ import annotations

import json
import os
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
    rows = load_descriptions(cfg.text.descriptions_path, num_classes, cfg.text.per_level)
    n = cfg.text.per_level
    flat = [t for row in rows for texts in row for t in texts[:n]]
    key = cache_key(encoder=cfg.text.encoder, texts=flat)
    arrays = cached_arrays(Path(cfg.data_dir) / "neuron" / f"text-user-{key}.npz", lambda: {
        "emb": text.embed_texts(text.load_encoder(cfg.text.encoder), flat, cfg.text.batch_size).numpy()})
    return torch.from_numpy(arrays["emb"]).reshape(num_classes, len(LEVELS), n, -1)


def check_text(cfg: NeuronExperimentConfig, num_classes: int) -> None:
    """Before any work: a user's description file (text.descriptions_path) is complete and
    well-formed (`load_descriptions`), so a mistake in it is one line, not a late crash."""
    if cfg.text.descriptions_path:
        load_descriptions(cfg.text.descriptions_path, num_classes, cfg.text.per_level)


def load_descriptions(path: str | Path, num_classes: int, per_level: int) -> list[list[list[str]]]:
    """A user's class descriptions, checked: [class][level][description] (the first
    `per_level` of each). The file is a JSON object with one key per level (config.LEVELS),
    each a list with one entry per class in label order, each entry a list of at least
    `per_level` non-empty strings; optional "classes" (the class names, one per class) and
    any other keys (e.g. "schema") are ignored. Template: data/ntu60_descriptions_template.json.
    Any mistake is one UserError line naming the file and the place."""
    path = Path(path)
    where = f"text.descriptions_path {path}"
    try:
        table = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"{where}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"{where}: not valid JSON ({type(exc).__name__})") from None
    if not isinstance(table, dict):
        raise UserError(f"{where}: must be a JSON object with the keys {', '.join(LEVELS)}")
    missing = [level for level in LEVELS if level not in table]
    if missing:
        raise UserError(f"{where}: missing level(s) {', '.join(missing)}")
    names = table.get("classes")
    if names is not None and (not isinstance(names, list) or len(names) != num_classes):
        raise UserError(f"{where}: 'classes' must list the {num_classes} class names")
    for level in LEVELS:
        entries = table[level]
        if not isinstance(entries, list) or len(entries) != num_classes:
            got = len(entries) if isinstance(entries, list) else type(entries).__name__
            raise UserError(f"{where}: level '{level}' needs one entry per class ({num_classes}), got {got}")
        for c, texts in enumerate(entries):
            if not isinstance(texts, list) or len(texts) < per_level:
                got = len(texts) if isinstance(texts, list) else type(texts).__name__
                raise UserError(f"{where}: level '{level}', class {c}: needs a list of at least "
                                f"{per_level} descriptions (text.per_level), got {got}")
            bad = [i for i, t in enumerate(texts[:per_level]) if not isinstance(t, str) or not t.strip()]
            if bad:
                raise UserError(f"{where}: level '{level}', class {c}: description {bad[0]} is not a "
                                "non-empty string")
    return [[list(table[level][c][:per_level]) for level in LEVELS] for c in range(num_classes)]


def splits(cfg: NeuronExperimentConfig, num_classes: int) -> list[tuple[str, list[int]]]:
    """[(name, unseen classes)] for reproduce: the configured lists, or `splits` seeded
    splits per size of our vocabulary."""
    e = cfg.experiment
    if e.unseen_lists:
        for i, u in enumerate(e.unseen_lists):
            bad = [c for c in u if not 0 <= c < num_classes]
            if bad:
                raise UserError(f"config key 'experiment.unseen_lists[{i}]': classes {bad} are "
                                f"outside 0..{num_classes - 1}")
            if len(u) > num_classes - 2:
                raise UserError(f"config key 'experiment.unseen_lists[{i}]': {len(u)} unseen of "
                                f"{num_classes} classes leaves fewer than 2 seen classes")
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


def _split_cache(cfg: NeuronExperimentConfig, unseen: list[int], name: str) -> tuple[list[int], Path, Path]:
    """(seen classes, encoder checkpoint directory, features cache file) of a split."""
    seen = [c for c in range(class_count(cfg)) if c not in unseen]
    key = cache_key(data=to_dict(cfg.data), encoder=to_dict(cfg.encoder), unseen=unseen, name=name)
    root = Path(cfg.data_dir) / "neuron"
    return seen, root / f"encoder-{key}", root / f"features-{key}.npz"


def _seen_rows(data: dict, seen: list[int]) -> dict:
    return {k: v[np.isin(data["y"], seen)] for k, v in data.items()}


def split_features(cfg: NeuronExperimentConfig, unseen: list[int], name: str,
                   show_progress: bool = True) -> dict:
    """Pre-train (or reuse) this split's encoder and return its frozen features:
    {"train_feats" (seen-class training samples), "train_labels", "test_feats", "test_labels",
    "seen", "unseen", "encoder_seen_acc"}. The sequences are only read on a cache miss."""
    from papers.neuron.pretrain import encoder_accuracy, extract_features, pretrain

    seen, ckpt_dir, path = _split_cache(cfg, unseen, name)

    def build() -> dict:
        train, test, _ = sequences(cfg)
        seen_train, test_seen = _seen_rows(train, seen), _seen_rows(test, seen)
        torch.manual_seed(0)
        encoder = pretrain(cfg, seen_train, seen, seed=_split_seed(name), ckpt_dir=ckpt_dir,
                           progress=show_progress, monitor=test_seen)
        return {
            "train_feats": extract_features(encoder, seen_train, cfg, cfg.encoder.batch_size).numpy(),
            "train_labels": np.asarray(seen_train["y"], dtype=np.int64),
            "test_feats": extract_features(encoder, test, cfg, cfg.encoder.batch_size).numpy(),
            "test_labels": np.asarray(test["y"], dtype=np.int64),
            "encoder_seen_acc": np.array(encoder_accuracy(encoder, test_seen, seen, cfg)),
            "encoder_curve": encoder_curve(encoder.history),
        }

    arrays = cached_arrays(path, build)
    return {"train_feats": torch.from_numpy(arrays["train_feats"]),
            "train_labels": torch.from_numpy(arrays["train_labels"]),
            "test_feats": torch.from_numpy(arrays["test_feats"]),
            "test_labels": torch.from_numpy(arrays["test_labels"]),
            "seen": seen, "unseen": unseen, "encoder_seen_acc": float(arrays["encoder_seen_acc"]),
            "encoder_curve": arrays["encoder_curve"].tolist()}


def encoder_curve(history: list[dict]) -> np.ndarray:
    """(epochs, 4) float64: optimizer step at the epoch's end, lr, mean training loss and the
    seen-class test top-1 where it was measured (NaN elsewhere)."""
    return np.array([[r.get("step", np.nan), r["lr"], r["loss"], r.get("seen_acc", np.nan)]
                     for r in history], dtype=np.float64).reshape(-1, 4)


def world_size() -> int:
    """Processes of this run (WORLD_SIZE, set by accelerate launch and torchrun)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def is_main_process() -> bool:
    """RANK 0 (or no launch): the process that writes and reports."""
    try:
        return int(os.environ.get("RANK", "0")) == 0
    except ValueError:
        return True


def distributed_encoders(cfg: NeuronExperimentConfig, split_list: list[tuple[str, list[int]]],
                         show_progress: bool = True) -> bool:
    """Under a launch of several processes: pre-train, with every process, the encoder of each
    split in `split_list` whose features are not cached yet (the main process makes the
    sequence cache first and alone writes the checkpoints), then end the process group.
    Returns whether this process goes on: True for the main (or only) process, False for the
    others, which then have nothing left to do. One process: returns True at once."""
    if world_size() <= 1:
        return True
    from accelerate.utils import broadcast_object_list

    from papers.neuron.pretrain import pretrain
    from shared.device import close_distributed, make_accelerator

    accelerator = make_accelerator(cfg.device, "no")
    if accelerator.num_processes <= 1:
        return True
    if cfg.encoder.arch == "shiftgcn" and cfg.encoder.spatial_bn == "joint":
        # the float64 check of data-parallel pre-training (tests/papers/neuron/ddp_probe.py)
        # holds to 4e-11 with the per-channel BN but not with the per-(joint, channel) BN (a
        # 5e-5 loss gap in the first epoch, cause not found yet): refuse rather than differ
        raise UserError("several processes: data-parallel pre-training is verified only with "
                        "encoder.spatial_bn=channel (run one process, or set it)")
    main = accelerator.is_main_process
    try:
        if main:
            sequences(cfg)  # generate (or check) the sequence caches once
        accelerator.wait_for_everyone()
        for name, unseen in split_list:
            seen, ckpt_dir, path = _split_cache(cfg, unseen, name)
            if not broadcast_object_list([not path.exists() if main else None])[0]:
                continue  # features cached: nothing to train
            train, test, _ = sequences(cfg)
            torch.manual_seed(0)
            pretrain(cfg, _seen_rows(train, seen), seen, seed=_split_seed(name), ckpt_dir=ckpt_dir,
                     progress=show_progress, accelerator=accelerator, monitor=_seen_rows(test, seen))
    except BaseException:
        close_distributed(wait=False)
        raise
    close_distributed()  # the heads train on the main process alone: no collective is left
    return main


def _split_seed(name: str) -> int:
    return int(cache_key(name=name)[:8], 16)
