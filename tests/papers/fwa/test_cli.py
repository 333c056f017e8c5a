"""The command line as a user meets it: bad configs and missing data end in one line, exit 2
(in-process through `main(argv)`; one true subprocess run keeps `python -m papers.fwa` honest)."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize("args, words", [
    (["train", "--config", "smoke", "no_such_key=1"], ["no_such_key", "unknown key"]),
    (["train", "--config", "smoke", "train.epochs=abc"], ["train.epochs", "'abc' is not a whole number"]),
    (["train", "--config", "smoke", "train.epoch=3"], ["closest valid keys: train.epochs"]),
    (["train", "--config", "smoke", "train.dataset=imagenet"], ["train.dataset", "not one of"]),
    (["train", "--config", "nope"], ["no config 'nope'", "smoke"]),
    (["train", "--config", "smoke", "train.dataset=cifar10", "train.model=resnet18"],
     ["train.data_path", "binary files"]),
])
def test_user_errors_print_one_line_and_exit_2(cli, tmp_path, args, words):
    code, out, err = cli("fwa", *args, f"runs_dir={tmp_path}", f"data_dir={tmp_path}/data")
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for word in words:
        assert word in lines[0]
    assert "Traceback" not in err


def test_data_command_generates_every_dataset(cli, tmp_path):
    code, out, err = cli("fwa", "data", "--config", "smoke", f"runs_dir={tmp_path}",
                         f"data_dir={tmp_path}/data")
    assert code == 0, err
    assert "convex/breast_cancer: 569 samples, 31 features" in out
    assert "train/mnist1d: 800 train, 200 test, 10 classes" in out


def test_a_mistake_as_a_real_process(repo_root, tmp_path):
    """`python -m papers.fwa` itself (not main(argv)): a range mistake is one line, exit 2."""
    proc = subprocess.run([sys.executable, "-m", "papers.fwa", "reproduce", "--config", "smoke",
                           "num_seeds=0", f"runs_dir={tmp_path}"], cwd=repo_root,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: config key 'num_seeds': 0 is out of range (allowed: >= 1)"]


def test_help_lists_every_command_with_its_line(cli):
    code, out, _ = cli("fwa", "--help")
    assert code == 0
    for command in ("data", "train", "eval", "reproduce", "config"):
        assert any(line.split()[:1] == [command] and len(line.split()) > 2
                   for line in out.splitlines()), (command, out)


def test_every_command_has_its_own_help(cli):
    for command, first in (("train", "Train the network"), ("eval", "Evaluate a finished training run"),
                           ("reproduce", "Run the configured experiments"), ("data", "Generate")):
        code, out, _ = cli("fwa", command, "--help")
        assert code == 0 and first in out and "--config" in out, (command, out)
