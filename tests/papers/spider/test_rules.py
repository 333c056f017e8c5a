"""The SPIDER rule's facts from the brief on small tensors, and each baseline's defining
property; the transformers callback runs the rule inside Trainer."""

import math

import pytest
import torch
from torch import nn

from papers.spider.baselines import (
    DARE,
    L2SP,
    Grafting,
    HalfFT,
    MagnitudeMask,
    RandomMask,
    build_rule,
    half_group,
)
from papers.spider.spider import SPIDER, Rule, rank_importance, rule_callback, spider_mask


def _sig(x):
    return 1 / (1 + math.exp(-x))


def test_rank_importance_exact_values():
    # |v| = 1, 2, 3: mean 2, std (Bessel) 1 -> sigmoid(-1), sigmoid(0), sigmoid(1)
    got = rank_importance(torch.tensor([-1.0, 2.0, -3.0]))
    assert got.tolist() == pytest.approx([_sig(-1), 0.5, _sig(1)], abs=1e-7)


def test_constant_tensor_gives_no_nan():
    assert rank_importance(torch.ones(4, 3)).eq(0.5).all()
    assert rank_importance(torch.zeros(5)).eq(0.5).all()
    ln = nn.LayerNorm(6)  # weight all ones, bias all zeros: std 0 at the start
    rule = SPIDER()
    rule.start(ln.named_parameters())
    ln(torch.randn(2, 6)).sum().backward()
    torch.optim.SGD(ln.parameters(), lr=0.1).step()
    rule.after_step()
    assert all(torch.isfinite(p).all() for p in ln.parameters())


def test_soft_mask_hand_example():
    i_pre = torch.tensor([0.5, 0.2, 0.7])
    i_ft = torch.tensor([0.6, 0.6, 0.3])
    raw = [0.6 / 1.1, 0.6 / 0.8, 0.0]  # I_ft / (I_pre + I_ft) where I_ft > I_pre
    mean_nz = (raw[0] + raw[1]) / 2
    uncapped = spider_mask(i_pre, i_ft, cap=False)
    assert uncapped.tolist() == pytest.approx([raw[0] / mean_nz, raw[1] / mean_nz, 0.0], abs=1e-6)
    assert spider_mask(i_pre, i_ft).tolist() == pytest.approx([raw[0] / mean_nz, 1.0, 0.0], abs=1e-6)
    assert spider_mask(i_pre, i_ft, "hard").tolist() == [1.0, 1.0, 0.0]


def test_mask_range_and_nonzero_mean_before_capping():
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        i_pre, i_ft = torch.rand(50, generator=gen), torch.rand(50, generator=gen)
        m = spider_mask(i_pre, i_ft)
        assert (m >= 0).all() and (m <= 1).all()
        uncapped = spider_mask(i_pre, i_ft, cap=False)
        assert uncapped[uncapped != 0].mean().item() == pytest.approx(1.0, abs=1e-6)
        assert ((m > 0) == (i_ft > i_pre)).all()
    assert spider_mask(torch.ones(3), torch.zeros(3)).eq(0).all()  # nothing selected: no NaN


def test_unselected_entries_equal_theta0_exactly_after_a_step():
    torch.manual_seed(0)
    lin = nn.Linear(8, 4)
    theta0 = {n: p.detach().clone() for n, p in lin.named_parameters()}
    rule = SPIDER()
    rule.start(lin.named_parameters())
    opt = torch.optim.AdamW(lin.parameters(), lr=0.1)
    for _ in range(3):
        lin(torch.randn(16, 8)).pow(2).mean().backward()
        opt.step()
        rule.after_step()
        for name, p in lin.named_parameters():
            unselected = rank_importance(rule.grad_sum[name]) <= rank_importance(theta0[name])
            assert torch.equal(p.detach()[unselected], theta0[name][unselected])
            assert not torch.equal(p.detach()[~unselected], theta0[name][~unselected])
        opt.zero_grad()


def test_grad_sum_is_the_plain_running_sum_of_raw_gradients():
    p = nn.Parameter(torch.tensor([1.0, -2.0, 3.0]))
    rule = SPIDER()
    rule.start([("p", p)])
    grads = [torch.tensor([0.5, -1.0, 0.0]), torch.tensor([-0.25, -1.0, 2.0])]
    for g in grads:
        p.grad = g.clone()
        rule.after_step()
    assert rule.grad_sum["p"].tolist() == [0.25, -2.0, 2.0]  # signed sum, no decay, no abs


