"""Every shipped config loads and is consistent; paper.yaml reads real NTU-60 arrays."""

from pathlib import Path

import pytest

import papers.neuron
from papers.neuron.config import NeuronExperimentConfig
from shared import UserError
from shared.config import load_config, numeric_fields_without_range

CONFIGS = Path(papers.neuron.__file__).parent / "configs"


@pytest.mark.parametrize("name", ["smoke", "small", "paper", "paper_ntu120", "paper_pkummd", "paper_ablation"])
def test_configs_load(name):
    cfg = load_config(NeuronExperimentConfig, CONFIGS, name, [])
    assert cfg.neuron.prefixes[-1] == cfg.encoder.out_frames


def test_paper_config_is_ntu60_with_the_released_split_and_sizes():
    cfg = load_config(NeuronExperimentConfig, CONFIGS, "paper", [])
    assert cfg.data.source == "ntu60" and cfg.encoder.width == 256 and cfg.neuron.prototypes == 80
    # the released 55/5 and 48/12 splits, exactly
    assert cfg.experiment.unseen_lists == [[10, 11, 19, 26, 56], [3, 5, 9, 12, 15, 40, 42, 47, 51, 56, 58, 59]]
    assert cfg.encoder.blocks == [4, 3, 3] and cfg.neuron.prototype_init == "normal"  # Shift-GCN, nn.Embedding
    # schedules in steps: the paper's epochs × ~575 steps per epoch
    assert (cfg.encoder.steps, cfg.encoder.milestones) == (110 * 575, [60 * 575, 80 * 575, 100 * 575])
    assert (cfg.train.steps, cfg.train.milestones) == (30 * 575, [4 * 575, 20 * 575])


