import numpy as np
import torch

from papers.harmodt.config import ModelConfig
from papers.harmodt.data import gate_rows, gate_windows, recent_gate_rows
from papers.harmodt.masks import maskable_names
from papers.harmodt.model import build_model
from shared.offline_rl.dt import DecisionTransformer
from shared.offline_rl.policy import DTPolicy
from shared.offline_rl.segments import Normaliser, SegmentSampler
from tests.shared.offline_rl.dt_fixtures import ACT, OBS, batch, episode

CFG = ModelConfig(hidden=16, layers=2, heads=2, context=4, prompt_steps=2, dropout=0.0, mlp_hidden=16)
IDENTITY = Normaliser(np.zeros(OBS, np.float32), np.ones(OBS, np.float32))


def test_harmodt_builds_the_shared_decision_transformer_with_relu():
    model = build_model("harmodt-f", CFG, OBS, ACT, 64, n_tasks=3)
    assert isinstance(model, DecisionTransformer) and model.conditioning == "prompt"
    assert model.transformer.config.activation_function == "relu"  # the authors' GPT-2 config
    assert model.transformer.config.n_positions == 3 * CFG.context + 3 * CFG.prompt_steps
    assert build_model("g-harmodt", CFG, OBS, ACT, 64, n_tasks=3).conditioning == "none"


def test_frozen_position_embedding_is_not_maskable():
    model = build_model("harmodt-f", CFG, OBS, ACT, 64, n_tasks=3)
    assert "transformer.wpe.weight" not in maskable_names(model)


def test_mtdt_and_mtbc_use_the_task_id():
    for method in ("mtdt", "mtbc"):
        torch.manual_seed(0)
        model = build_model(method, CFG, OBS, ACT, 64, n_tasks=3).eval()
        b = batch(prompt=False)
        other = dict(b, task=torch.full((3,), 2))
        assert not torch.allclose(model(b), model(other))
        assert model.act_dim == ACT


def test_gate_rows_hold_the_state_with_the_previous_action_and_reward():
    ep = episode(4)
    rows = gate_rows(ep.observations, ep.actions, ep.rewards, 0, 3)
    assert rows[0, OBS:].tolist() == [0, 0, 0]  # t = 0: nothing before
    np.testing.assert_allclose(rows[2], [2, -2, 1, 0.1, -0.1, 0.2])  # a_1, r_1/10


def test_gate_windows_are_left_padded_rows_of_one_episode():
    sampler = SegmentSampler([episode(6)], 4, IDENTITY, 10.0, 64)
    rows, valid = gate_windows(sampler, 5, 3, np.random.default_rng(0))
    assert rows.shape == (5, 3, OBS + ACT + 1) and valid.shape == (5, 3)
    for r, v in zip(rows, valid):
        width = int(v.sum())
        assert 1 <= width <= 3 and v[3 - width:].all()
        assert (r[:3 - width] == 0).all()
        end = int(r[-1, 0]) + 1  # observation 0 is t
        np.testing.assert_allclose(r[3 - width:], gate_rows(sampler.states[0], sampler.actions[0],
                                                             sampler.rewards[0], end - width, end))


def test_the_gate_sees_the_policy_history_as_it_saw_training_episodes():
    ep = episode(6)
    model = build_model("g-harmodt", CFG, OBS, ACT, 64, n_tasks=1).eval()
    policy = DTPolicy(model, IDENTITY, context=4, max_steps=6, target_return=1.0,
                      return_scale=10.0, device=torch.device("cpu"))
    policy.reset(np.array([0]))
    for t in range(3):  # after acting at t, replace the policy's action by the episode's
        policy.act(ep.observations[t:t + 1], np.array([ep.rewards[t - 1] if t else 0.0], np.float32),
                   np.array([True]))
        policy.actions[0, t] = ep.actions[t]
    policy.t = 2
    rows, valid = recent_gate_rows(policy, 3)
    np.testing.assert_allclose(rows[0], gate_rows(ep.observations, ep.actions, ep.rewards, 0, 3))
    assert valid.tolist() == [[True] * 3]