def test_spider_state_round_trip_resumes_exactly():
    torch.manual_seed(1)
    a, b = nn.Linear(5, 3), nn.Linear(5, 3)
    b.load_state_dict(a.state_dict())
    ra, rb = SPIDER(), SPIDER()
    ra.start(a.named_parameters())
    for p in a.parameters():
        p.grad = torch.randn_like(p)
    ra.after_step()
    rb.start(b.named_parameters())
    rb.load_state_dict(ra.state_dict())
    b.load_state_dict(a.state_dict())
    g = [torch.randn_like(p) for p in a.parameters()]
    for model, rule in ((a, ra), (b, rb)):
        for p, gi in zip(model.parameters(), g):
            p.grad = gi.clone()
        rule.after_step()
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))
    assert ra.extra_bytes() == 2 * 4 * sum(p.numel() for p in a.parameters())  # θ₀ and G in fp32


def _step(model, rule, lr=0.5, steps=2, seed=0):
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    for _ in range(steps):
        model(torch.randn(4, model.in_features, generator=gen)).sum().backward()
        rule.before_step()
        opt.step()
        rule.after_step()
        opt.zero_grad()
    rule.finish()


def _setup(rule, seed=0):
    torch.manual_seed(seed)
    lin = nn.Linear(6, 5)
    theta0 = {n: p.detach().clone() for n, p in lin.named_parameters()}
    rule.start(lin.named_parameters())
    return lin, theta0


def test_magnitude_mask_keeps_the_large_half_at_theta0():
    rule = MagnitudeMask(0.5)
    lin, theta0 = _setup(rule)
    _step(lin, rule)
    w = theta0["weight"].flatten()
    large = torch.zeros_like(w, dtype=torch.bool)
    large[w.abs().topk(15).indices] = True
    moved = lin.weight.detach().flatten() != w
    assert not moved[large].any() and moved[~large].all()


def test_random_mask_resets_a_fixed_half():
    rule = RandomMask(0.5, seed=3)
    lin, theta0 = _setup(rule)
    frozen = rule.frozen["weight"].clone()
    assert frozen.sum().item() == 15
    _step(lin, rule)
    assert torch.equal(rule.frozen["weight"], frozen)
    moved = lin.weight.detach() != theta0["weight"]
    assert not moved[frozen].any() and moved[~frozen].all()


def test_half_ft_freezes_half_of_the_tensors():
    rule = HalfFT(seed=0)
    lin, theta0 = _setup(rule)
    _step(lin, rule)
    unchanged = [torch.equal(p.detach(), theta0[n]) for n, p in lin.named_parameters()]
    assert sorted(unchanged) == [False, True]


def _llama_like_names():
    names = [f"lm.layers.{i}.{m}.{w}.weight" for i in (2, 3) for m, ws in
             (("self_attn", ("q_proj", "k_proj", "v_proj", "o_proj")), ("mlp", ("gate_proj", "up_proj", "down_proj")))
             for w in ws]
    names += [f"lm.layers.{i}.{n}.weight" for i in (2, 3) for n in ("input_layernorm", "post_attention_layernorm")]
    return names + ["projector.linear_1.weight", "projector.linear_1.bias", "projector.linear_2.weight",
                    "projector.linear_2.bias"]


def test_half_group_is_the_kind_of_weight_matrix_within_a_layer():
    assert half_group("lm.layers.3.self_attn.q_proj.weight") == "lm.layers.3.self_attn"
    assert half_group("lm.layers.3.mlp.down_proj.weight") == "lm.layers.3.mlp"
    assert half_group("lm.layers.3.input_layernorm.weight") == "lm.layers.3.norms"
    assert half_group("projector.linear_2.bias") == "projector"