@pytest.mark.parametrize("name,source,lists", [
    ("paper_ntu120", "ntu120", [[4, 13, 37, 43, 49, 65, 88, 95, 99, 106],
                                [5, 9, 11, 16, 18, 20, 22, 29, 35, 39, 45, 49, 59, 68, 70, 81, 84, 87, 93,
                                 94, 104, 113, 114, 119]]),
    ("paper_pkummd", "pkummd", [[1, 9, 20, 34, 50], [3, 7, 11, 15, 19, 21, 25, 31, 33, 36, 43, 48]]),
    ("paper_ablation", "ntu60", [[4, 19, 31, 47, 51], [12, 29, 32, 44, 59], [7, 20, 28, 39, 58]]),
])
def test_the_other_paper_configs_have_the_released_splits(name, source, lists):
    cfg = load_config(NeuronExperimentConfig, CONFIGS, name, [])
    assert cfg.data.source == source and cfg.experiment.unseen_lists == lists
    assert cfg.encoder.blocks == [4, 3, 3] and cfg.encoder.spatial_bn == "joint" and cfg.encoder.width == 256
    assert cfg.train.steps == 30 * (cfg.encoder.steps // 110)  # both in steps from one steps-per-epoch
    if name == "paper_ablation":  # full Neuron and every ablation on the authors' three 55/5 splits
        assert cfg.experiment.methods == ["neuron"] and len(cfg.experiment.ablations) == 5
    else:
        assert cfg.experiment.ablations == []


def test_paper_uses_shift_gcn_bn_and_small_pins_the_probed_encoder():
    paper = load_config(NeuronExperimentConfig, CONFIGS, "paper", [])
    small = load_config(NeuronExperimentConfig, CONFIGS, "small", [])
    assert paper.encoder.spatial_bn == "joint" and small.encoder.spatial_bn == "channel"
    assert small.tune.extend >= 1 and small.experiment.unseen_sizes == [12]


def test_bad_config_values_are_user_errors():
    with pytest.raises(UserError, match="prefixes"):
        load_config(NeuronExperimentConfig, CONFIGS, "small", ["neuron.prefixes=[5,10,12]"])
    with pytest.raises(UserError, match="experiment.methods"):
        load_config(NeuronExperimentConfig, CONFIGS, "small", ["experiment.methods=[synse]"])


def test_every_numeric_field_declares_its_range():
    assert numeric_fields_without_range(NeuronExperimentConfig) == []


@pytest.mark.parametrize("override,message", [
    # the examples for this paper
    ("experiment.unseen_sizes=[0]", "'experiment.unseen_sizes[0]': 0 is out of range (allowed: >= 2 and <= 36)"),
    ("experiment.unseen_sizes=[]", "'experiment.unseen_sizes': the list is empty"),
    ("experiment.methods=[]", "'experiment.methods': the list is empty"),
    ("num_seeds=0", "'num_seeds': 0 is out of range"),
    ("train.lr=-0.1", "'train.lr': -0.1 is out of range (allowed: > 0)"),
    ("train.batch_size=0", "'train.batch_size': 0 is out of range"),
    # boundaries of a sample of fields
    ("experiment.unseen_sizes=[37]", "37 is out of range (allowed: >= 2 and <= 36)"),
    ("experiment.splits=0", "'experiment.splits': 0 is out of range"),
    ("experiment.processes=0", "'experiment.processes': 0 is out of range"),
    ("experiment.ablation_sizes=[1]", "'experiment.ablation_sizes[0]': 1 is out of range"),
    ("encoder.width=0", "'encoder.width': 0 is out of range (allowed: >= 4)"),
    ("encoder.steps=0", "'encoder.steps': 0 is out of range"),
    ("encoder.milestones=[600]", "'encoder.milestones': [600] not below encoder.steps (5)"),
    ("encoder.warmup_steps=600", "'encoder.warmup_steps': 600 must be below encoder.steps (5)"),
    ("encoder.blocks=[2,2]", "'encoder.blocks': [2, 2] needs one count per stage (3)"),
    ("train.milestones=[300]", "'train.milestones': [300] not below train.steps (6)"),
    ("tune.lrs=[0]", "'tune.lrs[0]': 0 is out of range"),
    ("tune.logit_scales=[-1]", "'tune.logit_scales[0]': -1 is out of range"),
    ("neuron.prototype_init=uniform", "neuron.prototype_init"),
    ("neuron.ablation_loss=sum", "neuron.ablation_loss"),
    ("encoder.in_frames=0", "'encoder.in_frames': 0 is out of range"),
    ("encoder.lr=0", "'encoder.lr': 0 is out of range (allowed: > 0)"),
    ("encoder.weight_decay=-1e-4", "'encoder.weight_decay': -0.0001 is out of range"),
    ("encoder.milestones=[0]", "'encoder.milestones[0]': 0 is out of range"),
    ("train.momentum=1", "'train.momentum': 1 is out of range (allowed: >= 0 and < 1)"),
    ("train.steps=0", "'train.steps': 0 is out of range"),
    ("neuron.logit_scale=0", "'neuron.logit_scale': 0 is out of range (allowed: > 0)"),
    ("neuron.hidden=0", "'neuron.hidden': 0 is out of range"),
    ("neuron.active=[0,4,2]", "'neuron.active[0]': 0 is out of range"),
    ("eval.gamma_points=1", "'eval.gamma_points': 1 is out of range (allowed: >= 2)"),
    ("eval.pseudo_unseen=1.5", "'eval.pseudo_unseen': 1.5 is out of range (allowed: > 0 and < 1)"),
    ("eval.heldout_fraction=0", "'eval.heldout_fraction': 0 is out of range"),
    ("data.train_per_class=0", "'data.train_per_class': 0 is out of range"),
    ("data.speed=1", "'data.speed': 1 is out of range (allowed: >= 0 and < 1)"),
    ("data.second_person=1.5", "'data.second_person': 1.5 is out of range"),
    ("text.per_level=0", "'text.per_level': 0 is out of range"),
    ("unseen=[-1,3]", "'unseen[0]': -1 is out of range (allowed: >= 0)"),
    ("seed=-1", "'seed': -1 is out of range"),
    # cross-field rules
    ("text.per_level=11", "more than the 10 generated descriptions"),
    ("data.frames=50", "'data.min_length' (40) <= 'data.max_length' (60) <= 'data.frames' (50)"),
    ("encoder.width=18", "not divisible by 4"),
    ("encoder.in_frames=64", "in_frames=64 gives 16"),
    ("train.momentum=0", "needs a momentum > 0"),
    ("neuron.prefixes=[5,3,8]", "must not decrease"),
    ("experiment.ablation_sizes=[7]", "[7] not among the splits' unseen sizes [5, 12]"),
    ("unseen=[3]", "at least 2 distinct classes"),
    ("unseen=[3,3]", "at least 2 distinct classes"),
    ("experiment.unseen_lists=[[4,9],[2]]", "'experiment.unseen_lists[1]': [2] needs at least 2"),
])
def test_a_value_out_of_range_is_one_line_exit_2(one_line_error, override, message):
    assert message in one_line_error("neuron", "train", ["wandb=false", override])


@pytest.mark.parametrize("command,override,message", [
    ("train", "unseen=[3,48]", "outside 0..47"),
    ("train", f"unseen=[{','.join(map(str, range(47)))}]", "fewer than 2 seen classes"),
    ("reproduce", "experiment.unseen_lists=[[1,60,3,4,5]]", "'experiment.unseen_lists[0]': classes [60] are outside 0..47"),
])
def test_rules_that_need_the_dataset_are_one_line_exit_2(one_line_error, command, override, message):
    assert message in one_line_error("neuron", command, ["wandb=false", override])


def test_ablations_may_be_switched_off():
    cfg = load_config(NeuronExperimentConfig, CONFIGS, "smoke",
                      ["experiment.ablations=[]", "experiment.ablation_sizes=[7]"])
    assert cfg.experiment.ablations == []


def test_several_processes_with_the_per_joint_channel_bn_are_refused_in_one_line(monkeypatch):
    # data-parallel pre-training is verified only with the per-channel BN (README open item)
    import types

    import shared.device
    from papers.neuron import pipeline

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(shared.device, "make_accelerator", lambda *a: types.SimpleNamespace(num_processes=2))
    joint = load_config(NeuronExperimentConfig, CONFIGS, "small", ["encoder.spatial_bn=joint"])
    with pytest.raises(UserError, match="spatial_bn=channel"):
        pipeline.distributed_encoders(joint, [])
