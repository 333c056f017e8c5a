import numpy as np
import pytest
import torch

from shared.offline_rl.masks import masked_params
from shared.offline_rl.policy import DTPolicy, by_task, grouped_forward, stack_weights
from shared.offline_rl.segments import Normaliser
from tests.shared.offline_rl.dt_fixtures import ACT, OBS, SIZE, batch, dt, episode

IDENTITY = Normaliser(np.zeros(OBS, np.float32), np.ones(OBS, np.float32))
CPU = torch.device("cpu")


def test_the_policy_window_equals_a_training_segment_of_the_same_history():
    ep = episode(6)
    model = dt("none")
    target = float(ep.rewards.sum())
    policy = DTPolicy(model, IDENTITY, context=4, max_steps=6, target_return=target,
                      return_scale=10.0, device=CPU)
    policy.reset(np.array([0]))
    for t in range(3):  # after acting at t, replace the policy's action by the episode's
        policy.act(ep.observations[t:t + 1], np.array([ep.rewards[t - 1] if t else 0.0], np.float32),
                   np.array([True]))
        policy.actions[0, t] = ep.actions[t]
    policy.t = 2  # rebuild the window of step 2 (the last state seen)
    window = policy.window(2)
    assert window["mask"].tolist() == [[0, 1, 1, 1]]
    np.testing.assert_allclose(window["states"][0, 1:].numpy(), ep.observations[:3])
    np.testing.assert_allclose(window["rtg"][0, 1:, 0].numpy(), [2.1, 2.0, 1.8], rtol=1e-6)
    np.testing.assert_allclose(window["actions"][0, 1:].numpy(), ep.actions[:3])
    assert window["timesteps"].tolist() == [[0, 0, 1, 2]]


def _prompts(n, seed=0):
    b = batch(n, seed=seed)
    return {k: v for k, v in b.items() if k.startswith("prompt_")}


def _run(policy, steps=3, b=4, task_index=(0, 0, 1, 1), seed=0):
    rng = np.random.default_rng(seed)
    policy.reset(np.array(task_index))
    out = []
    for _ in range(steps):
        out.append(policy.act(rng.standard_normal((b, OBS)).astype(np.float32),
                              rng.standard_normal(b).astype(np.float32), np.ones(b, bool)))
    return np.stack(out)


def _policy(model, **kw):
    return DTPolicy(model, IDENTITY, context=SIZE["context"], max_steps=5, target_return=1.0,
                    return_scale=1.0, device=CPU, **kw)


def test_prompts_are_indexable_per_episode():
    model = dt()
    prompts = _prompts(4)
    per_task = _run(_policy(model, prompts={k: v[:2] for k, v in prompts.items()}))
    # one prompt per episode: episodes 0 and 2 get the task prompts 0 and 1, 1 and 3 others
    per_episode = _run(_policy(model, prompts=prompts, prompt_index=np.array([0, 2, 1, 3])))
    same = {k: torch.cat([v[:1], v[2:3], v[1:2], v[3:]]) for k, v in prompts.items()}
    np.testing.assert_array_equal(per_episode[:, [0, 2]], per_task[:, [0, 2]])
    assert not np.allclose(per_episode[:, 1], per_task[:, 1])
    swapped = _policy(model, prompts=same)
    swapped.set_prompts(prompts, np.array([0, 2, 1, 3]))
    np.testing.assert_array_equal(_run(swapped), per_episode)
    with pytest.raises(ValueError, match="prompt_index"):
        _policy(model, prompts=prompts, prompt_index=np.arange(3)).reset(np.arange(4))


def _weight_sets(model, n, seed=0):
    gen = torch.Generator().manual_seed(seed)
    names = [n_ for n_, p in model.named_parameters() if n_.startswith("transformer.h")]
    params = dict(model.named_parameters())
    masks = [{n_: torch.rand(params[n_].shape, generator=gen) < 0.7 for n_ in names} for _ in range(n)]
    return {i: masked_params(model, m) for i, m in enumerate(masks)}