def test_half_ft_redraws_the_half_every_epoch_within_each_kind():
    params = [(n, nn.Parameter(torch.zeros(2))) for n in _llama_like_names()]
    rule = HalfFT(seed=3, steps_per_epoch=2)
    rule.start(params)
    draws = []
    for step in range(6):
        if step % 2 == 0:
            draws.append(frozenset(rule.frozen_names()))
        for _, p in params:
            p.grad = torch.ones(2)
            with torch.no_grad():
                p.add_(1.0)
        rule.after_step()
        for n, p in params:  # the frozen half stays at θ₀, the other half moved
            assert bool((p.detach() == 0).all()) == (n in draws[-1])
        if step == 2:
            saved = rule.state_dict()
    groups = {}
    for n in _llama_like_names():
        groups.setdefault(half_group(n), []).append(n)
    for frozen in draws:
        for names in groups.values():  # half of every kind (4 attention, 2 norms, ...), 3 MLP: 1 or 2
            assert len(frozen & set(names)) in {len(names) // 2, (len(names) + 1) // 2}
    assert len(set(draws)) == 3  # a new half in each of the three epochs
    resumed = HalfFT(seed=3, steps_per_epoch=2)
    resumed.start(params)
    resumed.load_state_dict(saved)  # after step 3 of 6: in epoch 1
    assert frozenset(resumed.frozen_names()) == draws[1]


def test_l2sp_adds_the_penalty_gradient():
    p = nn.Parameter(torch.tensor([1.0, 2.0]))
    rule = L2SP(weight=0.5)
    rule.start([("p", p)])
    with torch.no_grad():
        p.add_(torch.tensor([0.2, -0.4]))
    p.grad = torch.tensor([1.0, 1.0])
    rule.before_step()
    assert p.grad.tolist() == pytest.approx([1.0 + 2 * 0.5 * 0.2, 1.0 - 2 * 0.5 * 0.4])
    assert rule.penalty().item() == pytest.approx(0.5 * (0.04 + 0.16))


def test_dare_drops_and_rescales_the_task_vector():
    p = nn.Parameter(torch.zeros(20000))
    rule = DARE(drop=0.75, seed=0)
    rule.start([("p", p)])
    with torch.no_grad():
        p.fill_(1.0)  # task vector of ones
    rule.finish()
    values = set(torch.unique(p.detach()).tolist())
    assert values == {0.0, 4.0}  # dropped -> θ₀, kept -> θ₀ + δ / (1 − p)
    assert p.detach().mean().item() == pytest.approx(1.0, abs=0.05)  # unbiased in expectation


def test_grafting_keeps_the_largest_changes():
    p = nn.Parameter(torch.zeros(10))
    rule = Grafting(keep=0.2)
    rule.start([("p", p)])
    with torch.no_grad():
        p.copy_(torch.tensor([0.1, -5.0, 0.2, 0.3, 4.0, 0.0, -0.1, 0.05, 0.2, 1.0]))
    rule.finish()
    assert p.detach().tolist() == [0, -5.0, 0, 0, 4.0, 0, 0, 0, 0, 0]


def test_full_ft_and_build_rule():
    assert type(build_rule("full_ft")) is Rule
    assert build_rule("spider_hard").mode == "hard"
    with pytest.raises(ValueError, match="method must be one of"):
        build_rule("lora")


def test_rule_callback_inside_transformers_trainer(tmp_path):
    from torch.utils.data import Dataset
    from transformers import Trainer, TrainingArguments

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 1)

        def forward(self, x, labels=None):
            out = self.lin(x).squeeze(-1)
            return {"loss": ((out - labels) ** 2).mean(), "logits": out}

    class Data(Dataset):
        def __len__(self):
            return 8

        def __getitem__(self, i):
            g = torch.Generator().manual_seed(i)
            return {"x": torch.randn(4, generator=g), "labels": torch.tensor(float(i % 2))}

    torch.manual_seed(0)
    model = Tiny()
    theta0 = {n: p.detach().clone() for n, p in model.named_parameters()}
    rule = SPIDER()
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=4, max_steps=3,
                             learning_rate=0.1, report_to=[], use_cpu=True, save_strategy="no",
                             logging_strategy="no", max_grad_norm=1.0)
    Trainer(model=model, args=args, train_dataset=Data(), callbacks=[rule_callback(rule)]).train()
    for name, p in model.named_parameters():
        unselected = rank_importance(rule.grad_sum[name]) <= rank_importance(theta0[name])
        assert torch.equal(p.detach()[unselected], theta0[name][unselected])
    assert rule.grad_sum["lin.weight"].abs().sum() > 0


@pytest.mark.parametrize("mode", ["soft", "hard"])
def test_fused_step_equals_the_reference_formula(mode):
    gen = torch.Generator().manual_seed(2)
    theta0 = torch.randn(7, 9, generator=gen)
    p = nn.Parameter(theta0.clone())
    rule = SPIDER(mode)
    rule.start([("p", p)])
    g_total = torch.zeros_like(theta0)
    for _ in range(3):
        after = theta0 + 0.1 * torch.randn(7, 9, generator=gen)
        g = torch.randn(7, 9, generator=gen)
        g_total += g
        with torch.no_grad():
            p.copy_(after)
        p.grad = g
        rule.after_step()
        m = spider_mask(rank_importance(theta0), rank_importance(g_total), mode)
        assert torch.allclose(p.detach(), theta0 * (1 - m) + after * m, atol=1e-6)
