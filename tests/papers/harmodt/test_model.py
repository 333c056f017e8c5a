import numpy as np
import pytest
import torch

from papers.harmodt.config import ModelConfig
from papers.harmodt.data import PAD_ACTION, Normaliser, SegmentSampler, gate_rows, prompt_keys
from papers.harmodt.masks import maskable_names
from papers.harmodt.model import DecisionTransformer, action_loss, build_model
from papers.harmodt.policy import DTPolicy
from shared.offline_rl import Episode

OBS, ACT = 3, 2
CFG = ModelConfig(hidden=16, layers=2, heads=2, context=4, prompt_steps=2, dropout=0.0, mlp_hidden=16)


def _episode(length: int, offset: float = 0.0) -> Episode:
    t = np.arange(length, dtype=np.float32)
    return Episode(observations=np.stack([t + offset, -t, t * 0 + 1], 1).astype(np.float32),
                   actions=np.stack([t / 10, -t / 10], 1).astype(np.float32),
                   rewards=(t + 1).astype(np.float32), terminals=np.zeros(length, bool),
                   timeouts=np.eye(length, dtype=bool)[-1], success=np.zeros(length, bool), task="toy")


def _batch(model_cfg=CFG, b=3, seed=0, prompt=True):
    g = torch.Generator().manual_seed(seed)
    k, p = model_cfg.context, model_cfg.prompt_steps
    out = {"states": torch.randn(b, k, OBS, generator=g), "actions": torch.randn(b, k, ACT, generator=g),
           "rtg": torch.randn(b, k, 1, generator=g), "timesteps": torch.randint(0, 50, (b, k), generator=g),
           "mask": torch.ones(b, k), "task": torch.zeros(b, dtype=torch.long)}
    if prompt:
        out.update({"prompt_states": torch.randn(b, p, OBS, generator=g),
                    "prompt_actions": torch.randn(b, p, ACT, generator=g),
                    "prompt_rtg": torch.randn(b, p, 1, generator=g),
                    "prompt_timesteps": torch.randint(0, 50, (b, p), generator=g),
                    "prompt_mask": torch.ones(b, p)})
    return out


def _dt(conditioning="prompt"):
    torch.manual_seed(0)
    return DecisionTransformer(CFG, OBS, ACT, max_ep_len=64, conditioning=conditioning, n_tasks=3).eval()


def test_gpt2_position_embedding_is_zero_and_frozen_so_the_timestep_embedding_is_the_only_position_code():
    model = _dt()
    wpe = model.transformer.wpe.weight
    assert not wpe.requires_grad and torch.count_nonzero(wpe) == 0
    batch = _batch()
    moved = dict(batch, timesteps=batch["timesteps"] + 1)
    assert not torch.allclose(model(batch), model(moved))
    assert "transformer.wpe.weight" not in maskable_names(model)


def test_timestep_embedding_is_added_to_each_of_the_return_state_and_action_tokens():
    model = _dt()
    emb = model.embed_tokens
    s, a, r = torch.randn(1, 2, OBS), torch.randn(1, 2, ACT), torch.randn(1, 2, 1)
    t = torch.tensor([[3, 4]])
    tokens, mask = emb(s, a, r, t, torch.ones(1, 2))
    time = emb.embed_timestep(t)
    expected = torch.stack([emb.embed_return(r) + time, emb.embed_state(s) + time,
                            emb.embed_action(a) + time], 2).reshape(1, 6, -1)
    torch.testing.assert_close(tokens, expected)
    assert mask.tolist() == [[1] * 6]


def test_prompt_has_its_own_embeddings_and_changes_the_prediction():
    model = _dt()
    assert model.prompt_embed_tokens.embed_state.weight.data_ptr() != model.embed_tokens.embed_state.weight.data_ptr()
    batch = _batch()
    other = dict(batch, prompt_states=batch["prompt_states"] + 1)
    assert not torch.allclose(model(batch), model(other))
    assert model(batch).shape == (3, CFG.context, ACT)


