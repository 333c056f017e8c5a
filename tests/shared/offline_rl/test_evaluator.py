import numpy as np
import pytest

from shared.offline_rl import Evaluator, RandomBatchPolicy, ScriptedBatchPolicy, make_env

TASKS = ["reach-v3", "button-press-topdown-v3"]
GOALS = list(range(8))
STEPS = 150


@pytest.fixture(scope="module")
def local():
    with Evaluator(TASKS, GOALS, STEPS, workers=1) as evaluator:
        yield evaluator


def test_scripted_experts_succeed_and_random_actions_do_not(local):
    expert = local.run(ScriptedBatchPolicy(TASKS))
    assert all(v["success"] >= 0.9 for v in expert["per_task"].values()), expert
    random = local.run(RandomBatchPolicy(seed=0))
    assert random["success"] <= 0.2, random
    assert expert["return"] > 2 * random["return"]
    n = len(TASKS) * len(GOALS)
    assert expert["episodes"] == random["episodes"] == n
    assert expert["env_steps"] == random["env_steps"] == n * STEPS  # no early stop


def test_results_do_not_depend_on_workers(local):
    policy = ScriptedBatchPolicy(TASKS, noise_std=2.0, seed=3)
    one = local.run(policy)
    with Evaluator(TASKS, GOALS, STEPS, workers=2) as parallel:
        two, again = parallel.run(policy), parallel.run(policy)
    for result in (two, again):
        assert result["per_task"] == one["per_task"]
        assert result["env_steps"] == one["env_steps"]
    assert 0 < one["success"] < 1  # the noise makes the comparison informative


def test_stop_on_success_ends_episodes_early():
    with Evaluator(["reach-v3"], [0, 1], STEPS, stop_on_success=True) as evaluator:
        result = evaluator.run(ScriptedBatchPolicy(["reach-v3"]))
    assert result["success"] == 1.0
    assert result["env_steps"] < 2 * STEPS


class _Recorder:
    def __init__(self):
        self.calls, self.task_index = 0, None

    def reset(self, task_index):
        self.task_index = task_index.tolist()

    def act(self, obs, last_reward, active):
        assert obs.dtype == np.float32 and obs.shape == (4, 39)
        assert last_reward.shape == (4,) and active.all()
        self.calls += 1
        return np.zeros((4, 4))


def test_policy_is_called_once_per_step_for_the_whole_batch(local):
    with Evaluator(TASKS, [0, 1], 5) as evaluator:
        recorder = _Recorder()
        evaluator.run(recorder)
    assert recorder.calls == 5 and recorder.task_index == [0, 0, 1, 1]


def test_bad_action_shape_is_refused():
    class Wrong(_Recorder):
        def act(self, obs, last_reward, active):
            return np.zeros((len(obs), 3))

    with Evaluator(["reach-v3"], [0], 5) as evaluator, pytest.raises(ValueError, match="shape"):
        evaluator.run(Wrong())


def test_reused_envs_give_the_episodes_of_new_ones(monkeypatch):
    """A closed evaluator's envs go back to the process pool and the next evaluator reuses
    them, switched to other goals: per-episode results equal those on freshly built envs."""
    from shared.offline_rl import evaluator as ev

    monkeypatch.setattr(ev, "_POOL", type(ev._POOL)())
    policy = ScriptedBatchPolicy(TASKS, noise_std=1.0, seed=5)
    with Evaluator(TASKS, [0, 1, 2], 100) as first:
        first.run(policy)
    assert sum(len(v) for v in ev._POOL.values()) == 6
    built = []
    monkeypatch.setattr(ev, "make_env", lambda *a, **k: built.append(a) or make_env(*a, **k))
    with Evaluator(TASKS, [4, 2, 7], 100) as reused:
        got = reused.run(policy)
    assert built == []  # all six came from the pool, on other goals for four of them
    monkeypatch.setattr(ev, "_POOL", type(ev._POOL)())
    with Evaluator(TASKS, [4, 2, 7], 100) as fresh:
        want = fresh.run(policy)
    assert len(built) == 6
    assert got["per_episode"] == want["per_episode"] and got["env_steps"] == want["env_steps"]
    assert 0 < want["success"] < 1


class _FakeEnv:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


def test_the_pool_keeps_at_most_pool_size_idle_envs_and_closes_the_evicted(monkeypatch):
    from shared.offline_rl import evaluator as ev

    monkeypatch.setattr(ev, "_POOL", type(ev._POOL)())
    monkeypatch.setattr(ev, "POOL_SIZE", 3)
    envs = [_FakeEnv() for _ in range(5)]
    for i, env in enumerate(envs):
        ev._release(("task", i), env)
    assert [k[1] for k in ev._POOL] == [2, 3, 4]
    assert [env.closed for env in envs] == [True, True, False, False, False]


def test_an_emptied_pool_entry_is_removed_so_eviction_never_pops_an_empty_list(monkeypatch):
    """The bug: `_acquire` left an empty list under its key, and the next `_release` over
    POOL_SIZE popped from it (IndexError)."""
    from shared.offline_rl import evaluator as ev

    monkeypatch.setattr(ev, "_POOL", type(ev._POOL)())
    monkeypatch.setattr(ev, "POOL_SIZE", 2)
    monkeypatch.setattr(ev, "set_goal", lambda *a, **k: None)
    first = ("reach-v3", 100, 0, "MT1", "train")
    ev._release(first, _FakeEnv())
    ev._acquire(*first[:1], 0, *first[1:])  # takes the only idle env of that task
    assert first not in ev._POOL
    for i in range(3):
        ev._release(("task", i), _FakeEnv())
    assert [k[1] for k in ev._POOL] == [1, 2]
