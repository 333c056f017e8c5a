"""HarmoDT's bi-level harmony-subspace learning (paper Sec. 4) and G-HarmoDT's groups.

Lower level (every iteration, `inner_step`): train the shared θ on one task i through its
mask M_i: save θ, load θ ⊙ M_i, forward, action MSE, backward, clip, grads × M_i, AdamW,
then restore the masked-out entries, θ ← θ_new ⊙ M_i + θ_old ⊙ (1 − M_i).
Upper level (every `mask_interval` iterations, `update_masks`): per-task gradients g_i at
θ ⊙ M_i, as released: clipped to total norm 0.25 (`train.grad_clip`), then masked (g_i ⊙
M_i), then averaged into the harmony gradient ḡ = mean_i (g_i ⊙ M_i)
(`harmo.task_grad=clipped-masked`; `dense` = unclipped dense g_i, before issue 21). Then per
mask prune the k active entries with the lowest 10·(ḡ⊙g_i) + I_i and revive the k inactive
ones with the highest ḡ⊙g_i, with k = k_max (1 − cos 2πα).

The released code also scores revival with the masked g_i, so ḡ⊙g_i is zero on every
inactive entry and revival is arbitrary; by default we score revival on the (clipped) dense
gradient at θ ⊙ M_i (`harmo.revive_grad=dense`); `masked` restores the released behaviour.

The k = 0 ablation (`frozen=True`): the random ERK masks are never updated.

G-HarmoDT [recon]: a mask belongs to a *group* of tasks (`task_to_mask`); a group's
gradient is the mean of its tasks' gradients. HarmoDT is the case of one group per task.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from papers.harmodt.config import HarmoConfig
from papers.harmodt.masks import (
    harmony_gradient,
    k_schedule,
    maskable_names,
    prune_scores,
    random_erk_masks,
    revive_scores,
    update_mask,
)
from shared.offline_rl.masks import apply_mask, mask_gradients, restore_masked_out

LossFn = Callable[[int], torch.Tensor]  # task index -> loss on one batch of that task


def mask_update_gradients(task_grads: list[dict[str, torch.Tensor]], masks: list[dict[str, torch.Tensor]],
                          task_to_mask: list[int], task_grad: str = "clipped-masked",
                          revive_grad: str = "dense"):
    """(ḡ, per-mask gradient of the prune score, per-mask gradient of the revive score).

    A mask's gradient g_m is the mean of its tasks' gradients (one task per mask in HarmoDT).
    `clipped-masked` (released; the task gradients come in clipped): ḡ = mean_m (g_m ⊙ M_m),
    prune on g_m ⊙ M_m; `dense` (before issue 21): ḡ = mean_m g_m, prune on g_m. Revive on
    the dense g_m, or on g_m ⊙ M_m with `revive_grad=masked` (the released code; then ḡ =
    mean of the masked ones in both modes, as before)."""
    dense, masked = [], []
    for m, mask in enumerate(masks):
        members = [g for t, g in enumerate(task_grads) if task_to_mask[t] == m]
        g = harmony_gradient(members) if members else {n: torch.zeros_like(v) for n, v in task_grads[0].items()}
        dense.append(g)
        masked.append({n: v * mask[n] for n, v in g.items()})
    if task_grad == "clipped-masked":
        prune = masked
    elif task_grad == "dense":
        prune = masked if revive_grad == "masked" else dense
    else:
        raise ValueError(f"task_grad must be 'clipped-masked' or 'dense', got {task_grad!r}")
    revive = masked if revive_grad == "masked" else dense
    return harmony_gradient(prune), prune, revive


class HarmonyMasks:
    """The masks, which task uses which mask, and both levels of HarmoDT's optimisation."""

    def __init__(self, model: nn.Module, cfg: HarmoConfig, n_masks: int, task_to_mask: list[int],
                 importance: str, generator: torch.Generator, grad_clip: float = 0.25,
                 frozen: bool = False) -> None:
        self.model, self.cfg, self.importance = model, cfg, importance
        self.grad_clip, self.frozen = grad_clip, frozen
        self.names = set(maskable_names(model))
        self.task_to_mask = list(task_to_mask)
        if cfg.mask_init == "random_same":  # the authors' random_same: one draw, copied per mask
            first = random_erk_masks(model, 1, cfg.density, generator)[0]
            self.masks = [{n: m.clone() for n, m in first.items()} for _ in range(n_masks)]
        else:
            self.masks = random_erk_masks(model, n_masks, cfg.density, generator)

    def params(self) -> dict[str, torch.Tensor]:
        return {n: p for n, p in self.model.named_parameters() if n in self.names}

    def inner_step(self, task: int, loss_fn: LossFn, optimizer: torch.optim.Optimizer,
                   scheduler, grad_clip: float) -> float:
        mask = self.masks[self.task_to_mask[task]]
        saved = apply_mask(self.model, mask)
        loss = loss_fn(task)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.model.parameters(), grad_clip)
        mask_gradients(self.model, mask)
        optimizer.step()
        scheduler.step()
        restore_masked_out(self.model, mask, saved)
        return float(loss.detach())

    def task_gradient(self, task: int, loss_fn: LossFn) -> dict[str, torch.Tensor]:
        """Dense ∇θ of one batch's loss at θ ⊙ M_task, clipped to total norm `grad_clip` over
        every parameter (as the inner step) when `task_grad=clipped-masked`; θ is unchanged."""
        mask = self.masks[self.task_to_mask[task]]
        saved = apply_mask(self.model, mask)
        self.model.zero_grad(set_to_none=True)
        loss_fn(task).backward()
        if self.cfg.task_grad == "clipped-masked":
            nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        grads = {n: p.grad.detach().clone() for n, p in self.params().items()}
        self.model.zero_grad(set_to_none=True)
        with torch.no_grad():
            for n, p in self.params().items():
                p.copy_(saved[n])
        return grads

    def update_masks(self, loss_fn: LossFn, n_tasks: int, progress: float) -> int:
        """One upper-level step; returns k."""
        if self.frozen:  # the k = 0 ablation: no gradients, no swaps
            return 0
        k = k_schedule(progress, self.cfg.k_max)
        task_grads = [self.task_gradient(t, loss_fn) for t in range(n_tasks)]
        g_bar, prune_grads, revive_grads = mask_update_gradients(
            task_grads, self.masks, self.task_to_mask, self.cfg.task_grad, self.cfg.revive_grad)
        if k == 0:
            return 0
        theta = {n: p.detach() for n, p in self.params().items()}
        for m in range(len(self.masks)):
            prune = prune_scores(g_bar, prune_grads[m], self.importance, theta, weight=self.cfg.prune_weight)
            revive = revive_scores(g_bar, revive_grads[m])
            self.masks[m] = update_mask(self.masks[m], prune, revive, k, scope=self.cfg.k_scope)
        return k

    def state(self) -> dict[str, torch.Tensor]:
        return {f"{m}.{n}": t for m, mask in enumerate(self.masks) for n, t in mask.items()}

    def load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        for key, t in tensors.items():
            m, name = key.split(".", 1)
            self.masks[int(m)][name] = t.bool()

    def masked_params(self, mask: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """θ ⊙ M for evaluation with torch.func.functional_call."""
        return {n: p.detach() * mask[n] for n, p in self.params().items()}
