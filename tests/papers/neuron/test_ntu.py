"""The loader for user-supplied CTR-GCN-format NTU / PKU-MMD arrays, on tiny fake files."""

from __future__ import annotations

import numpy as np
import pytest

from papers.neuron import ntu
from papers.neuron.config import DataConfig
from shared import UserError

LENGTHS_TRAIN = [20, 13, 1, 7]
LENGTHS_TEST = [5, 20, 9]


def fake_arrays(classes: int = 60, frames: int = 20) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    out = {}
    for split, lengths in (("train", LENGTHS_TRAIN), ("test", LENGTHS_TEST)):
        x = np.zeros((len(lengths), frames, 150), dtype=np.float32)
        for i, n in enumerate(lengths):
            x[i, :n, :75] = rng.normal(size=(n, 75))
            if i % 2:
                x[i, :n, 75:] = rng.normal(size=(n, 75))
        labels = rng.integers(0, classes, len(lengths))
        out[f"x_{split}"] = x
        out[f"y_{split}"] = np.eye(classes, dtype=np.float32)[labels]  # one-hot, as CTR-GCN stores
    return out


def write(folder, name="NTU60_CS.npz", compressed=False, **arrays) -> DataConfig:
    arrays = arrays or fake_arrays()
    (np.savez_compressed if compressed else np.savez)(folder / name, **arrays)
    return DataConfig(source="ntu60", benchmark="xsub", path=str(folder))


@pytest.mark.parametrize("compressed", [False, True])
def test_load_real_reads_the_ctrgcn_layout(tmp_path, compressed):
    arrays = fake_arrays()
    cfg = write(tmp_path, compressed=compressed, **arrays)
    train, test = ntu.load_real(cfg)
    for got, split, lengths in ((train, "train", LENGTHS_TRAIN), (test, "test", LENGTHS_TEST)):
        assert set(got) == {"x", "y", "length"}
        assert got["x"].dtype == np.float32 and got["x"].shape == arrays[f"x_{split}"].shape
        assert np.array_equal(np.asarray(got["x"]), arrays[f"x_{split}"])
        assert got["y"].dtype == np.int64
        assert np.array_equal(got["y"], arrays[f"y_{split}"].argmax(1))
        assert got["length"].tolist() == lengths
    if not compressed:
        assert isinstance(train["x"], np.memmap)  # np.savez output is memory-mapped


def test_integer_labels_and_other_sources(tmp_path):
    arrays = fake_arrays(classes=120)
    arrays["y_test"] = arrays["y_test"].argmax(1)
    np.savez(tmp_path / "NTU120_CSet.npz", **arrays)
    _, test = ntu.load_real(DataConfig(source="ntu120", benchmark="xset", path=str(tmp_path)))
    assert np.array_equal(test["y"], arrays["y_test"])
    np.savez(tmp_path / "PKUMMD_CS.npz", **fake_arrays(classes=51))
    train, _ = ntu.load_real(DataConfig(source="pkummd", benchmark="xsub", path=str(tmp_path)))
    assert train["y"].max() < 51


def test_file_names():
    names = {key: ntu.FILES[key] for key in ntu.FILES}
    assert names[("ntu60", "xsub")] == "NTU60_CS.npz" and names[("ntu60", "xview")] == "NTU60_CV.npz"
    assert names[("ntu120", "xsub")] == "NTU120_CSub.npz"
    assert names[("ntu120", "xset")] == "NTU120_CSet.npz"


@pytest.mark.parametrize("source, benchmark, path, message", [
    ("synthetic", "xsub", "x", "not a real dataset"),
    ("ntu60", "xset", "x", "does not exist for ntu60"),
    ("ntu120", "xview", "x", "does not exist for ntu120"),
    ("ntu60", "xsub", "", "data.path' is empty"),
])
def test_config_errors(source, benchmark, path, message):
    with pytest.raises(UserError, match=message):
        ntu.load_real(DataConfig(source=source, benchmark=benchmark, path=path))


def test_missing_directory_and_file(tmp_path):
    with pytest.raises(UserError, match="not a directory"):
        ntu.load_real(DataConfig(source="ntu60", path=str(tmp_path / "nowhere")))
    np.savez(tmp_path / "NTU60_CV.npz", **fake_arrays())
    with pytest.raises(UserError, match=r"NTU60_CS.npz not found .*NTU60_CV.npz"):
        ntu.load_real(DataConfig(source="ntu60", benchmark="xsub", path=str(tmp_path)))


def _one_line(err: pytest.ExceptionInfo, *needles: str) -> None:
    text = str(err.value)
    assert "\n" not in text
    for needle in needles:
        assert needle in text, text


def test_missing_keys(tmp_path):
    arrays = fake_arrays()
    del arrays["y_test"]
    cfg = write(tmp_path, **arrays)
    with pytest.raises(UserError) as err:
        ntu.load_real(cfg)
    _one_line(err, "NTU60_CS.npz", "lacks y_test")


@pytest.mark.parametrize("compressed", [False, True])
def test_truncated_or_garbage_files(tmp_path, compressed):
    cfg = write(tmp_path, compressed=compressed)
    path = tmp_path / "NTU60_CS.npz"
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(UserError) as err:
        ntu.load_real(cfg)
    _one_line(err, str(path), "truncated or corrupt")
    path.write_bytes(b"not a zip file at all")
    with pytest.raises(UserError) as err:
        ntu.load_real(cfg)
    _one_line(err, str(path))


def test_corrupt_compressed_member(tmp_path):
    cfg = write(tmp_path, compressed=True)
    path = tmp_path / "NTU60_CS.npz"
    blob = bytearray(path.read_bytes())
    start = blob.index(b"x_train.npy") + 200  # inside the deflated x_train data
    blob[start:start + 64] = bytes(64)
    path.write_bytes(bytes(blob))
    with pytest.raises(UserError) as err:
        ntu.load_real(cfg)
    _one_line(err, str(path))


@pytest.mark.parametrize("key, value, message", [
    ("x_train", np.zeros((4, 20, 75), np.float32), "expected (N, T, 150)"),
    ("x_test", np.zeros((3, 150), np.float32), "expected (N, T, 150)"),
    ("x_train", np.zeros((4, 20, 150), np.int32), "expected floating point"),
    ("y_train", np.eye(60)[:3], "expected (4, 60)"),
    ("y_train", np.eye(120)[:4], "expected (4, 60)"),
    ("y_test", np.array([0, 1, 60]), "outside 0..59"),
    ("y_test", np.zeros((3, 60)), "no positive entry"),
    ("y_test", np.array([0.0, 1.0, 2.0]), "integers"),
])
def test_malformed_arrays(tmp_path, key, value, message):
    arrays = fake_arrays()
    arrays[key] = value
    cfg = write(tmp_path, **arrays)
    with pytest.raises(UserError) as err:
        ntu.load_real(cfg)
    _one_line(err, "NTU60_CS.npz", key, message)


def test_float64_arrays_become_float32(tmp_path):
    arrays = fake_arrays()
    arrays["x_train"] = arrays["x_train"].astype(np.float64)
    train, _ = ntu.load_real(write(tmp_path, **arrays))
    assert train["x"].dtype == np.float32 and train["length"].tolist() == LENGTHS_TRAIN
