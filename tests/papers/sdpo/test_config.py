"""SDPO's config: every numeric field declares its range, a value outside it (or a broken
cross-field rule) is one `error:` line and exit 2 before anything is built, and the `config`
command shows each field's doc and range."""

import pytest

from papers.sdpo.config import SDPOExperimentConfig
from shared.config import numeric_fields_without_range


def test_every_numeric_field_declares_its_range():
    assert numeric_fields_without_range(SDPOExperimentConfig) == []


@pytest.mark.parametrize("override, message", [
    # the examples
    ("num_seeds=0", "config key 'num_seeds': 0 is out of range (allowed: >= 1)"),
    ("num_seeds=-1", "config key 'num_seeds': -1 is out of range (allowed: >= 1)"),
    ("train.lr=-0.1", "config key 'train.lr': -0.1 is out of range (allowed: > 0)"),
    ("train.batch_size=0", "config key 'train.batch_size': 0 is out of range (allowed: >= 1)"),
    ("train.batch_size=-4", "config key 'train.batch_size': -4 is out of range (allowed: >= 1)"),
    ("train.methods=[]", "config key 'train.methods': the list is empty; give at least one value"),
    ("eval.steps=[]", "config key 'eval.steps': the list is empty; give at least one value"),
    ("base.block_out_channels=[8,0]",
     "config key 'base.block_out_channels[1]': 0 is out of range (allowed: >= 1)"),
    # a sample of the other fields, each just past a bound
    ("data.image_size=3", "config key 'data.image_size': 3 is out of range (allowed: >= 4)"),
    ("text.heads=0", "config key 'text.heads': 0 is out of range (allowed: >= 1)"),
    ("base.beta_end=1.0", "config key 'base.beta_end': 1 is out of range (allowed: > 0 and < 1)"),
    ("base.pretrain_lr=0", "config key 'base.pretrain_lr': 0 is out of range (allowed: > 0)"),
    ("policy.lora_rank=-1", "config key 'policy.lora_rank': -1 is out of range (allowed: >= 0)"),
    ("reward.batch=0", "config key 'reward.batch': 0 is out of range (allowed: >= 1)"),
    ("sample.steps=1", "config key 'sample.steps': 1 is out of range (allowed: >= 2 and <= 1000)"),
    ("sample.eta=0", "config key 'sample.eta': 0 is out of range (allowed: > 0 and <= 1)"),
    ("sample.eta=1.5", "config key 'sample.eta': 1.5 is out of range (allowed: > 0 and <= 1)"),
    ("sdpo.gamma=1.01", "config key 'sdpo.gamma': 1.01 is out of range (allowed: >= 0 and <= 1)"),
    ("sdpo.clip_range=0", "config key 'sdpo.clip_range': 0 is out of range (allowed: > 0)"),
    ("baselines.d3po_ratio_clip=1",
     "config key 'baselines.d3po_ratio_clip': 1 is out of range (allowed: > 0 and < 1)"),
    ("train.weight_decay=-1e-4", "config key 'train.weight_decay': -0.0001 is out of range (allowed: >= 0)"),
    ("train.epochs=0", "config key 'train.epochs': 0 is out of range (allowed: >= 1)"),
    ("eval.steps=[1,0]", "config key 'eval.steps[1]': 0 is out of range (allowed: >= 1 and <= 1000)"),
    ("eval.eta=-0.5", "config key 'eval.eta': -0.5 is out of range (allowed: >= 0 and <= 1)"),
    ("parallel_runs=0", "config key 'parallel_runs': 0 is out of range (allowed: >= 1)"),
])
def test_a_value_past_its_bound_is_one_line(one_line_error, override, message):
    assert one_line_error("sdpo", "train", [override]) == f"error: {message}"


@pytest.mark.parametrize("overrides, words", [
    (["text.heads=3"], "text.hidden=16 must be a multiple of text.heads=3"),
    (["data.image_size=18", "base.block_out_channels=[8,16,16]"], "data.image_size=18 must be a multiple of 4"),
    (["base.beta_start=0.5"], "base.beta_start=0.5 must not exceed base.beta_end=0.012"),
    (["base.distill_teacher_steps=12"], "base.distill_teacher_steps=12 must be a multiple of 8"),
    (["sdpo.min_count=33"], "sdpo.min_count=33 must be at most sdpo.buffer_size=32"),
    (["train.grad_accum=2"], "train.grad_accum=2 must divide the 3 micro-batches"),
    (["train.ablation_seeds=3"], "train.ablation_seeds=3 must be at most num_seeds=2"),
    (["train.methods=[sdpo,ppo]"], "config key 'train.methods': ['ppo'] not in sdpo, ddpo, d3po, rebel"),
])
def test_a_broken_cross_field_rule_is_one_line(one_line_error, overrides, words):
    assert words in one_line_error("sdpo", "reproduce", overrides)


def test_rules_wait_for_values_in_range(one_line_error):
    """A zero that a rule would divide by is reported as out of range, not as a crash."""
    assert "out of range" in one_line_error("sdpo", "train", ["train.grad_accum=0"])
    assert "'num_seeds': 0 is out of range" in one_line_error("sdpo", "reproduce", ["num_seeds=0"])


def test_paper_config_without_ablations_needs_no_ablation_seeds(cli):
    code, out, err = cli("sdpo", "config", "--config", "paper")
    assert code == 0, err
    assert "train.ablation_seeds = 3" in out and "train.ablations = []" in out


def test_config_command_shows_docs_and_ranges(cli):
    code, out, err = cli("sdpo", "config", "--config", "smoke", "train.lr=0.01")
    assert code == 0, err
    assert "train.lr = 0.01  # AdamW learning rate [range > 0]" in out
    assert "sample.eta = 1.0  # DDIM eta of the policy [range > 0 and <= 1]" in out
    assert "eval.steps = [1, 2, 4, 8]  # sampling budgets [range >= 1 and <= 1000; non-empty]" in out


def test_help_lists_every_command_with_its_first_line(cli):
    code, out, _ = cli("sdpo", "--help")
    assert code == 0
    for command in ("data", "train", "eval", "reproduce", "config"):
        assert f"  {command}" in out
    assert "Evaluate a finished run" in out
    code, out, _ = cli("sdpo", "train", "--help")
    assert code == 0 and "accelerate launch" in out
