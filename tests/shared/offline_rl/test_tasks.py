import numpy as np
import pytest
from metaworld import env_dict
from metaworld.policies import ENV_POLICY_MAP

from shared import UserError
from shared.offline_rl import TASK_SETS, make_env, scripted_policy, task_set


@pytest.mark.parametrize("name,size", [("MT5", 5), ("MT10", 10), ("MT30", 30), ("MT50", 50),
                                       ("CW10", 10)])
def test_task_set_sizes_and_names_exist(name, size):
    tasks = TASK_SETS[name]
    assert len(tasks) == size == len(set(tasks))
    assert all(t in env_dict.ALL_V3_ENVIRONMENTS and t in ENV_POLICY_MAP for t in tasks)


def test_task_sets_follow_their_sources():
    assert TASK_SETS["MT10"][:3] == ["reach-v3", "push-v3", "pick-place-v3"]
    assert TASK_SETS["MT5"] == TASK_SETS["MT30"][:5]
    assert TASK_SETS["MT30"][-4:] == ["pick-out-of-hole-v3", "reach-v3", "push-back-v3",
                                      "push-v3"]
    assert TASK_SETS["CW10"][0] == "hammer-v3" and TASK_SETS["CW10"][-1] == "peg-unplug-side-v3"
    assert set(TASK_SETS["MT50"]) == set(ENV_POLICY_MAP)


def test_task_set_accepts_names_and_lists():
    assert task_set("mt10") == TASK_SETS["MT10"]
    assert task_set("reach, push-v3,reach-v3") == ["reach-v3", "push-v3"]


@pytest.mark.parametrize("bad,hint", [("reech-v3", "reach-v3"), ("MT11", "MT10"),
                                      ("reach-v3,pusj", "push")])
def test_task_set_refuses_unknown_names_in_one_line(bad, hint):
    with pytest.raises(UserError) as info:
        task_set(bad)
    assert "\n" not in str(info.value) and hint in str(info.value)


@pytest.mark.filterwarnings("ignore:Constant")
def test_make_env_goals_differ_and_episodes_repeat():
    first, other = make_env("reach-v3", 0, 10), make_env("reach-v3", 1, 10)
    obs0, obs1 = first.reset()[0], other.reset()[0]
    assert obs0.shape == (39,) and not np.array_equal(obs0[-3:], obs1[-3:])
    policy = scripted_policy("reach-v3")

    def run():
        obs, _ = first.reset(seed=3)
        trace = []
        for _ in range(10):
            obs, reward, terminated, truncated, _ = first.step(
                np.clip(policy.get_action(obs), -1, 1))
            trace.append(reward)
        return trace, truncated

    (a, truncated), (b, _) = run(), run()
    assert a == b and truncated


@pytest.mark.parametrize("goal,steps", [(50, 10), (-1, 10), (0, 0), (0, 501)])
def test_make_env_refuses_bad_arguments(goal, steps):
    with pytest.raises(UserError):
        make_env("reach-v3", goal, steps)
