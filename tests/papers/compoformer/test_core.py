"""Exact-value tests of CompoFormer's equations and of the metrics (issue 16's acceptance list)."""

import math

import numpy as np
import pytest
import torch

from papers.compoformer.metrics import forgetting, forward_transfer, p_over_stages, performance
from papers.compoformer.model import ContinualDT, MetaAttention, compose


def _batch(b=3, k=4, task=None):
    g = torch.Generator().manual_seed(1)
    out = {"states": torch.randn(b, k, 39, generator=g), "actions": torch.rand(b, k, 4, generator=g) * 2 - 1,
           "rtg": torch.randn(b, k, 1, generator=g), "timesteps": torch.arange(k).repeat(b, 1),
           "mask": torch.ones(b, k)}
    if task is not None:
        out["task"] = torch.full((b,), task)
    return out


def _model(kind="dense", composed=True, stages=3, emb=None):
    torch.manual_seed(0)
    emb = torch.randn(stages, 384) if emb is None else emb
    return ContinualDT(39, 4, stages, emb, kind=kind, composed=composed, hidden=8, layers=1, heads=1,
                       context=4, max_ep_len=20, dropout=0.0).eval()


def test_alpha_is_a_softmax_over_earlier_tasks_only():
    torch.manual_seed(3)
    meta = MetaAttention(6, 4)
    for layer in (meta.q, meta.k):
        torch.nn.init.normal_(layer.weight)
        torch.nn.init.normal_(layer.bias)
    e = torch.randn(5, 6)
    alpha = meta(e[3], e[:3])
    q, k = meta.q(e[3]), meta.k(e[:3])
    expected = torch.softmax(k @ q / 2.0, 0)  # √h = 2
    assert alpha.shape == (3,)
    assert torch.allclose(alpha, expected, atol=1e-7)
    assert math.isclose(float(alpha.sum().detach()), 1.0, rel_tol=1e-6)
    # the model's α of stage 2 depends on tasks 0, 1 (and 2's query), never on later tasks
    m = _model(stages=4)
    before = m.alpha(2).detach().clone()
    with torch.no_grad():
        m.embeddings[3] += 5.0
    assert m.alpha(2).shape == (2,)
    assert torch.equal(m.alpha(2), before)


def test_all_ones_weights_give_uniform_alpha_on_centred_embeddings():
    e = torch.randn(4, 384)
    centred = e - e.mean(1, keepdim=True)
    meta = MetaAttention(384, 256)
    assert torch.equal(meta.q.weight, torch.ones(256, 384)) and torch.equal(meta.k.bias, torch.zeros(256))
    alpha = meta(centred[3], centred[:3])
    assert torch.allclose(alpha, torch.full((3,), 1 / 3), atol=1e-6)
    # raw (uncentred) embeddings: q·k/√h = √h (Σe_n)(Σe_j), not uniform in general
    raw = meta(e[3], e[:3])
    s = e.sum(1).double()
    expected = torch.softmax(16.0 * s[3] * s[:3], 0).float()
    assert torch.allclose(raw, expected, atol=1e-4)


def test_embeddings_are_centred_minilm_sentences():
    from papers.compoformer.embed import task_embeddings
    from papers.compoformer.tasks import sequence

    tasks = sequence("CW10")
    e = task_embeddings(tasks, centre=True)
    assert e.shape == (10, 384)
    assert torch.allclose(e.sum(1), torch.zeros(10), atol=1e-5)
    raw = task_embeddings(tasks, centre=False)
    assert torch.allclose(raw.norm(dim=1), torch.ones(10), atol=1e-5)


def test_composed_feature_equals_the_hand_computed_mix():
    alpha = torch.tensor([0.2, 0.5, 0.3])
    f = [torch.full((1, 2, 3), float(v)) for v in (1.0, 2.0, 4.0)]
    assert torch.allclose(compose(alpha, f), torch.full((1, 2, 3), 0.2 + 1.0 + 1.2))
    # and inside the model: stage 2's head sees [Σ_j α_j f_j ; f_2]
    m = _model()
    b = _batch(task=2)
    with torch.no_grad():
        f = [m.features(b, j) for j in range(3)]
        a = m.alpha(2)
        h_old = a[0] * f[0] + a[1] * f[1]
        expected = m.heads[2](torch.cat([h_old, f[2]], -1))
        assert torch.allclose(m.stage_action(b, 2), expected, atol=1e-6)
        assert torch.allclose(m(b), expected, atol=1e-6)
        # the composed action mixes the earlier stages' own (recursive) actions
        acts = [m.heads[0](torch.cat([torch.zeros_like(f[0]), f[0]], -1))]
        acts.append(m.heads[1](torch.cat([m.alpha(1)[0] * f[0], f[1]], -1)))
        mix = a[0] * acts[0] + a[1] * acts[1]
        assert torch.allclose(m.composed_action(b, 2), mix, atol=1e-6)
        assert torch.equal(m.composed_action(b, 2, hard=True), acts[int(a.argmax())])


def test_reused_stage_acts_as_its_top_earlier_stage():
    m = _model()
    m.alias[2] = 0
    b = _batch(task=2)
    with torch.no_grad():
        assert torch.equal(m.stage_action(b, 2), m.stage_action(b, 0))


def test_metrics_on_a_hand_made_matrix():
    nan = float("nan")
    r = np.array([[0.8, 0.1, nan], [0.5, 0.9, 0.2], [0.4, 0.6, 0.7]])
    r_init = np.array([nan, 0.0, 0.1])
    assert performance(r) == pytest.approx((0.4 + 0.6 + 0.7) / 3)
    assert forgetting(r) == pytest.approx(((0.8 - 0.4) + (0.9 - 0.6) + 0.0) / 3)
    assert forward_transfer(r, r_init) == pytest.approx(((0.1 - 0.0) + (0.2 - 0.1)) / 2)
    assert p_over_stages(r) == pytest.approx([0.8, 0.7, (0.4 + 0.6 + 0.7) / 3])


def test_sequences():
    from papers.compoformer.tasks import SENTENCES, sequence

    cw10 = sequence("CW10")
    assert [t.removesuffix("-v3") for t in cw10] == [
        "hammer", "push-wall", "faucet-close", "push-back", "stick-pull", "handle-press-side",
        "push", "shelf-place", "window-close", "peg-unplug-side"]
    assert sequence("CW20") == cw10 + cw10 and sequence("OCW5") == cw10[:5]
    orders = [sequence(f"CW10-order{i}") for i in (1, 2, 3)]
    assert all(sorted(o) == sorted(cw10) and o != cw10 for o in orders)
    assert len({tuple(o) for o in orders}) == 3
    assert set(SENTENCES) == set(cw10)


def test_lambda_sweep_choice_and_held_out_goals():
    from papers.compoformer.reproduce import choose_lambda
    from papers.compoformer.train import eval_goals

    assert choose_lambda([5000.0, 50.0, 0.5], [0.2, 0.4, 0.3]) == 50.0
    assert choose_lambda([5000.0, 50.0, 0.5], [0.4, 0.4, 0.1]) == 5000.0  # tie: the earlier value
    assert choose_lambda([1.0], [0.0]) == 1.0
    assert eval_goals(0, 3) == [0, 1, 2]
    assert eval_goals(25, 4) == [25, 26, 27, 28]
    assert eval_goals(48, 4) == [48, 49, 0, 1]  # Meta-World has 50 goal variations
