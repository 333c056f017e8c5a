"""SDPO's RL prompt split over the shapes grammar of shared/t2i/scenes."""

import pytest

from papers.sdpo.data import HELDOUT, rl_prompts
from shared.t2i.scenes import COLOURS, SHAPES, make_dataset, parse_prompt


def test_rl_splits_are_disjoint_and_cover_every_colour_and_shape():
    train, heldout = rl_prompts("train"), rl_prompts("heldout")
    assert len(train) == 24 and len(heldout) == 8 and not set(train) & set(heldout)
    assert heldout[:2] == ["a red circle", "a green square"]
    parsed = [parse_prompt(p) for p in train]
    assert {p["colour"] for p in parsed} == set(COLOURS)
    assert {p["shape"] for p in parsed} == set(SHAPES)
    assert {(p["colour"], p["shape"]) for p in map(parse_prompt, heldout)} == HELDOUT
    with pytest.raises(ValueError):
        rl_prompts("test")


def test_the_base_models_data_covers_the_heldout_combinations():
    _, captions = make_dataset(2000, 16, seed=3)
    combos = {(p["colour"], p["shape"]) for p in map(parse_prompt, captions)}
    assert HELDOUT <= combos  # the base model sees the RL-held-out combinations too
    assert "a red circle" in captions  # and the short RL form
