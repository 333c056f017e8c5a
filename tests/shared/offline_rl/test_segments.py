import numpy as np
import pytest

from shared.offline_rl.batches import MultiTaskBatches, TaskData
from shared.offline_rl.prompts import PromptSelector, best_tail_start
from shared.offline_rl.segments import PAD_ACTION, Normaliser, SegmentSampler, prompt_keys
from tests.shared.offline_rl.dt_fixtures import OBS, episode

IDENTITY = Normaliser(np.zeros(OBS, np.float32), np.ones(OBS, np.float32))


class Start3:
    """A generator stand-in: episode 0, start at t = 3."""

    def integers(self, *a, **k):
        return 0 if a[0] == 1 else 3


def test_segments_are_left_padded_with_the_dt_padding_and_exact_returns_to_go():
    ep = episode(5)
    sampler = SegmentSampler([ep], steps=4, norm=IDENTITY, return_scale=10.0, max_ep_len=64)
    seg = sampler.sample(1, Start3())  # two real steps, two padded
    assert seg["mask"].tolist() == [[0, 0, 1, 1]]
    assert seg["states"][0, :2].tolist() == [[0, 0, 0]] * 2
    assert seg["actions"][0, :2].tolist() == [[PAD_ACTION] * 2] * 2
    assert seg["timesteps"].tolist() == [[0, 0, 3, 4]]
    # rewards 1..5: returns-to-go from t=3 are 4+5 and 5, divided by the scale 10
    np.testing.assert_allclose(seg["rtg"][0, :, 0], [0, 0, 0.9, 0.5])
    assert set(prompt_keys(seg)) == {"prompt_states", "prompt_actions", "prompt_rtg",
                                     "prompt_timesteps", "prompt_mask"}


def test_timesteps_are_clipped_to_the_last_embedding_row():
    sampler = SegmentSampler([episode(5)], steps=4, norm=IDENTITY, return_scale=1.0, max_ep_len=4)
    assert sampler.sample(1, Start3())["timesteps"].tolist() == [[0, 0, 3, 3]]


def test_shared_normaliser_fits_all_steps_of_all_tasks():
    eps = [episode(4), episode(6, offset=10.0)]
    norm = Normaliser.fit(eps)
    states = np.concatenate([e.observations for e in eps])
    np.testing.assert_allclose(norm.mean, states.mean(0), rtol=1e-6)
    np.testing.assert_allclose(norm.std, states.std(0) + 1e-6, rtol=1e-6)
    assert not norm.per_task and norm.obs_dim == OBS
    z = norm(states)
    assert z.dtype == np.float32
    np.testing.assert_allclose(z[:, :2].mean(0), 0, atol=1e-5)


def test_per_task_normaliser_uses_each_tasks_own_statistics():
    a, b = [episode(4)], [episode(6, offset=10.0)]
    norm = Normaliser.fit_per_task([a, b])
    assert norm.per_task and norm.mean.shape == (2, OBS) and norm.obs_dim == OBS
    for i, eps in enumerate((a, b)):
        one = Normaliser.fit(eps)
        np.testing.assert_array_equal(norm.for_task(i).mean, one.mean)
        np.testing.assert_array_equal(norm(eps[0].observations, i), one(eps[0].observations))
    rows = np.stack([a[0].observations[0], b[0].observations[0]])
    per_row = norm(rows, np.array([0, 1]))
    np.testing.assert_array_equal(per_row[1], norm.for_task(1)(rows[1]))
    assert not np.allclose(per_row[1], norm.for_task(0)(rows[1]))  # statistics differ
    with pytest.raises(ValueError, match="task index"):
        norm(rows)


def test_window_prompts_are_segments_of_the_demonstrations():
    demos = [episode(7), episode(9, offset=3.0)]
    selector = PromptSelector(demos, 3, IDENTITY, 10.0, 64, mode="window")
    sampler = SegmentSampler(demos, 3, IDENTITY, 10.0, 64)
    got = selector.sample(5, np.random.default_rng(1))
    expected = prompt_keys(sampler.sample(5, np.random.default_rng(1)))
    assert got.keys() == expected.keys()
    for k in got:
        np.testing.assert_array_equal(got[k], expected[k])
    with pytest.raises(ValueError, match="generator"):
        selector.sample(1)


def test_best_tail_prompt_is_the_end_of_the_highest_return_demonstration():
    low, high, mid = episode(9), episode(8), episode(10)
    high.rewards = high.rewards * 10  # the best return
    selector = PromptSelector([low, high, mid], 3, IDENTITY, 10.0, 64, mode="best-tail")
    prompt = selector.sample(2)
    start = best_tail_start(8, 3)
    assert start == 4  # Prompt-DT's slice: [T − P − 1, T − 1)
    assert prompt["prompt_timesteps"].tolist() == [[4, 5, 6]] * 2
    np.testing.assert_array_equal(prompt["prompt_states"][0], high.observations[4:7])
    np.testing.assert_array_equal(prompt["prompt_actions"][1], high.actions[4:7])
    np.testing.assert_allclose(prompt["prompt_rtg"][0, :, 0],
                               [high.rewards[t:].sum() / 10 for t in (4, 5, 6)], rtol=1e-6)
    assert prompt["prompt_mask"].tolist() == [[1, 1, 1]] * 2
    # no random numbers: the same prompt whatever generator (or none) is passed
    again = selector.sample(2, np.random.default_rng(5))
    assert all(np.array_equal(prompt[k], again[k]) for k in prompt)


def test_best_tail_prompt_of_a_short_demonstration_is_left_padded():
    selector = PromptSelector([episode(2)], 4, IDENTITY, 1.0, 64, mode="best-tail")
    prompt = selector.sample(1)
    assert best_tail_start(2, 4) == 0
    assert prompt["prompt_mask"].tolist() == [[0, 0, 1, 1]]
    assert prompt["prompt_actions"][0, 0].tolist() == [PAD_ACTION] * 2
    with pytest.raises(ValueError, match="prompt mode"):
        PromptSelector([episode(2)], 4, IDENTITY, 1.0, 64, mode="best")


def test_multi_task_batches_hold_one_tasks_segments_prompts_and_id():
    tasks = [TaskData("a", [episode(6)], [episode(5)]),
             TaskData("b", [episode(6, offset=50.0)], [episode(5, offset=50.0)])]
    norm = Normaliser.fit_per_task([t.episodes for t in tasks])
    batches = MultiTaskBatches(tasks, 4, 2, norm, 10.0, 64)
    out = batches.batch(1, 3, np.random.default_rng(0))
    assert out["task"].tolist() == [1, 1, 1]
    assert out["states"].shape == (3, 4, OBS) and out["prompt_states"].shape == (3, 2, OBS)
    valid = out["mask"].astype(bool)
    # task b's states normalised with task b's statistics: near zero mean, not ~+50
    assert abs(out["states"][valid][:, 0].mean()) < 2.0
    best = MultiTaskBatches(tasks, 4, 2, norm, 10.0, 64, prompt_mode="best-tail")
    p = best.batch(0, 2, np.random.default_rng(0))
    assert p["prompt_timesteps"].tolist() == [[2, 3]] * 2
