import math

import pytest
import torch
from torch import nn

from papers.harmodt.masks import (
    erk_counts,
    erk_densities,
    harmony_gradient,
    k_schedule,
    majority_vote_mask,
    maskable_names,
    prune_scores,
    random_erk_masks,
    revive_scores,
    update_mask,
)
from shared.offline_rl.masks import mask_density


class ToyBlock(nn.Module):
    """GPT-2-like block: a 16×16 'attention' projection, a 16→64→16 MLP and a LayerNorm."""

    def __init__(self) -> None:
        super().__init__()
        self.ln = nn.LayerNorm(16)
        self.attn = nn.Linear(16, 16)
        self.fc1 = nn.Linear(16, 64)
        self.fc2 = nn.Linear(64, 16)

    def forward(self, x):
        x = x + self.attn(self.ln(x))
        return x + self.fc2(torch.relu(self.fc1(x)))


class ToyGPT(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed_x = nn.Linear(4, 16)
        self.embed_ln = nn.LayerNorm(16)
        self.blocks = nn.ModuleList([ToyBlock(), ToyBlock()])
        self.frozen = nn.Parameter(torch.zeros(8, 16), requires_grad=False)
        self.predict_action = nn.Linear(16, 2)

    def forward(self, x):
        h = self.embed_ln(self.embed_x(x))
        for block in self.blocks:
            h = block(h)
        return self.predict_action(h)


def toy_shapes(model):
    params = dict(model.named_parameters())
    return {n: tuple(params[n].shape) for n in maskable_names(model)}


def test_maskable_names_skip_embed_predict_and_frozen():
    names = maskable_names(ToyGPT())
    assert len(names) == 16
    assert not [n for n in names if "embed" in n or "predict" in n or n == "frozen"]
    assert "blocks.0.ln.weight" in names and "blocks.1.fc2.bias" in names


def test_erk_hand_computed_without_dense_layers():
    # raw scores a: 20/100, b: 9/20; ε = 60 / (0.2·100 + 0.45·20) = 60/29
    d = erk_densities({"a": (10, 10), "b": (5, 4)}, 0.5)
    assert d["a"] == pytest.approx(12 / 29, rel=1e-12)
    assert d["b"] == pytest.approx(27 / 29, rel=1e-12)


def test_erk_hand_computed_with_a_dense_layer():
    # first ε = 65/39 puts c (raw 1) above 1; then ε = (65 − 10)/29
    d = erk_densities({"a": (10, 10), "b": (5, 4), "c": (10,)}, 0.5)
    assert d == pytest.approx({"a": 11 / 29, "b": 0.45 * 55 / 29, "c": 1.0}, rel=1e-12)


def test_erk_toy_model_densities_and_order():
    d = erk_densities(toy_shapes(ToyGPT()), 0.5)
    for name, density in d.items():
        if name.endswith("bias") or ".ln." in name:
            assert density == 1.0
    # larger layers sparser: 16×16 attention denser than the 16×64 MLP matrices
    assert d["blocks.0.fc1.weight"] == pytest.approx(d["blocks.0.fc2.weight"])
    assert d["blocks.0.fc1.weight"] < d["blocks.0.attn.weight"] < 1.0
    # at 0.8 the attention matrix would exceed 1 and becomes dense as well
    d8 = erk_densities(toy_shapes(ToyGPT()), 0.8)
    assert d8["blocks.1.attn.weight"] == 1.0
    assert d8["blocks.1.fc1.weight"] == pytest.approx((0.8 * 4864 - 256 - 512) / 320 * 80 / 1024)


@pytest.mark.parametrize("density", [0.8, 0.5, 0.3])
def test_random_erk_masks_exact_total_density(density):
    model = ToyGPT()
    masks = random_erk_masks(model, 3, density, torch.Generator().manual_seed(0))
    total = sum(math.prod(s) for s in toy_shapes(model).values())
    for mask in masks:
        assert set(mask) == set(maskable_names(model))
        assert sum(int(m.sum()) for m in mask.values()) == round(density * total)
        assert mask_density(mask) == pytest.approx(density, abs=1 / total)
        for m in mask.values():
            assert m.dtype == torch.bool
            if m.dim() == 1:
                assert bool(m.all())
    assert not torch.equal(masks[0]["blocks.0.fc1.weight"], masks[1]["blocks.0.fc1.weight"])


def test_erk_counts_match_rounded_densities():
    shapes = toy_shapes(ToyGPT())
    counts = erk_counts(shapes, 0.8)
    dens = erk_densities(shapes, 0.8)
    for name, c in counts.items():
        assert abs(c - dens[name] * math.prod(shapes[name])) < 1


def test_random_erk_masks_reproducible():
    model = ToyGPT()
    a = random_erk_masks(model, 2, 0.8, torch.Generator().manual_seed(3))
    b = random_erk_masks(model, 2, 0.8, torch.Generator().manual_seed(3))
    assert all(torch.equal(a[i][n], b[i][n]) for i in range(2) for n in a[0])


@pytest.mark.parametrize("scope", ["global", "layer"])
@pytest.mark.parametrize("k", [0, 1, 7, 50, 100_000])
def test_update_mask_conserves_density(scope, k):
    model = ToyGPT()
    mask = random_erk_masks(model, 1, 0.8, torch.Generator().manual_seed(4))[0]
    gen = torch.Generator().manual_seed(5)
    prune = {n: torch.randn(m.shape, generator=gen) for n, m in mask.items()}
    revive = {n: torch.randn(m.shape, generator=gen) for n, m in mask.items()}
    new = update_mask(mask, prune, revive, k, scope=scope)
    assert sum(int(m.sum()) for m in new.values()) == sum(int(m.sum()) for m in mask.values())
    if scope == "layer":
        assert all(int(new[n].sum()) == int(mask[n].sum()) for n in mask)
    changed = sum(int((new[n] & ~mask[n]).sum()) for n in mask)
    if k == 7 and scope == "global":
        assert changed == 7
    if k == 0:
        assert changed == 0


def test_update_mask_hand_made():
    mask = {"w": torch.tensor([[1, 1, 0], [1, 0, 1]], dtype=torch.bool)}
    prune = {"w": torch.tensor([[0.5, -1.0, -9.0], [0.2, -9.0, 3.0]])}
    # the active entries' revive scores are huge: a just-pruned entry still cannot come back
    revive = {"w": torch.tensor([[9.0, 9.0, 0.1], [9.0, -2.0, 9.0]])}
    one = update_mask(mask, prune, revive, 1)
    assert one["w"].tolist() == [[True, False, True], [True, False, True]]
    two = update_mask(mask, prune, revive, 2)
    assert two["w"].tolist() == [[True, False, True], [False, True, True]]
    assert mask["w"].tolist() == [[True, True, False], [True, False, True]]  # input untouched


def test_update_mask_ties_go_to_lowest_flat_index():
    # the released code's masked gradient: every revive score is 0, prune scores tie too
    mask = {"a": torch.tensor([[1, 0, 0], [1, 0, 1]], dtype=torch.bool),
            "b": torch.tensor([0, 1], dtype=torch.bool)}
    zeros = {n: torch.zeros(m.shape) for n, m in mask.items()}
    new = update_mask(mask, zeros, zeros, 2)
    assert new["a"].tolist() == [[False, True, True], [False, False, True]]
    assert new["b"].tolist() == [False, True]
    again = update_mask(mask, zeros, zeros, 2)
    assert all(torch.equal(new[n], again[n]) for n in mask)
    per_layer = update_mask(mask, zeros, zeros, 1, scope="layer")
    assert per_layer["a"].tolist() == [[False, True, False], [True, False, True]]
    assert per_layer["b"].tolist() == [True, False]


def test_update_mask_rejects_unknown_scope():
    mask = {"w": torch.ones(2, dtype=torch.bool)}
    with pytest.raises(ValueError):
        update_mask(mask, {"w": torch.zeros(2)}, {"w": torch.zeros(2)}, 1, scope="row")


def test_k_schedule():
    assert k_schedule(0.0) == 0
    assert k_schedule(0.25) == 50
    assert k_schedule(0.5) == 100
    assert k_schedule(1.0) == 0
    assert k_schedule(0.5, k_max=10) == 20
    for p in [0.05, 0.1, 0.2, 0.3, 0.37, 0.45]:
        assert k_schedule(p) == k_schedule(1.0 - p)
    assert k_schedule(0.1) < k_schedule(0.2) < k_schedule(0.3)


def test_harmony_gradient_and_scores_exact():
    g1 = {"w": torch.tensor([1.0, -2.0, 0.0])}
    g2 = {"w": torch.tensor([3.0, 2.0, 4.0])}
    g_bar = harmony_gradient([g1, g2])
    assert g_bar["w"].tolist() == [2.0, 0.0, 2.0]
    params = {"w": torch.tensor([-0.5, 0.25, 1.0])}
    # 10·ḡ⊙g_1 = [20, 0, 0]
    assert prune_scores(g_bar, g1, "none", params)["w"].tolist() == [20.0, 0.0, 0.0]
    assert prune_scores(g_bar, g1, "fisher", params)["w"].tolist() == [21.0, 4.0, 0.0]
    assert prune_scores(g_bar, g1, "magnitude", params)["w"].tolist() == [20.5, 0.25, 1.0]
    assert revive_scores(g_bar, g2)["w"].tolist() == [6.0, 0.0, 8.0]
    with pytest.raises(ValueError):
        prune_scores(g_bar, g1, "random", params)


def three_masks():
    return [{"w": torch.tensor([1, 1, 0, 0], dtype=torch.bool)},
            {"w": torch.tensor([1, 0, 1, 0], dtype=torch.bool)},
            {"w": torch.tensor([1, 1, 1, 0], dtype=torch.bool)}]


def test_majority_vote_mask():
    masks = three_masks()  # counts [3, 2, 2, 0]
    assert majority_vote_mask(masks, 0.5)["w"].tolist() == [True, True, True, False]
    assert majority_vote_mask(masks, 1.0)["w"].tolist() == [True, False, False, False]
    assert majority_vote_mask(masks, 0.7)["w"].tolist() == [True, False, False, False]
    # exactly half of four masks keep entry 2: ≥ keeps it
    four = masks + [{"w": torch.tensor([0, 0, 0, 1], dtype=torch.bool)}]
    assert majority_vote_mask(four, 0.5)["w"].tolist() == [True, True, True, False]
