"""Every numeric config field declares its range; values outside it, empty lists, the tiny
model's cross-field rules and unusable directories are one `error:` line and exit 2 (run
in-process; nothing is trained)."""

import pytest

from papers.spider.config import SpiderConfig
from shared.config import numeric_fields_without_range


def test_every_numeric_field_declares_its_range():
    assert numeric_fields_without_range(SpiderConfig) == []


@pytest.mark.parametrize("override,words", [
    # the examples, in spider's keys
    ("num_seeds=0", ["num_seeds", "out of range", ">= 1"]),
    ("num_seeds=-1", ["num_seeds", "out of range"]),
    ("finetune.lr=-0.1", ["finetune.lr", "-0.1", "> 0"]),
    ("finetune.batch_size=0", ["finetune.batch_size", ">= 1"]),
    ("finetune.mask_ratio=1.5", ["finetune.mask_ratio", "<= 1"]),
    ("pretrain.steps=-5", ["pretrain.steps", ">= 0"]),
    # a boundary of each kind of field
    ("seed=-1", ["'seed'", ">= 0"]),
    ("finetune.lr=0", ["finetune.lr", "> 0"]),
    ("finetune.epochs=0", ["finetune.epochs", ">= 1"]),
    ("finetune.warmup=1", ["finetune.warmup", "< 1"]),
    ("finetune.dare_drop=1", ["finetune.dare_drop", "< 1"]),
    ("finetune.graft_keep=-0.1", ["finetune.graft_keep", ">= 0"]),
    ("finetune.max_grad_norm=0", ["finetune.max_grad_norm", "> 0"]),
    ("finetune.checkpoint_every=0", ["finetune.checkpoint_every", ">= 1"]),
    ("finetune.l2sp_weight=-0.01", ["finetune.l2sp_weight", ">= 0"]),
    ("finetune.last_layers=0", ["finetune.last_layers", ">= 1"]),
    ("pretrain.lr=0", ["pretrain.lr", "> 0"]),
    ("pretrain.batch_size=0", ["pretrain.batch_size", ">= 1"]),
    ("model.vocab_size=100", ["model.vocab_size", ">= 262"]),
    ("model.heads=0", ["model.heads", ">= 1"]),
    ("model.image_size=2", ["model.image_size", ">= 3"]),
    ("data.upstream_train=0", ["data.upstream_train", ">= 1"]),
    ("data.downstream_eval=-1", ["data.downstream_eval", ">= 0"]),
    ("eval.batch_size=0", ["eval.batch_size", ">= 1"]),
    ("eval.max_new_tokens=-1", ["eval.max_new_tokens", ">= 0"]),
    ("experiment.processes=0", ["experiment.processes", ">= 1"]),
    ("finetune.lr=nan", ["finetune.lr", "out of range"]),
    # lists that must not be empty
    ("experiment.methods=[]", ["experiment.methods", "empty"]),
    ("data.downstream_tasks=[]", ["data.downstream_tasks", "empty"]),
    ("pretrain.styles=[]", ["pretrain.styles", "empty"]),
    # the tiny model's cross-field rules
    ("model.patch_size=12", ["model.image_size (16)", "multiple of model.patch_size (12)"]),
    ("model.image_size=256", ["1024 image tokens", "at most 128"]),
    ("model.heads=3", ["model.vision_width (16)", "multiple of model.heads (3)"]),
    ("model.text_width=18", ["model.text_width / model.heads (9)", "even"]),
    ("model.text_layers=1", ["finetune.last_layers (2)", "model.text_layers (1)"]),
    ("data.downstream_train=0", ["data.downstream_train", "at least 1 for the tiny model"]),
])
def test_a_value_out_of_range_is_one_line(one_line_error, override, words):
    line = one_line_error("spider", "train", ["wandb=false", *override.split()])
    for word in words:
        assert word in line, line


def test_paper_path_keeps_zero_as_the_whole_split(tmp_path):
    """On the paper path 0 examples means the whole split, and the tiny model's sizes are
    not checked (LLaVA's come from model.path)."""
    from papers.spider import pipeline

    cfg = pipeline.config("paper", ["model.heads=3", f"runs_dir={tmp_path}"])
    assert cfg.data.downstream_train == 0 and cfg.model.heads == 3


def test_unusable_directories_are_one_line(one_line_error, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert "exists and is not a directory" in one_line_error("spider", "train", [f"runs_dir={blocker}"])
    assert "cannot be created" in one_line_error("spider", "data", [f"data_dir={blocker}/sub"])
    assert "does not exist" in one_line_error("spider", "train", ["data_dir=/no/such/parent/data"])


def test_eval_without_a_finished_run_is_one_line(one_line_error, tmp_path):
    line = one_line_error("spider", "eval", [f"runs_dir={tmp_path}/empty"])
    assert "no finished spider run of config 'smoke'" in line and "train one first" in line
    line = one_line_error("spider", "eval", [f"resume={tmp_path}"])
    assert "not a spider fine-tuning run directory" in line
