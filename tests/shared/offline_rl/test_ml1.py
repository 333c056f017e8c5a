"""Meta-World ML1 mode: partially observable envs, Meta-World's train/test goal split, data
generation and evaluation on held-out goals with a prompt per episode."""

import numpy as np
import pytest
import torch

from shared import UserError
from shared.offline_rl import (
    Evaluator,
    ScriptedBatchPolicy,
    dataset_key,
    goal_position,
    goal_vectors,
    load_datasets,
    make_env,
    scripted_policy,
)
from shared.offline_rl.datasets import Request
from shared.offline_rl.dt import DecisionTransformer
from shared.offline_rl.episodes import QUALITIES
from shared.offline_rl.policy import DTPolicy
from shared.offline_rl.prompts import PromptSelector, group_by_goal, stack_prompts
from shared.offline_rl.segments import Normaliser
from shared.offline_rl.tasks import GOAL_SLICE

pytestmark = pytest.mark.filterwarnings("ignore:Constant")
TASKS = ["reach-v3", "push-v3"]
GOALS = [0, 1, 2]


def _contains(obs: np.ndarray, goal: np.ndarray) -> bool:
    """Whether any 3 consecutive entries of `obs` equal `goal` (to float32 precision)."""
    return any(np.allclose(obs[i:i + 3], goal, atol=1e-6) for i in range(len(obs) - 2))


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("split", ["train", "test"])
def test_ml1_observations_do_not_contain_the_goal(task, split):
    hidden = make_env(task, 0, 20, benchmark="ML1", split=split)
    policy = scripted_policy(task)
    obs, _ = hidden.reset()
    goal = goal_position(hidden)
    assert np.abs(goal).sum() > 0.1
    for _ in range(10):
        assert not obs[GOAL_SLICE].any() and not _contains(obs, goal)
        seen = obs.copy()
        seen[GOAL_SLICE] = goal
        obs, *_ = hidden.step(np.clip(policy.get_action(seen), -1, 1))
    assert not hidden.unwrapped.observation_space.high[GOAL_SLICE].any()
    # the check can fail: the MT1 env of the same goal shows it
    if split == "train":
        shown, _ = make_env(task, 0, 20).reset()
        np.testing.assert_allclose(shown[GOAL_SLICE], goal)
        assert _contains(shown, goal)


@pytest.mark.parametrize("task", TASKS)
def test_train_and_test_goals_are_meta_worlds_disjoint_ml1_split(task):
    train = goal_vectors(task, 0, "ML1", "train")
    test = goal_vectors(task, 0, "ML1", "test")
    assert train.shape == test.shape == (50, train.shape[1])
    assert len(np.unique(train, axis=0)) == len(np.unique(test, axis=0)) == 50
    shared_rows = (train[:, None, :] == test[None, :, :]).all(-1)
    assert not shared_rows.any()
    # the goal positions the envs score against are disjoint too (a few goals of each split)
    train_goals = {tuple(np.round(goal_position(_reset(task, g, "train")), 6)) for g in range(5)}
    test_goals = {tuple(np.round(goal_position(_reset(task, g, "test")), 6)) for g in range(5)}
    assert len(train_goals) == len(test_goals) == 5 and not train_goals & test_goals
    # Meta-World draws the test goals with seed + 1 and ML1's train goals are MT1's
    np.testing.assert_array_equal(test, goal_vectors(task, 1, "MT1", "train"))
    np.testing.assert_array_equal(train, goal_vectors(task, 0, "MT1", "train"))


def _reset(task, goal, split):
    env = make_env(task, goal, 5, benchmark="ML1", split=split)
    env.reset()
    return env


def test_mt1_has_no_test_goals_and_unknown_benchmarks_are_refused():
    with pytest.raises(UserError, match="no test goals"):
        make_env("reach-v3", 0, 5, split="test")
    with pytest.raises(UserError, match="benchmark"):
        make_env("reach-v3", 0, 5, benchmark="ML10")
    with pytest.raises(UserError, match="split"):
        Evaluator(["reach-v3"], [0], 5, benchmark="ML1", split="val")


@pytest.mark.parametrize("split", ["train", "test"])
def test_a_scripted_policy_given_the_goal_succeeds_through_the_evaluator(split):
    with Evaluator(TASKS, GOALS, 150, benchmark="ML1", split=split,
                   stop_on_success=True) as evaluator:
        given = evaluator.run(ScriptedBatchPolicy(TASKS))
        blind = evaluator.run(ScriptedBatchPolicy(TASKS, reveal_goal=False))
    assert given["success"] == 1.0, given["per_task"]
    assert blind["success"] == 0.0, blind["per_task"]  # the goal is really hidden
    assert [(e["task"], e["goal"]) for e in given["per_episode"]] == [
        (t, g) for t in TASKS for g in GOALS]


