"""Batched Decision-Transformer acting for `shared.offline_rl.Evaluator`.

Each evaluation episode keeps its states, actions, rewards and returns-to-go; R̂ starts at
`target_return` and drops by each reward (both divided by `return_scale`). At every step the
model sees the last K steps, left-padded exactly like a training segment
(`shared.offline_rl.segments`).

Per episode:
- prompts: `prompts` holds N prompts as `prompt_*` tensors [N, P, ·]; episode i uses prompt
  `prompt_index[i]` (by default its task index, i.e. one prompt per task). A paper that makes
  a prompt per episode (e.g. a prompt generator) passes N = #episodes and
  `prompt_index = arange(#episodes)`; `set_prompts` swaps them between runs.
- weights: `weights` maps a key to parameter overrides (a mask's θ ⊙ M, a mask union, θ + BA of
  a LoRA adapter, ...) and `choose(policy)` returns one key per episode (None: the model's own
  parameters), at every step, so a gate may switch keys within an episode. Episodes that share
  a key run in one `torch.func.functional_call`. With `batched=True` (all keys must name
  weight sets), keys with the same number of episodes run in one call: `torch.func.vmap` over
  their stacked parameters (see `grouped_forward`); one mask per task with the same goals per
  task is one call per step instead of one per task. Its actions equal the per-key loop's to
  float rounding (tested to 1e-5; mostly bitwise on CPU, but not always: a toy size with one
  episode per key differed by 1.5e-8, which moves later rollouts), so a paper whose recorded
  results must not move keeps the loop (HarmoDT does).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, vmap

from shared.offline_rl.segments import PAD_ACTION, Normaliser

WeightChooser = Callable[["DTPolicy"], list]  # -> a weight-set key per episode


def by_task(policy: DTPolicy) -> list:
    """A chooser: the weight set of each episode's task (keys are task indices)."""
    return list(policy.task_index)