def test_weights_are_swappable_per_episode():
    model = dt()
    weights = _weight_sets(model, 2)
    prompts = _prompts(2)
    by_task_actions = _run(_policy(model, prompts=prompts, weights=weights, choose=by_task))
    only = [_run(_policy(model, prompts=prompts, weights=weights, choose=lambda p, k=k: [k] * 4))
            for k in (0, 1)]
    np.testing.assert_array_equal(by_task_actions[:, :2], only[0][:, :2])
    np.testing.assert_array_equal(by_task_actions[:, 2:], only[1][:, 2:])
    assert not np.allclose(only[0], only[1])


@pytest.mark.parametrize("padded_prompt", [False, True])
def test_batched_weights_give_the_per_key_loop_actions(padded_prompt):
    model = dt()
    weights = _weight_sets(model, 3)
    prompts = _prompts(3)
    if padded_prompt:  # task 1's prompt is padded: its group needs a padding mask, the others not
        prompts["prompt_mask"][1, 0] = 0
    task_index = (0, 0, 1, 2, 2)

    def gate(policy):  # unequal groups that change between steps, like a gate's choice
        return [(i + policy.t) % 3 if i != 4 else 0 for i in range(5)]

    for choose in (by_task, gate):
        loop = _run(_policy(model, prompts=prompts, weights=weights, choose=choose), steps=6, b=5,
                    task_index=task_index)
        batched = _run(_policy(model, prompts=prompts, weights=weights, choose=choose, batched=True),
                       steps=6, b=5, task_index=task_index)
        np.testing.assert_allclose(batched, loop, rtol=1e-5, atol=1e-6)


def test_grouped_forward_is_one_vmapped_call_per_group_size_and_padding_kind():
    model = dt()
    weights = _weight_sets(model, 4)
    stacked = stack_weights([weights[i] for i in range(4)])
    b = batch(7)
    b["mask"][:, :1] = 0  # every group needs a padding mask ...
    b["mask"][5:, :1] = 1
    b["prompt_mask"][5:] = 1  # ... but the last group
    calls = []
    original = model.forward

    def counting(batch_, attention="padding"):
        calls.append(batch_["states"].shape)
        return original(batch_, attention)

    model.forward = counting
    cases = [([[0, 1], [2, 3], [4, 6]], 1),  # three groups of 2, all padded: one call
             ([[0, 1], [2], [3, 4]], 2),  # sizes 2 and 1: two calls
             ([[0, 1], [2, 3], [5, 6]], 2)]  # the last group unpadded: two calls
    try:
        for rows, n_calls in cases:
            calls.clear()
            groups = [{k: v[r] for k, v in b.items()} for r in rows]
            out = grouped_forward(model, {n: v[:len(rows)] for n, v in stacked.items()}, groups)
            assert len(calls) == n_calls  # each call traced once under vmap
            for g, w, o in zip(groups, range(len(rows)), out):
                expected = torch.func.functional_call(model, weights[w], (g,), strict=False)
                torch.testing.assert_close(o, expected, rtol=1e-5, atol=1e-6)
            assert [o.shape[0] for o in out] == [len(r) for r in rows]
    finally:
        model.forward = original


def test_stack_weights_needs_the_same_names():
    with pytest.raises(ValueError, match="same parameters"):
        stack_weights([{"a": torch.zeros(1)}, {"b": torch.zeros(1)}])


def test_per_task_normaliser_normalises_each_episode_with_its_task():
    model = dt("none")
    norm = Normaliser(np.stack([np.zeros(OBS), np.full(OBS, 5.0)]).astype(np.float32),
                      np.ones((2, OBS), np.float32))
    policy = DTPolicy(model, norm, context=4, max_steps=3, target_return=1.0, return_scale=1.0,
                      device=CPU)
    policy.reset(np.array([0, 1]))
    obs = np.ones((2, OBS), np.float32)
    policy.act(obs, np.zeros(2, np.float32), np.ones(2, bool))
    np.testing.assert_array_equal(policy.states[:, 0], [[1, 1, 1], [-4, -4, -4]])
    assert policy.actions.shape[2] == ACT
