import torch
from torch import nn

from shared.offline_rl.masks import (
    apply_mask,
    mask_density,
    mask_gradients,
    mask_overlap,
    mask_union,
    masked_params,
    restore_masked_out,
)


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
        self.predict_action = nn.Linear(16, 2)

    def forward(self, x):
        h = self.embed_ln(self.embed_x(x))
        for block in self.blocks:
            h = block(h)
        return self.predict_action(h)


def random_masks(model, n, density, seed):
    """n masks over the blocks' parameters (embeddings and head unmasked), each entry kept
    with probability `density`."""
    gen = torch.Generator().manual_seed(seed)
    return [{name: torch.rand(p.shape, generator=gen) < density
             for name, p in model.named_parameters() if name.startswith("blocks")}
            for _ in range(n)]


def inner_step(model, optimizer, mask, x, y, restore=True):
    """One masked training step, as HarmoDT's trainer runs it."""
    saved = apply_mask(model, mask)
    optimizer.zero_grad()
    loss = ((model(x) - y) ** 2).mean()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
    mask_gradients(model, mask)
    optimizer.step()
    if restore:
        restore_masked_out(model, mask, saved)
    return saved


def test_inner_step_leaves_masked_out_entries_bitwise_unchanged():
    torch.manual_seed(0)
    model = ToyGPT()
    masks = random_masks(model, 2, 0.5, 1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    x, y = torch.randn(8, 4), torch.randn(8, 2)
    params = dict(model.named_parameters())
    for step in range(4):  # alternate tasks so AdamW momentum is non-zero on masked-out entries
        mask = masks[step % 2]
        before = {n: p.detach().clone() for n, p in params.items()}
        inner_step(model, optimizer, mask, x, y)
        for name, m in mask.items():
            assert torch.equal(params[name][~m], before[name][~m])
            assert (params[name][m] != before[name][m]).float().mean() > 0.9
        assert not torch.equal(params["embed_x.weight"], before["embed_x.weight"])


def test_inner_step_without_restore_moves_masked_out_entries():
    torch.manual_seed(0)
    model = ToyGPT()
    mask = random_masks(model, 1, 0.5, 1)[0]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    saved = inner_step(model, optimizer, mask, torch.randn(8, 4), torch.randn(8, 2),
                       restore=False)
    w, m = dict(model.named_parameters())["blocks.0.fc1.weight"], mask["blocks.0.fc1.weight"]
    assert not torch.equal(w[~m], saved["blocks.0.fc1.weight"][~m])


def test_apply_mask_zeroes_and_returns_copies():
    model = ToyGPT()
    mask = random_masks(model, 1, 0.5, 2)[0]
    original = {n: p.detach().clone() for n, p in model.named_parameters()}
    saved = apply_mask(model, mask)
    params = dict(model.named_parameters())
    for name, m in mask.items():
        assert torch.equal(saved[name], original[name])
        assert bool((params[name][~m] == 0).all())
        assert torch.equal(params[name][m], original[name][m])
    assert torch.equal(params["embed_x.weight"], original["embed_x.weight"])


def test_masked_params_are_the_masked_weights_without_touching_the_model():
    model = ToyGPT()
    mask = random_masks(model, 1, 0.5, 3)[0]
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    over = masked_params(model, mask)
    assert set(over) == set(mask)
    for name, m in mask.items():
        assert torch.equal(over[name], before[name] * m) and not over[name].requires_grad
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())


def three_masks():
    return [{"w": torch.tensor([1, 1, 0, 0], dtype=torch.bool)},
            {"w": torch.tensor([1, 0, 1, 0], dtype=torch.bool)},
            {"w": torch.tensor([1, 1, 1, 0], dtype=torch.bool)}]


def test_mask_overlap_iou():
    iou = mask_overlap(three_masks())
    expected = torch.tensor([[1, 1 / 3, 2 / 3], [1 / 3, 1, 2 / 3], [2 / 3, 2 / 3, 1]],
                            dtype=torch.float64)
    assert torch.allclose(iou, expected, atol=1e-15)


def test_mask_density():
    assert mask_density({"a": torch.tensor([1, 0, 0, 0], dtype=torch.bool),
                         "b": torch.tensor([[1, 1], [1, 1]], dtype=torch.bool)}) == 5 / 8


def test_mask_union():
    assert mask_union(three_masks())["w"].tolist() == [True, True, True, False]
