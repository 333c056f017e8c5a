"""HarmoDT's bi-level harmony-subspace learning (paper Sec. 4) and G-HarmoDT's groups.

Lower level (every iteration, `inner_step`): train the shared θ on one task i through its
mask M_i: save θ, load θ ⊙ M_i, forward, action MSE, backward, clip, grads × M_i, AdamW,
then restore the masked-out entries, θ ← θ_new ⊙ M_i + θ_old ⊙ (1 − M_i).
Upper level (every `mask_interval` iterations, `update_masks`): per-task gradients g_i at
θ ⊙ M_i, the harmony gradient ḡ = mean_i g_i, then per mask prune the k active entries with
the lowest 10·(ḡ⊙g_i) + I_i and revive the k inactive ones with the highest ḡ⊙g_i, with
k = k_max (1 − cos 2πα).

The released code takes g_i with the mask applied, so ḡ⊙g_i is zero on every inactive
entry and revival is arbitrary; by default we score revival on the dense gradient at
θ ⊙ M_i (`harmo.revive_grad=dense`); `masked` restores the released behaviour.

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


class HarmonyMasks:
    """The masks, which task uses which mask, and both levels of HarmoDT's optimisation."""

    def __init__(self, model: nn.Module, cfg: HarmoConfig, n_masks: int, task_to_mask: list[int],
                 importance: str, generator: torch.Generator) -> None:
        self.model, self.cfg, self.importance = model, cfg, importance
        self.names = set(maskable_names(model))
        self.task_to_mask = list(task_to_mask)
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
        """Dense ∇θ of one batch's loss at θ ⊙ M_task (θ itself is left unchanged)."""
        mask = self.masks[self.task_to_mask[task]]
        saved = apply_mask(self.model, mask)
        self.model.zero_grad(set_to_none=True)
        loss_fn(task).backward()
        grads = {n: p.grad.detach().clone() for n, p in self.params().items()}
        self.model.zero_grad(set_to_none=True)
        with torch.no_grad():
            for n, p in self.params().items():
                p.copy_(saved[n])
        return grads

    def update_masks(self, loss_fn: LossFn, n_tasks: int, progress: float) -> int:
        """One upper-level step; returns k."""
        k = k_schedule(progress, self.cfg.k_max)
        task_grads = [self.task_gradient(t, loss_fn) for t in range(n_tasks)]
        mask_grads = []
        for m, mask in enumerate(self.masks):
            members = [g for t, g in enumerate(task_grads) if self.task_to_mask[t] == m]
            g = harmony_gradient(members) if members else {n: torch.zeros_like(p) for n, p in self.params().items()}
            if self.cfg.revive_grad == "masked":  # the released code: gradient through the mask
                g = {n: v * mask[n] for n, v in g.items()}
            mask_grads.append(g)
        g_bar = harmony_gradient(mask_grads)
        if k == 0:
            return 0
        theta = {n: p.detach() for n, p in self.params().items()}
        for m, g_m in enumerate(mask_grads):
            prune = prune_scores(g_bar, g_m, self.importance, theta, weight=self.cfg.prune_weight)
            revive = revive_scores(g_bar, g_m)
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
