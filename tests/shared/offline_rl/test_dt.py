import pytest
import torch

from shared.offline_rl.dt import ACTIVATIONS, DecisionTransformer, action_loss
from shared.offline_rl.segments import PAD_ACTION
from tests.shared.offline_rl.dt_fixtures import ACT, OBS, SIZE, batch, dt


def test_gpt2_position_embedding_is_zero_and_frozen_so_the_timestep_embedding_is_the_only_position_code():
    model = dt()
    wpe = model.transformer.wpe.weight
    assert not wpe.requires_grad and torch.count_nonzero(wpe) == 0
    b = batch()
    moved = dict(b, timesteps=b["timesteps"] + 1)
    assert not torch.allclose(model(b), model(moved))


def test_timestep_embedding_is_added_to_each_of_the_return_state_and_action_tokens():
    model = dt()
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
    model = dt()
    assert model.prompt_embed_tokens.embed_state.weight.data_ptr() != model.embed_tokens.embed_state.weight.data_ptr()
    b = batch()
    other = dict(b, prompt_states=b["prompt_states"] + 1)
    assert not torch.allclose(model(b), model(other))
    assert model(b).shape == (3, SIZE["context"], ACT)


def test_left_padding_does_not_change_the_prediction_at_valid_positions():
    for conditioning in ("prompt", "task", "none"):
        model = dt(conditioning)
        b = batch()
        b["mask"][:, :2] = 0
        garbage = dict(b, states=b["states"].clone(), actions=b["actions"].clone())
        garbage["states"][:, :2] = 99.0
        garbage["actions"][:, :2] = -99.0
        torch.testing.assert_close(model(b)[:, 2:], model(garbage)[:, 2:])


def test_action_prediction_at_step_t_does_not_see_action_t():
    model = dt()
    b = batch()
    changed = dict(b, actions=b["actions"].clone())
    changed["actions"][:, -1] += 5.0
    torch.testing.assert_close(model(b)[:, -1], model(changed)[:, -1])


def test_action_loss_is_the_mse_over_non_padded_positions_only():
    pred = torch.tensor([[[0.0, 0.0], [1.0, 1.0], [0.5, 0.0]]])
    target = torch.tensor([[[PAD_ACTION, PAD_ACTION], [0.0, 1.0], [0.5, 2.0]]])
    mask = torch.tensor([[0.0, 1.0, 1.0]])
    assert action_loss(pred, target, mask).item() == pytest.approx((1 + 0 + 0 + 4) / 4)


def test_task_token_conditioning_uses_the_task_id():
    model = dt("task")
    b = batch(prompt=False)
    assert not torch.allclose(model(b), model(dict(b, task=torch.full((3,), 2))))


def test_encode_returns_the_state_token_features_the_head_reads():
    model = dt()
    b = batch()
    features = model.encode(b)
    assert features.shape == (3, SIZE["context"], SIZE["hidden"])
    torch.testing.assert_close(model.predict_action(features), model(b), rtol=0, atol=0)
    # the features are the last layer's at the state tokens: positions P·3 + 3k + 1
    tokens, mask = model.tokens(b)
    hidden = model.transformer(inputs_embeds=model.embed_ln(tokens),
                               attention_mask=mask.long()).last_hidden_state
    p = 3 * SIZE["prompt_steps"]
    torch.testing.assert_close(features, hidden[:, p + 1::3], rtol=0, atol=0)
    assert not torch.allclose(features, hidden[:, p::3])  # not the return tokens


def test_token_mask_matches_the_embedded_tokens_mask():
    for conditioning in ("prompt", "task", "none"):
        model = dt(conditioning)
        b = batch()
        b["mask"][:, :1] = 0
        b["prompt_mask"][0, :1] = 0
        assert torch.equal(model.token_mask(b), model.tokens(b)[1])


def test_per_task_action_heads_differ_by_task_and_match_a_linear_head():
    model = dt("none", task_heads=True)
    b = batch(prompt=False)
    b["task"] = torch.tensor([0, 1, 2])
    out = model(b)
    same = model(dict(b, task=torch.tensor([0, 0, 0])))
    torch.testing.assert_close(out[0], same[0])
    assert not torch.allclose(out[1], same[1]) and not torch.allclose(out[2], same[2])
    features = model.encode(b)
    heads = model.predict_action
    for row, task in enumerate([0, 1, 2]):
        linear = torch.tanh(features[row] @ heads.weight[task].T + heads.bias[task])
        torch.testing.assert_close(out[row], linear)
    assert {n for n, _ in model.named_parameters() if "predict" in n} == {
        "predict_action.weight", "predict_action.bias"}


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_trunk_activation_is_configurable(activation):
    model = dt(activation=activation)
    assert model.transformer.config.activation_function == activation
    b = batch()
    x = torch.linspace(-3, 3, 7)
    act = model.transformer.h[0].mlp.act
    if activation == "relu":
        assert torch.equal(act(x), torch.relu(x))
    else:
        torch.testing.assert_close(act(x), torch.nn.functional.gelu(x, approximate="tanh"))
    assert model(b).shape == (3, SIZE["context"], ACT)


def test_default_activation_is_gelu_new_and_unknown_options_are_refused():
    assert dt().transformer.config.activation_function == "gelu_new"
    with pytest.raises(ValueError, match="activation"):
        DecisionTransformer(OBS, ACT, activation="tanh")
    with pytest.raises(ValueError, match="conditioning"):
        DecisionTransformer(OBS, ACT, conditioning="goal")
    with pytest.raises(ValueError, match="attention"):
        dt()(batch(), attention="causal")


def test_prepared_and_no_padding_attention_match_the_padding_default():
    from transformers.masking_utils import create_causal_mask

    model = dt()
    b = batch()
    torch.testing.assert_close(model(b, attention=None), model(b), rtol=0, atol=0)
    b["mask"][:, :2] = 0
    mask = model.token_mask(b)
    prepared = create_causal_mask(config=model.transformer.config,
                                  inputs_embeds=torch.empty(*mask.shape, 1),
                                  attention_mask=mask.long(), cache=None,
                                  position_ids=torch.arange(mask.shape[1])[None])
    assert prepared is not None
    torch.testing.assert_close(model(b, attention=prepared), model(b), rtol=0, atol=0)
    assert not torch.allclose(model(b, attention=None)[:, 2:], model(b)[:, 2:])  # mask matters
