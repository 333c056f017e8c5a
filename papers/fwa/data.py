"""Data, all generated locally or read from a path the user gives; nothing downloads.

- Binary classification for the convex and stability experiments: scikit-learn's bundled
  breast-cancer set, or `make_classification`; standardised, labels ±1, a bias column.
- MNIST-1D for the non-convex experiment, generated with the `mnist1d` package's
  `make_dataset` (its download path is never called) and cached with a checksum.
- CIFAR-10/100 for the paper-scale run, from the official *binary* files in a user
  directory (no pickle): CIFAR-10 `data_batch_{1..5}.bin`, `test_batch.bin` (1 label byte +
  3072 pixel bytes per record); CIFAR-100 `train.bin`, `test.bin` (coarse + fine label bytes).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from shared import UserError
from shared.cache import cache_key, cached_arrays

CIFAR_FILES = {
    "cifar10": (["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
                 "data_batch_5.bin"], ["test_batch.bin"], 1, 10),
    "cifar100": (["train.bin"], ["test.bin"], 2, 100),
}
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)


def _standardise_with_bias(X: np.ndarray) -> np.ndarray:
    X = (X - X.mean(0)) / np.maximum(X.std(0), 1e-12)
    return np.hstack([X, np.ones((len(X), 1))])


def binary_dataset(name: str, samples: int, features: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(X with bias column, y ∈ {−1, +1}) in float64."""
    from sklearn.datasets import load_breast_cancer, make_classification

    if name == "breast_cancer":
        X, y = load_breast_cancer(return_X_y=True)
    elif name == "synthetic":
        X, y = make_classification(n_samples=samples, n_features=features,
                                   n_informative=max(2, features // 2), n_redundant=0,
                                   flip_y=0.05, class_sep=1.0, random_state=seed)
    else:
        raise UserError(f"unknown binary dataset '{name}' (breast_cancer, synthetic)")
    return _standardise_with_bias(X.astype(np.float64)), np.where(y > 0, 1.0, -1.0)


@dataclass
class Split:
    """Train and test tensors for classification."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int


def mnist1d(data_dir: str | Path, num_samples: int, seed: int) -> Split:
    """MNIST-1D (Greydanus 2020) generated locally: 80/20 train/test, length-40 signals."""
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples, args.seed = num_samples, seed
    key = cache_key(dataset="mnist1d", num_samples=num_samples, seed=seed)
    path = Path(data_dir) / "fwa" / f"mnist1d-{key}.npz"

    def build() -> dict[str, np.ndarray]:
        data = make_dataset(args)
        return {k: np.asarray(data[k]) for k in ("x", "y", "x_test", "y_test")}

    arrays = cached_arrays(path, build)
    mean, std = arrays["x"].mean(), arrays["x"].std()

    def norm(x):
        return torch.tensor((x - mean) / std, dtype=torch.float32)

    return Split(norm(arrays["x"]), torch.tensor(arrays["y"], dtype=torch.long),
                 norm(arrays["x_test"]), torch.tensor(arrays["y_test"], dtype=torch.long), 10)


def _read_cifar_bin(path: Path, label_bytes: int) -> tuple[np.ndarray, np.ndarray]:
    record = label_bytes + 3072
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % record:
        raise UserError(f"{path} is not a CIFAR binary file (size {raw.size} is not a multiple "
                        f"of {record} bytes): truncated or corrupt")
    raw = raw.reshape(-1, record)
    labels = raw[:, label_bytes - 1].astype(np.int64)  # CIFAR-100: the fine label
    images = raw[:, label_bytes:].reshape(-1, 3, 32, 32)
    return images, labels


def cifar(name: str, data_path: str | Path) -> Split:
    """CIFAR-10/100 from the official binary release in `data_path`, normalised."""
    train_files, test_files, label_bytes, classes = CIFAR_FILES[name]
    root = Path(data_path) if data_path else None
    if root is None or not root.is_dir():
        raise UserError(f"train.data_path='{data_path}': give the directory holding the {name} "
                        f"binary files ({', '.join(train_files + test_files)})")
    missing = [f for f in train_files + test_files if not (root / f).exists()]
    if missing:
        raise UserError(f"{root} lacks {', '.join(missing)} (the {name} binary release)")

    def load(files):
        parts = [_read_cifar_bin(root / f, label_bytes) for f in files]
        images = np.concatenate([p[0] for p in parts]).astype(np.float32) / 255.0
        labels = np.concatenate([p[1] for p in parts])
        if labels.max(initial=0) >= classes:
            raise UserError(f"{root}: label {labels.max()} ≥ {classes}: wrong or corrupt files")
        mean = np.array(CIFAR_MEAN, np.float32)[:, None, None]
        std = np.array(CIFAR_STD, np.float32)[:, None, None]
        return torch.from_numpy((images - mean) / std), torch.from_numpy(labels)

    x_train, y_train = load(train_files)
    x_test, y_test = load(test_files)
    return Split(x_train, y_train, x_test, y_test, classes)


def write_cifar_bin(path: Path, images: np.ndarray, labels: np.ndarray, label_bytes: int) -> None:
    """Write records in CIFAR's binary layout (used to build tiny test fixtures)."""
    rows = [np.concatenate([np.full(label_bytes, lab, np.uint8), img.reshape(-1)])
            for img, lab in zip(images.astype(np.uint8), labels)]
    np.stack(rows).tofile(path)
