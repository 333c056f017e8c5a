"""Batched acting for shared.offline_rl.Evaluator: one history per episode, last-K windows.

Each evaluation episode keeps its states, actions, rewards and returns-to-go; R̂ starts at
`target_return` and drops by each reward (both divided by `return_scale`). Episodes that use
different weights (a task's harmony mask θ ⊙ M_i, or the group the gate picks) are run in
one `torch.func.functional_call` per weight set; all others share one forward.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from papers.harmodt.data import PAD_ACTION, Normaliser, gate_rows

WeightChooser = Callable[["DTPolicy"], list]  # -> a weight-set key per episode


class DTPolicy:
    def __init__(self, model: nn.Module, norm: Normaliser, *, context: int, max_steps: int,
                 target_return: float, return_scale: float, device: torch.device,
                 prompts: dict[str, torch.Tensor] | None = None,
                 weights: dict[object, dict[str, torch.Tensor]] | None = None,
                 choose: WeightChooser | None = None, task_ids: list[int] | None = None) -> None:
        """`prompts`: per-task prompt tensors [n_tasks, P, ·]; `weights`: key -> parameter
        overrides; `choose(self)` -> key per episode; `task_ids` maps evaluator task index to
        the model's task id (MTDT/MTBC)."""
        self.model, self.norm, self.context, self.max_steps = model, norm, context, max_steps
        self.target, self.scale, self.device = target_return, return_scale, device
        self.prompts, self.weights, self.choose, self.task_ids = prompts, weights, choose, task_ids

    def reset(self, task_index: np.ndarray) -> None:
        b, t = len(task_index), self.max_steps + 1
        self.task_index = np.asarray(task_index)
        self.states = np.zeros((b, t, self.norm.mean.shape[0]), np.float32)
        self.actions = np.zeros((b, t, self.model.predict_action[0].out_features), np.float32)
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
        self.states[:, t] = self.norm(obs)
        batch = self.window(t)
        keys = self.choose(self) if self.choose else [None] * len(obs)
        actions = np.zeros((len(obs), self.actions.shape[2]), np.float32)
        with torch.no_grad():
            for key in dict.fromkeys(keys):
                rows = np.array([i for i, k in enumerate(keys) if k == key])
                sub = {name: v[rows] for name, v in batch.items()}
                params = self.weights[key] if key is not None else {}
                pred = functional_call(self.model, params, (sub,), strict=False)
                actions[rows] = pred[:, -1].float().cpu().numpy()
        self.actions[:, t] = actions
        self.t += 1
        return actions

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
            out.update({n: v[torch.as_tensor(self.task_index)].to(self.device)
                        for n, v in self.prompts.items()})
        return out

    def recent(self, steps: int) -> tuple[np.ndarray, np.ndarray]:
        """The gate's input: [B, steps, obs+act+1] rows (s_t, a_{t−1}, r_{t−1}/10), valid mask."""
        t, b = self.t, len(self.task_index)
        start, width = max(0, t + 1 - steps), min(t + 1, steps)
        out = np.zeros((b, steps, self.states.shape[2] + self.actions.shape[2] + 1), np.float32)
        for i in range(b):
            out[i, steps - width:] = gate_rows(self.states[i], self.actions[i], self.rewards[i],
                                               start, t + 1)
        valid = np.zeros((b, steps), bool)
        valid[:, steps - width:] = True
        return out, valid
