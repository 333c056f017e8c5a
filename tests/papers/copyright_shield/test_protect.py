"""L_protect: the released version has no gradient, the differentiable one and the hinge do."""

import pytest
import torch

from papers.copyright_shield.protect import protect_loss, protection
from shared.t2i.training import EpsilonBatch


def _batch(pred):
    g = torch.Generator().manual_seed(0)
    x_t = torch.randn(4, 3, 4, 4, generator=g)
    noise = torch.randn(4, 3, 4, 4, generator=g)
    return EpsilonBatch(step=0, index=torch.tensor([0, 5, 2, 7]), x0=x_t, ids=torch.zeros(4, 3, dtype=torch.long),
                        captions=[""] * 4, cond=torch.zeros(4, 3, 2), x_t=x_t, t=torch.zeros(4, dtype=torch.long),
                        noise=noise, pred=pred, alphas_cumprod=torch.ones(1000), backbone=None)


DETECTED = torch.tensor([False, False, True, False, False, True, False, False])  # rows 5 and 2 of the batch


def _pred():
    return torch.randn(4, 3, 4, 4, generator=torch.Generator().manual_seed(1)).requires_grad_(True)


def test_released_protect_loss_has_zero_gradient():
    pred = _pred()
    batch = _batch(pred)
    loss = ((pred - batch.noise) ** 2).mean() + 0.05 * protect_loss(batch, DETECTED, "released", 0.5)
    loss.backward()
    plain = _pred()
    ((plain - batch.noise) ** 2).mean().backward()
    assert torch.equal(pred.grad, plain.grad)  # the term adds nothing to the update
    value = protect_loss(_batch(_pred()), DETECTED, "released", 0.5)
    assert not value.requires_grad
    rows = [1, 2]
    expect = -((_pred()[rows] - batch.x_t[rows]) ** 2).flatten(1).mean(1).mean()
    assert value.item() == pytest.approx(expect.item(), rel=1e-6)


def test_differentiable_protect_loss_has_the_same_value_and_a_gradient():
    pred = _pred()
    batch = _batch(pred)
    value = protect_loss(batch, DETECTED, "differentiable", 0.5)
    assert value.item() == pytest.approx(protect_loss(_batch(_pred()), DETECTED, "released", 0.5).item(), rel=1e-6)
    value.backward()
    grad = pred.grad
    assert grad[[1, 2]].abs().sum() > 0 and grad[[0, 3]].abs().sum() == 0  # only the detected rows
    rows = [1, 2]
    expected = -2 * (pred[rows] - batch.x_t[rows]).detach() / (2 * 48)
    assert torch.allclose(grad[rows], expected, atol=1e-7)


def test_hinge_is_zero_above_the_margin_and_pushes_below():
    pred = _pred()
    batch = _batch(pred)
    mse = ((pred - batch.noise) ** 2).flatten(1).mean(1)[[1, 2]].detach()
    value = protect_loss(batch, DETECTED, "hinge", margin=100.0)
    assert value.item() == pytest.approx(float((100.0 - mse).mean()), rel=1e-6)
    value.backward()
    assert pred.grad[[1, 2]].abs().sum() > 0
    assert protect_loss(_batch(_pred()), DETECTED, "hinge", margin=1e-6).item() == 0.0


def test_no_detected_entry_in_the_batch_gives_zero_and_lambda_scales():
    batch = _batch(_pred())
    none = torch.zeros(8, dtype=torch.bool)
    assert protect_loss(batch, none, "differentiable", 0.5).item() == 0.0
    full = protection(DETECTED, "differentiable", 0.05, 0.5)(batch)
    assert full.item() == pytest.approx(0.05 * protect_loss(batch, DETECTED, "differentiable", 0.5).item(), rel=1e-6)
