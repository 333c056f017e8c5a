"""The command line as a user meets it: bad configs and missing data end in one line, exit 2."""

import subprocess
import sys

import pytest


def _run(repo_root, tmp_path, *args):
    return subprocess.run(
        [sys.executable, "-m", "papers.fwa", *args, f"runs_dir={tmp_path}"],
        cwd=repo_root, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args, words", [
    (["train", "--config", "smoke", "no_such_key=1"], ["no_such_key", "unknown key"]),
    (["train", "--config", "smoke", "train.epochs=abc"], ["train.epochs", "'abc' is not a whole number"]),
    (["train", "--config", "smoke", "train.epoch=3"], ["closest valid keys: train.epochs"]),
    (["train", "--config", "smoke", "train.dataset=imagenet"], ["train.dataset", "not one of"]),
    (["train", "--config", "nope"], ["no config 'nope'", "smoke"]),
    (["train", "--config", "smoke", "train.dataset=cifar10", "train.model=resnet18"],
     ["train.data_path", "binary files"]),
])
def test_user_errors_print_one_line_and_exit_2(repo_root, tmp_path, args, words):
    proc = _run(repo_root, tmp_path, *args)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for word in words:
        assert word in lines[0]
    assert "Traceback" not in proc.stderr


def test_data_command_generates_every_dataset(repo_root, tmp_path):
    proc = _run(repo_root, tmp_path, "data", "--config", "smoke", f"data_dir={tmp_path}/data")
    assert proc.returncode == 0, proc.stderr
    assert "convex/breast_cancer: 569 samples, 31 features" in proc.stdout
    assert "train/mnist1d: 800 train, 200 test, 10 classes" in proc.stdout
