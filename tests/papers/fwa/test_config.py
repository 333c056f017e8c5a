"""Every numeric field of FWAConfig has a range; a value outside it, an empty list, or a
cross-field mistake (k > T/2, a horizon beyond T, a pool too small, ResNet on MNIST-1D) is
one `error:` line and exit 2 (in-process through the CLI), before any work is done."""

import pytest

from papers.fwa.config import FWAConfig
from papers.fwa.train import check_shards
from shared import UserError
from shared.config import numeric_fields_without_range


def test_every_numeric_field_declares_its_range():
    assert numeric_fields_without_range(FWAConfig) == []


@pytest.mark.parametrize("override, words", [
    # the examples
    ("num_seeds=0", ["'num_seeds'", "0 is out of range", ">= 1"]),
    ("num_seeds=-1", ["'num_seeds'", "-1 is out of range"]),
    ("train.lr=-0.1", ["'train.lr'", "-0.1 is out of range", "> 0"]),
    ("train.batch_size=0", ["'train.batch_size'", ">= 1"]),
    ("convex.steps=-5", ["'convex.steps'", "-5 is out of range", ">= 2"]),
    ("train.hidden=0", ["'train.hidden'", ">= 1"]),  # zero widths
    ("train.resnet_width=0", ["'train.resnet_width'", ">= 1"]),
    ("stability.hidden=0", ["'stability.hidden'", ">= 1"]),
    ("experiments=[]", ["'experiments'", "the list is empty"]),
    # a boundary of each kind of field
    ("seed=-1", ["'seed'", ">= 0"]),
    ("convex.l2=0", ["'convex.l2'", "> 0"]),
    ("stability.l2=-0.5", ["'stability.l2'", ">= 0"]),
    ("convex.eval_points=1", ["'convex.eval_points'", ">= 2"]),
    ("convex.windows=[1,0]", ["'convex.windows[1]'", "0 is out of range", ">= 1"]),
    ("convex.windows=[]", ["'convex.windows'", "the list is empty"]),
    ("convex.schedules=[]", ["'convex.schedules'", "the list is empty"]),
    ("convex.datasets=[]", ["'convex.datasets'", "the list is empty"]),
    ("convex.lr.sqrt=-1", ["'convex.lr[sqrt]'", "> 0"]),
    ("convex.ema_decay=1", ["'convex.ema_decay'", "< 1"]),
    ("convex.theory_c0=-1", ["'convex.theory_c0'", ">= 0"]),
    ("convex.synthetic_features=1", ["'convex.synthetic_features'", ">= 2"]),
    ("stability.sizes=[0]", ["'stability.sizes[0]'", ">= 1"]),
    ("stability.pairs=0", ["'stability.pairs'", ">= 1"]),
    ("stability.models=[]", ["'stability.models'", "the list is empty"]),
    ("stability.lr.inv=0", ["'stability.lr[inv]'", "> 0"]),
    ("train.epochs=0", ["'train.epochs'", ">= 1"]),
    ("train.momentum=1.5", ["'train.momentum'", "< 1"]),
    ("train.weight_decay=-1e-4", ["'train.weight_decay'", ">= 0"]),
    ("train.mnist1d_samples=9", ["'train.mnist1d_samples'", ">= 10"]),
    ("train.lawa_windows=[]", ["'train.lawa_windows'", "the list is empty"]),
    ("train.fwa_windows=[0]", ["'train.fwa_windows[0]'", ">= 1"]),
    ("train.eval_every=0", ["'train.eval_every'", ">= 1"]),
    ("train.keep_checkpoints=0", ["'train.keep_checkpoints'", ">= 1"]),
    ("train.ema_decay=-0.1", ["'train.ema_decay'", ">= 0"]),
    # cross-field rules
    ("convex.windows=[1,300]", ["'convex.windows'", "k ≤ T/2", "k = 300 > convex.steps/2 = 200"]),
    ("convex.eval_first=500", ["'convex.eval_first'", "beyond the horizon", "<= 400"]),
    ("stability.windows=[1,200]", ["'stability.windows'", "k ≤ T/2"]),
    ("stability.eval_first=301", ["'stability.eval_first'", "<= 300"]),
    ("stability.sizes=[50,400]", ["'stability.sizes'", "n + 1 samples", "pool_samples = 400"]),
    ("stability.schedules=[const,sqrt]", ["'stability.lr'", "no step size c", "sqrt"]),
    ("convex.lr.fast=1.0", ["'convex.lr'", "['fast'] not in"]),
    ("train.model=resnet18", ["'train.model'", "train.dataset=cifar10 or cifar100"]),
    ("train.augment=true", ["'train.augment'", "for CIFAR images"]),
    ("experiments=[convex,proofs]", ["'experiments'", "['proofs'] not in"]),
])
def test_a_value_out_of_range_is_one_line(one_line_error, override, words):
    line = one_line_error("fwa", "reproduce", ["wandb=false", override])
    for word in words:
        assert word in line, line


def test_an_empty_experiment_list_writes_nothing(one_line_error, tmp_path):
    one_line_error("fwa", "reproduce", [f"runs_dir={tmp_path}/runs", "experiments=[]"])
    assert not (tmp_path / "runs" / "fwa").exists()  # no empty RESULTS.md, no "latest"


def test_fwa_step_windows_beyond_half_the_steps_are_one_line(one_line_error):
    # smoke: 800 MNIST-1D training samples / batch 128 = 7 steps per epoch, 4 epochs: T = 28
    line = one_line_error("fwa", "train", ["wandb=false", "train.fwa_windows=[5,15]"])
    assert "'train.fwa_windows'" in line and "k = 15 > 14" in line and "T = 4 epochs × 7 steps" in line


def test_every_process_needs_a_sample_in_every_batch():
    check_shards(800, 128, 1)
    check_shards(800, 128, 2)  # the last batch has 32 samples
    check_shards(800, 2, 2)
    with pytest.raises(UserError, match="train.batch_size.*1 over 2 processes"):
        check_shards(800, 1, 2)
    with pytest.raises(UserError, match="last batch 1"):
        check_shards(769, 128, 2)  # 6 × 128 + 1


def test_unusable_directories_are_one_line(one_line_error, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert "exists and is not a directory" in one_line_error("fwa", "train", [f"runs_dir={blocker}"])
    assert "cannot be created" in one_line_error("fwa", "data", [f"data_dir={blocker}/sub"])