def test_ml1_data_hides_the_goal_and_equals_mt1_data_otherwise(tmp_path):
    args = {"seed": 0, "max_steps": 20, "data_dir": tmp_path, "workers": 1, "goals": [0, 3]}
    ml1 = load_datasets(["reach-v3"], "expert", 4, benchmark="ML1", **args)["reach-v3"]
    mt1 = load_datasets(["reach-v3"], "expert", 4, **args)["reach-v3"]
    assert [e.goal for e in ml1] == [0, 3, 0, 3]
    for hidden, shown in zip(ml1, mt1):
        assert not hidden.observations[:, GOAL_SLICE].any()
        assert shown.observations[:, GOAL_SLICE].any()
        # the expert was given the goal: same actions, same observations but the goal
        np.testing.assert_array_equal(hidden.actions, shown.actions)
        np.testing.assert_array_equal(hidden.observations[:, :36], shown.observations[:, :36])
    test = load_datasets(["reach-v3"], "expert", 2, benchmark="ML1", split="test",
                         **args)["reach-v3"]
    assert not np.array_equal(test[0].observations[0, :36], ml1[0].observations[0, :36])
    assert len({p.name for p in (tmp_path / "minari").iterdir() if not p.name.startswith(".")}) == 3


def test_the_cache_key_tells_benchmark_split_and_goals_apart():
    recipe = QUALITIES["expert"]
    keys = {dataset_key("reach-v3", "expert", 4, 0, 20, recipe),
            dataset_key("reach-v3", "expert", 4, 0, 20, recipe, benchmark="ML1"),
            dataset_key("reach-v3", "expert", 4, 0, 20, recipe, benchmark="ML1", split="test"),
            dataset_key("reach-v3", "expert", 4, 0, 20, recipe, benchmark="ML1", goals=(0, 3)),
            dataset_key("reach-v3", "expert", 4, 0, 20, recipe, goals=(0, 3))}
    assert len(keys) == 5
    # MT1 keys are those of the generator before ML1 existed (caches stay valid)
    parts = Request("reach-v3", "expert", 4, 0, 20).key_parts()
    assert set(parts) == {"task", "generation", "episodes", "seed", "max_steps", "recipe",
                          "benchmark_seed", "generator_version", "versions"}
    with pytest.raises(UserError, match="goals"):
        load_datasets(["reach-v3"], "expert", 2, seed=0, max_steps=5, data_dir=".", goals=[0, 0])


class _Recording(torch.nn.Module):
    """A DT that records the prompt each row was given."""

    def __init__(self, model):
        super().__init__()
        self.model, self.act_dim, self.seen = model, model.act_dim, []

    def forward(self, batch):
        self.seen.append(batch["prompt_states"].clone())
        return self.model(batch)


def test_held_out_goals_are_evaluated_with_a_prompt_per_episode(tmp_path):
    task, goals, steps = "reach-v3", [4, 7, 9], 3
    demos = load_datasets([task], "expert", 6, seed=0, max_steps=12, data_dir=tmp_path,
                          workers=1, benchmark="ML1", split="test", goals=goals)[task]
    by_goal = group_by_goal(demos)
    assert sorted(by_goal) == goals and all(len(v) == 2 for v in by_goal.values())
    norm = Normaliser.fit(demos)
    prompts = stack_prompts([PromptSelector(by_goal[g], 2, norm, 100.0, 12, mode="best-tail").sample(1)
                             for g in goals])
    torch.manual_seed(0)
    model = _Recording(DecisionTransformer(39, 4, hidden=16, layers=1, context=3, prompt_steps=2,
                                           max_ep_len=12).eval())
    policy = DTPolicy(model, norm, context=3, max_steps=steps, target_return=10.0,
                      return_scale=100.0, device=torch.device("cpu"), prompts=prompts,
                      prompt_index=np.arange(len(goals)))
    with Evaluator([task], goals, steps, benchmark="ML1", split="test") as evaluator:
        result = evaluator.run(policy)
        assert [s[1] for s in evaluator.slots] == goals
    assert result["episodes"] == 3 and len(model.seen) == steps
    for seen in model.seen:
        for i, g in enumerate(goals):  # episode i (goal g) got goal g's own demonstration
            best = max(by_goal[g], key=lambda e: e.total_return)
            np.testing.assert_allclose(seen[i].numpy(), norm(best.observations[9:11]), rtol=1e-6)
    assert not torch.equal(model.seen[0][0], model.seen[0][1])
