"""Every shipped config loads and is consistent; paper.yaml reads real NTU-60 arrays."""

from pathlib import Path

import pytest

import papers.neuron
from papers.neuron.config import NeuronExperimentConfig
from shared import UserError
from shared.config import load_config

CONFIGS = Path(papers.neuron.__file__).parent / "configs"


@pytest.mark.parametrize("name", ["smoke", "small", "paper"])
def test_configs_load(name):
    cfg = load_config(NeuronExperimentConfig, CONFIGS, name, [])
    assert cfg.neuron.prefixes[-1] == cfg.encoder.out_frames


def test_paper_config_is_ntu60_with_the_released_split_and_sizes():
    cfg = load_config(NeuronExperimentConfig, CONFIGS, "paper", [])
    assert cfg.data.source == "ntu60" and cfg.encoder.width == 256 and cfg.neuron.prototypes == 80
    assert [10, 11, 19, 26, 56] in cfg.experiment.unseen_lists
    assert sorted(len(u) for u in cfg.experiment.unseen_lists) == [5, 12]


def test_bad_config_values_are_user_errors():
    with pytest.raises(UserError, match="prefixes"):
        load_config(NeuronExperimentConfig, CONFIGS, "small", ["neuron.prefixes=[5,10,12]"])
    with pytest.raises(UserError, match="experiment.methods"):
        load_config(NeuronExperimentConfig, CONFIGS, "small", ["experiment.methods=[synse]"])
