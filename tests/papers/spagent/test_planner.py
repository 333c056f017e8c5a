"""The principles on hand-made intents, P3's choice, and selection's argmax."""

import pytest

from papers.spagent import capabilities, intents, planner
from papers.spagent.intent_model import Intent


def I(e_t, e_v, agree=True):  # noqa: E743
    return Intent(e_t, e_v, agree, None, None)


def test_p0_uses_the_visual_input_and_respects_edits_of_videos():
    assert not planner.p0_respects_request(["t2v"], I("animate", "image"))
    assert planner.p0_respects_request(["i2v"], I("animate", "image"))
    assert not planner.p0_respects_request(["extract", "i2v"], I("edit", "video", False))
    assert not planner.p0_respects_request(["v2v"], I("new_content", "video"))


def test_p1_edits_before_animating_exactly_when_inconsistent():
    mis, ok = I("animate", "image", agree=False), I("animate", "image", agree=True)
    assert planner.p1_consistent_before_animating(["edit", "i2v"], mis)
    assert not planner.p1_consistent_before_animating(["i2v"], mis)
    assert not planner.p1_consistent_before_animating(["i2v", "v2v"], mis)  # edits after animating
    assert planner.p1_consistent_before_animating(["i2v"], ok)
    assert not planner.p1_consistent_before_animating(["edit", "i2v"], ok)  # nothing to correct


@pytest.mark.parametrize("e_t,e_v,agree,routes", [
    ("describe", "none", True, [["t2v"], ["t2i", "i2v"]]),
    ("animate", "image", True, [["i2v"]]),
    ("describe", "image", False, [["edit", "i2v"]]),
    ("edit", "image", False, [["edit", "i2v"]]),
    ("edit", "video", False, [["v2v"]]),
    ("new_content", "video", True, [["extract", "i2v"]]),
    ("new_content", "video", False, [["extract", "edit", "i2v"]]),
])
def test_candidates_are_the_gold_routes(e_t, e_v, agree, routes):
    assert planner.candidates(I(e_t, e_v, agree)) == routes
    assert routes == intents.gold_routes(e_t, e_v, agree)


def test_p2_extra_steps_zero_keeps_only_the_shortest():
    assert planner.candidates(I("describe", "none"), extra_steps=0) == [["t2v"]]


def test_p3_weakest_link_with_the_shorter_route_winning_ties():
    routes = [["t2v"], ["t2i", "i2v"]]
    strong_pair = {"t2v": 0.5, "t2i": 0.9, "i2v": 0.8}.get
    assert planner.choose(routes, strong_pair, margin=0.02) == (1, [0.5, 0.8])
    close = {"t2v": 0.79, "t2i": 0.9, "i2v": 0.8}.get
    assert planner.choose(routes, close, margin=0.02)[0] == 0  # 0.8 − 0.79 ≤ margin
    weak_link = {"t2v": 0.7, "t2i": 0.3, "i2v": 0.99}.get
    assert planner.choose(routes, weak_link, margin=0.0)[0] == 0


def test_selection_picks_the_argmax():
    table = {"a": {"kind": "i2v", "scores": {"dynamic": 1.0, "smoothness": 0.0}},
             "b": {"kind": "i2v", "scores": {"dynamic": 0.2, "smoothness": 1.0}},
             "c": {"kind": "t2v", "scores": {"dynamic": 5.0, "smoothness": 5.0}}}
    assert capabilities.select("i2v", {"dynamic": 3, "smoothness": 1}, table)[0] == "a"
    name, scores = capabilities.select("i2v", {"dynamic": 1, "smoothness": 3}, table)
    assert name == "b" and set(scores) == {"a", "b"}
    assert scores["b"] == pytest.approx(0.8)
    with pytest.raises(ValueError):
        capabilities.select("edit", {}, table)
