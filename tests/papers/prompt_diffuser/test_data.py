"""The ML1 split: held-out goals are never in the training data; config rules are one line."""

import pytest

from papers.prompt_diffuser import data as data_mod
from papers.prompt_diffuser.data import held_out_overlap, load_goal_data
from papers.prompt_diffuser.pretrain import _task_data
from tests.papers.prompt_diffuser.helpers import fake_episodes, smoke_config


def test_small_and_paper_held_out_goals_are_not_training_goals():
    for name in ("smoke", "small"):
        cfg = smoke_config() if name == "smoke" else smoke_config("data.train_goals=50", "data.test_goals=50")
        assert held_out_overlap(cfg) == 0


def test_held_out_goals_are_never_in_the_training_data(monkeypatch, tmp_path):
    calls = []

    def fake_load(tasks, quality, episodes, *, split, goals, seed, **kw):
        calls.append((quality, split, goals, seed))
        per = episodes // len(goals)
        out = [e for g in goals for e in fake_episodes(per, 8, g, seed * 100 + g)]
        for e in out:
            e.task = f"{split}:{e.task}"  # tag the split the episode came from
        return {tasks[0]: out}

    monkeypatch.setattr(data_mod, "load_datasets", fake_load)
    data_mod._LOADED.clear()
    cfg = smoke_config(f"data_dir={tmp_path}", "data.train_goals=3", "data.test_goals=2")
    data = load_goal_data(cfg, upper=True)
    data_mod._LOADED.clear()
    assert all(e.task.startswith("train:") for d in (data.train, data.train_prompts)
               for eps in d.values() for e in eps)
    assert all(e.task.startswith("test:") for d in (data.fewshot, data.upper, *data.demos.values())
               for eps in d.values() for e in eps)
    assert data.train_goals == [0, 1, 2] and data.test_goals == [0, 1]
    # the frozen policy trains on train-split episodes only; only the upper bound sees test ones
    frozen = _task_data(data, upper=False)
    assert all(e.task.startswith("train:") for t in frozen for e in t.episodes + t.prompts)
    upper = _task_data(data, upper=True)
    assert sum(e.task.startswith("test:") for t in upper for e in t.episodes) > 0
    assert {split for _, split, _, _ in calls} == {"train", "test"}


@pytest.mark.parametrize("args, key", [
    (["tune.methods=[pd,nope]"], "tune.methods"),
    (["tune.init_qualities=[random]"], "tune.init_qualities"),
    (["eval.train_eval_goals=9"], "eval.train_eval_goals"),
    (["data.env=ant-dir"], "data.path"),
    (["diffuser.steps=0"], "diffuser.steps"),
    (["diffuser.projection=sometimes"], "diffuser.projection"),
])
def test_config_mistakes_are_one_line(one_line_error, args, key):
    assert key in one_line_error("prompt_diffuser", "train", args)


def test_locomotion_suites_are_refused_by_the_pipeline_in_one_line(one_line_error, tmp_path):
    line = one_line_error("prompt_diffuser", "train", ["data.env=ant-dir", f"data.path={tmp_path}"])
    assert "Meta-World ML1 only" in line
