"""CopyrightShield's defence (brief: "Defence"): loss = ε-MSE + λ · L_protect on the
detected poisons, with the batch's own noise ε and timestep t (their x_t are the batch's).

For the detected entries D of a batch (nothing when the batch holds none):
- `released`: L = −mean_{i∈D} ‖ε̂_θ(x_t,i) − x_t,i‖², computed with `.item()` as in the
  authors' released code: a Python number with no gradient, so the update is exactly the
  undefended one (the authors' bug, kept behind `run=released`);
- `differentiable`: the same formula with its gradient (pushes the noise prediction away
  from the noised latent, unbounded below);
- `hinge` [recon]: L = mean_{i∈D} max(0, margin − ‖ε̂_θ(x_t,i) − ε_i‖²), raising the
  detected poisons' denoising loss up to a margin (bounded).
"""

from __future__ import annotations

import torch

from shared.t2i.training import EpsilonBatch

VARIANTS = ("released", "differentiable", "hinge")


def per_sample_mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return ((a - b) ** 2).flatten(1).mean(dim=1)


def protect_loss(batch: EpsilonBatch, detected: torch.Tensor, variant: str, margin: float) -> torch.Tensor:
    """L_protect of one batch; `detected` is the (N,) bool flag of every training entry."""
    rows = detected[batch.index].to(batch.pred.device)
    if not bool(rows.any()):
        return torch.zeros((), device=batch.pred.device)
    pred, x_t, noise = batch.pred[rows], batch.x_t[rows], batch.noise[rows]
    if variant == "released":
        value = -per_sample_mse(pred, x_t).mean().item()  # the released code's .item(): no gradient
        return torch.tensor(value, device=batch.pred.device)
    if variant == "differentiable":
        return -per_sample_mse(pred, x_t).mean()
    if variant == "hinge":
        return torch.relu(margin - per_sample_mse(pred, noise)).mean()
    raise ValueError(f"unknown L_protect variant {variant!r}")


def protection(detected: torch.Tensor, variant: str, lam: float, margin: float):
    """The `extra_loss` hook of the training loop: λ · L_protect."""
    def extra(batch: EpsilonBatch) -> torch.Tensor:
        return lam * protect_loss(batch, detected, variant, margin)
    return extra