def test_left_padding_does_not_change_the_prediction_at_valid_positions():
    for conditioning in ("prompt", "task", "none"):
        model = _dt(conditioning)
        batch = _batch()
        batch["mask"][:, :2] = 0
        garbage = dict(batch, states=batch["states"].clone(), actions=batch["actions"].clone())
        garbage["states"][:, :2] = 99.0
        garbage["actions"][:, :2] = -99.0
        torch.testing.assert_close(model(batch)[:, 2:], model(garbage)[:, 2:])


def test_action_prediction_at_step_t_does_not_see_action_t():
    model = _dt()
    batch = _batch()
    changed = dict(batch, actions=batch["actions"].clone())
    changed["actions"][:, -1] += 5.0
    torch.testing.assert_close(model(batch)[:, -1], model(changed)[:, -1])


def test_action_loss_is_the_mse_over_non_padded_positions_only():
    pred = torch.tensor([[[0.0, 0.0], [1.0, 1.0], [0.5, 0.0]]])
    target = torch.tensor([[[PAD_ACTION, PAD_ACTION], [0.0, 1.0], [0.5, 2.0]]])
    mask = torch.tensor([[0.0, 1.0, 1.0]])
    assert action_loss(pred, target, mask).item() == pytest.approx((1 + 0 + 0 + 4) / 4)


def test_mtdt_and_mtbc_use_the_task_id():
    for method in ("mtdt", "mtbc"):
        torch.manual_seed(0)
        model = build_model(method, CFG, OBS, ACT, 64, n_tasks=3).eval()
        batch = _batch(prompt=False)
        other = dict(batch, task=torch.full((3,), 2))
        assert not torch.allclose(model(batch), model(other))


def test_segments_are_left_padded_with_the_dt_padding_and_exact_returns_to_go():
    ep = _episode(5)
    norm = Normaliser(np.zeros(OBS, np.float32), np.ones(OBS, np.float32))
    sampler = SegmentSampler([ep], steps=4, norm=norm, return_scale=10.0, max_ep_len=64)

    class Start3:  # episode 0, start at t = 3: two real steps, two padded
        def integers(self, *a, **k):
            return 0 if a[0] == 1 else 3
    seg = sampler.sample(1, Start3())
    assert seg["mask"].tolist() == [[0, 0, 1, 1]]
    assert seg["states"][0, :2].tolist() == [[0, 0, 0]] * 2
    assert seg["actions"][0, :2].tolist() == [[PAD_ACTION] * 2] * 2
    assert seg["timesteps"].tolist() == [[0, 0, 3, 4]]
    # rewards 1..5: returns-to-go from t=3 are 4+5 and 5, divided by the scale 10
    np.testing.assert_allclose(seg["rtg"][0, :, 0], [0, 0, 0.9, 0.5])
    assert set(prompt_keys(seg)) == {"prompt_states", "prompt_actions", "prompt_rtg",
                                     "prompt_timesteps", "prompt_mask"}


def test_gate_rows_hold_the_state_with_the_previous_action_and_reward():
    ep = _episode(4)
    rows = gate_rows(ep.observations, ep.actions, ep.rewards, 0, 3)
    assert rows[0, OBS:].tolist() == [0, 0, 0]  # t = 0: nothing before
    np.testing.assert_allclose(rows[2], [2, -2, 1, 0.1, -0.1, 0.2])  # a_1, r_1/10


def test_the_policy_window_equals_a_training_segment_of_the_same_history():
    ep = _episode(6)
    norm = Normaliser(np.zeros(OBS, np.float32), np.ones(OBS, np.float32))
    model = _dt("none")
    target = float(ep.rewards.sum())
    policy = DTPolicy(model, norm, context=4, max_steps=6, target_return=target, return_scale=10.0,
                      device=torch.device("cpu"))
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
    rows, valid = policy.recent(3)
    np.testing.assert_allclose(rows[0], gate_rows(ep.observations, ep.actions, ep.rewards, 0, 3))
    assert valid.tolist() == [[True] * 3]