def stack_weights(weight_sets: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack the same parameter names of several weight sets along a new first axis."""
    names = list(weight_sets[0])
    if any(list(w) != names for w in weight_sets):
        raise ValueError("weight sets to stack must override the same parameters")
    return {n: torch.stack([w[n] for w in weight_sets]) for n in names}


def _needs_padding_mask(model: nn.Module, batch: dict[str, torch.Tensor]) -> bool:
    token_mask = getattr(model, "token_mask", None)
    return token_mask is not None and not bool(token_mask(batch).all())


def grouped_forward(model: nn.Module, stacked: dict[str, torch.Tensor],
                    groups: list[dict[str, torch.Tensor]]) -> list[torch.Tensor]:
    """`model(groups[g])` with parameters `stacked[·][g]`, for every g, in batched calls.

    Groups of the same size run through one `vmap` of `functional_call`, so every slice has
    exactly the shapes of its own forward (no padding rows, which could change a matmul's
    blocking and its rounding). For a `DecisionTransformer`, GPT-2's causal/padding mask is
    built outside vmap (transformers decides data-dependently whether a mask is needed), and
    groups with and without padded tokens go in separate calls, so every group takes the same
    attention path as in its own forward. Calls: one per (size, padded or not) that occurs."""
    sizes = [len(next(iter(g.values()))) for g in groups]
    kinds = [(size, _needs_padding_mask(model, g)) for size, g in zip(sizes, groups)]
    outputs: list[torch.Tensor | None] = [None] * len(groups)
    with warnings.catch_warnings():
        # CPU flash attention has no vmap batching rule: vmap loops over it (correct, slower).
        warnings.filterwarnings("ignore", message="There is a performance drop")
        for size, padded in dict.fromkeys(kinds):
            idx = [i for i, k in enumerate(kinds) if k == (size, padded)]
            batch = {n: torch.stack([groups[i][n] for i in idx]) for n in groups[idx[0]]}
            params = stacked if idx == list(range(len(groups))) else {
                n: v[idx] for n, v in stacked.items()}  # a copy: avoided in the common case
            if padded:
                attention = _prepared_attention(model, batch)
                out = vmap(lambda p, b, a: functional_call(model, p, (b,), {"attention": a},
                                                           strict=False))(params, batch, attention)
            else:  # no padded token: pure causal attention (what GPT-2 picks itself then)
                extra = {"attention": None} if hasattr(model, "token_mask") else {}
                out = vmap(lambda p, b, e=extra: functional_call(model, p, (b,), e,
                                                                 strict=False))(params, batch)
            for j, i in enumerate(idx):
                outputs[i] = out[j]
    return outputs


def _prepared_attention(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """GPT-2's 4-D causal + padding mask for a [G, m, ...] batch, as [G, m, 1, L, L]."""
    from transformers.masking_utils import create_causal_mask

    g, m = batch["mask"].shape[:2]
    mask = model.token_mask({n: v.reshape(g * m, *v.shape[2:]) for n, v in batch.items()})
    dummy = torch.empty(*mask.shape, 1, device=mask.device)  # only its shape/dtype/device count
    attention = create_causal_mask(config=model.transformer.config, inputs_embeds=dummy,
                                   attention_mask=mask.long(), cache=None,
                                   position_ids=torch.arange(mask.shape[1], device=mask.device)[None])
    return attention.reshape(g, m, *attention.shape[1:])


class DTPolicy:
    def __init__(self, model: nn.Module, norm: Normaliser, *, context: int, max_steps: int,
                 target_return: float, return_scale: float, device: torch.device,
                 prompts: dict[str, torch.Tensor] | None = None,
                 prompt_index: np.ndarray | None = None,
                 weights: dict[object, dict[str, torch.Tensor]] | None = None,
                 choose: WeightChooser | None = None, task_ids: list[int] | None = None,
                 batched: bool = False, act_dim: int | None = None) -> None:
        """`prompts`: `prompt_*` tensors [N, P, ·]; `prompt_index`: the prompt of each episode
        (default: its task index); `weights`: key -> parameter overrides; `choose(self)` ->
        key per episode; `task_ids` maps the evaluator's task index to the model's task id
        (task tokens, per-task heads); `batched`: one vmapped call for all keys; `norm` may be
        per task (indexed by the evaluator's task index); `act_dim` defaults to
        `model.act_dim`."""
        self.model, self.norm, self.context, self.max_steps = model, norm, context, max_steps
        self.target, self.scale, self.device = target_return, return_scale, device
        self.weights, self.choose, self.task_ids = weights, choose, task_ids
        self.batched = batched
        self.act_dim = int(act_dim if act_dim is not None else model.act_dim)
        self._stacked: dict[tuple, dict[str, torch.Tensor]] = {}
        self.set_prompts(prompts, prompt_index)

    def set_prompts(self, prompts: dict[str, torch.Tensor] | None,
                    prompt_index: np.ndarray | None = None) -> None:
        """Swap the prompts (and which episode uses which) for the next run."""
        self.prompts = prompts
        self.prompt_index = None if prompt_index is None else np.asarray(prompt_index)

    def reset(self, task_index: np.ndarray) -> None:
        b, t = len(task_index), self.max_steps + 1
        self.task_index = np.asarray(task_index)
        if self.prompt_index is not None and len(self.prompt_index) != b:
            raise ValueError(f"prompt_index has {len(self.prompt_index)} entries for {b} episodes")
        self.states = np.zeros((b, t, self.norm.obs_dim), np.float32)
        self.actions = np.zeros((b, t, self.act_dim), np.float32)
        self.rewards = np.zeros((b, t), np.float32)
        self.rtg = np.zeros((b, t), np.float32)
        self.t = 0

    def act(self, obs: np.ndarray, last_reward: np.ndarray, active: np.ndarray) -> np.ndarray:
        t = self.t
        if t == 0:
            self.rtg[:, 0] = self.target / self.scale
        else:
            self.rewards[:, t - 1] = last_reward
            self.rtg[:, t] = self.rtg[:, t - 1] - last_reward / self.scale
        self.states[:, t] = self.norm(obs, self.task_index) if self.norm.per_task else self.norm(obs)
        batch = self.window(t)
        keys = self.choose(self) if self.choose else [None] * len(obs)
        actions = np.zeros((len(obs), self.act_dim), np.float32)
        with torch.no_grad():
            order = list(dict.fromkeys(keys))
            rows = {key: np.array([i for i, k in enumerate(keys) if k == key]) for key in order}
            subs = {key: {name: v[rows[key]] for name, v in batch.items()} for key in order}
            if self.batched and len(order) > 1 and None not in order:
                preds = grouped_forward(self.model, self._stack(order), [subs[k] for k in order])
            else:
                preds = [functional_call(self.model, self.weights[k] if k is not None else {},
                                         (subs[k],), strict=False) for k in order]
            for key, pred in zip(order, preds):
                actions[rows[key]] = pred[:, -1].float().cpu().numpy()
        self.actions[:, t] = actions
        self.t += 1
        return actions

    def _stack(self, keys: list) -> dict[str, torch.Tensor]:
        """The stacked weights of `keys` (cached: a gate reuses a few combinations)."""
        key = tuple(keys)
        if key not in self._stacked:
            self._stacked[key] = stack_weights([self.weights[k] for k in keys])
        return self._stacked[key]

    def window(self, t: int) -> dict[str, torch.Tensor]:
        """The last K steps up to t, left-padded like training segments."""
        k, b = self.context, len(self.task_index)
        start, width = max(0, t + 1 - k), min(t + 1, k)
        pad = k - width

        def padded(x: np.ndarray, fill: float) -> np.ndarray:
            out = np.full((b, k, *x.shape[2:]), fill, x.dtype)
            out[:, pad:] = x[:, start:t + 1]
            return out

        timesteps = np.zeros((b, k), np.int64)
        timesteps[:, pad:] = np.arange(start, t + 1)
        mask = np.zeros((b, k), np.float32)
        mask[:, pad:] = 1.0
        batch = {"states": padded(self.states, 0.0), "actions": padded(self.actions, PAD_ACTION),
                 "rtg": padded(self.rtg[..., None], 0.0), "timesteps": timesteps, "mask": mask}
        out = {n: torch.as_tensor(v, device=self.device) for n, v in batch.items()}
        if self.task_ids is not None:
            out["task"] = torch.as_tensor(np.asarray(self.task_ids)[self.task_index], device=self.device)
        if self.prompts is not None:
            index = self.task_index if self.prompt_index is None else self.prompt_index
            out.update({n: v[torch.as_tensor(index)].to(self.device)
                        for n, v in self.prompts.items()})
        return out
