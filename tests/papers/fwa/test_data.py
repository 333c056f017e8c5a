import numpy as np
import pytest
import torch

from papers.fwa.data import CIFAR_MEAN, CIFAR_STD, binary_dataset, cifar, mnist1d, write_cifar_bin
from shared import UserError


def test_cifar10_binary_files_are_read_with_labels_and_normalisation(cifar10_dir):
    split = cifar("cifar10", cifar10_dir)
    assert split.x_train.shape == (40, 3, 32, 32) and split.x_test.shape == (8, 3, 32, 32)
    assert split.y_train[:8].tolist() == list(range(8)) and split.num_classes == 10
    raw = np.fromfile(cifar10_dir / "test_batch.bin", np.uint8).reshape(8, 3073)
    pixel = raw[3, 1 + 1024 * 2 + 32 * 5 + 7] / 255.0  # image 3, blue channel, row 5, col 7
    expected = (pixel - CIFAR_MEAN[2]) / CIFAR_STD[2]
    assert float(split.x_test[3, 2, 5, 7]) == pytest.approx(expected, abs=1e-6)


def test_cifar100_uses_the_fine_label(tmp_path):
    images = np.zeros((3, 3, 32, 32))
    for name in ("train.bin", "test.bin"):
        rows = [np.concatenate([[coarse, fine], img.reshape(-1)]).astype(np.uint8)
                for coarse, fine, img in zip([1, 2, 3], [41, 42, 99], images)]
        np.stack(rows).tofile(tmp_path / name)
    assert cifar("cifar100", tmp_path).y_test.tolist() == [41, 42, 99]


def test_truncated_cifar_file_is_refused(cifar10_dir):
    path = cifar10_dir / "data_batch_3.bin"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(UserError, match="data_batch_3.bin is not a CIFAR binary file"):
        cifar("cifar10", cifar10_dir)


def test_missing_cifar_directory_or_files_are_user_errors(tmp_path, cifar10_dir):
    with pytest.raises(UserError, match="give the directory"):
        cifar("cifar10", "")
    (cifar10_dir / "test_batch.bin").unlink()
    with pytest.raises(UserError, match="lacks test_batch.bin"):
        cifar("cifar10", cifar10_dir)


def test_cifar_labels_out_of_range_are_refused(tmp_path):
    root = tmp_path / "c10"
    root.mkdir()
    for i in range(1, 6):
        write_cifar_bin(root / f"data_batch_{i}.bin", np.zeros((1, 3, 32, 32)), np.array([12]), 1)
    write_cifar_bin(root / "test_batch.bin", np.zeros((1, 3, 32, 32)), np.array([0]), 1)
    with pytest.raises(UserError, match="label 12"):
        cifar("cifar10", root)


def test_binary_datasets_are_standardised_with_bias_and_signed_labels():
    X, y = binary_dataset("breast_cancer", 0, 0, 0)
    assert X.shape == (569, 31) and set(np.unique(y)) == {-1.0, 1.0}
    np.testing.assert_allclose(X[:, :-1].mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(X[:, :-1].std(0), 1, atol=1e-12)
    assert (X[:, -1] == 1).all()
    Xs, ys = binary_dataset("synthetic", 50, 4, seed=3)
    assert Xs.shape == (50, 5)
    np.testing.assert_array_equal(binary_dataset("synthetic", 50, 4, seed=3)[0], Xs)


def test_mnist1d_is_generated_locally_and_cached(tmp_path):
    split = mnist1d(tmp_path, 400, seed=0)
    assert split.x_train.shape == (320, 40) and split.x_test.shape == (80, 40)
    assert split.num_classes == 10 and split.y_train.dtype == torch.long
    cached = list((tmp_path / "fwa").glob("mnist1d-*.npz"))
    assert len(cached) == 1 and cached[0].with_suffix(".npz.sha256").exists()
    again = mnist1d(tmp_path, 400, seed=0)
    assert torch.equal(again.x_train, split.x_train)
    cached[0].write_bytes(cached[0].read_bytes()[:-50])
    with pytest.raises(UserError, match="corrupt"):
        mnist1d(tmp_path, 400, seed=0)
