import numpy as np
import pytest

from papers.fwa.data import CIFAR_FILES, write_cifar_bin


@pytest.fixture
def cifar10_dir(tmp_path):
    """A tiny CIFAR-10 in the official binary layout: 5 train files and a test file."""
    rng = np.random.default_rng(0)
    root = tmp_path / "cifar-10-batches-bin"
    root.mkdir()
    train_files, test_files, label_bytes, _ = CIFAR_FILES["cifar10"]
    for name in train_files + test_files:
        images = rng.integers(0, 256, size=(8, 3, 32, 32))
        write_cifar_bin(root / name, images, np.arange(8) % 10, label_bytes)
    return root
