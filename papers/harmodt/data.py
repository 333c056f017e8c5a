"""Offline data for HarmoDT: per-task datasets, state normalisation, DT segments, prompts.

Datasets come from `shared.offline_rl` (generated from Meta-World's scripted policies, or
read from the user's D4RL-layout HDF5 / per-episode npz files). States are normalised with
one mean/std over all training tasks, so no method gets the task identity from it.
Segments follow the DT recipe: a random episode, a random start, up to K steps, left-padded
with s = 0, a = −10, R̂ = 0, t = 0 and mask 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from papers.harmodt.config import HarmoDTConfig
from shared.offline_rl import Episode, load_datasets, task_set

PAD_ACTION = -10.0


@dataclass
class TaskData:
    task: str
    episodes: list[Episode]  # the training data of this task (one quality)
    prompts: list[Episode]  # expert demonstrations prompts are cut from


@dataclass
class Normaliser:
    mean: np.ndarray
    std: np.ndarray

    def __call__(self, states: np.ndarray) -> np.ndarray:
        return ((states - self.mean) / self.std).astype(np.float32)

    @classmethod
    def fit(cls, episodes: list[Episode]) -> Normaliser:
        states = np.concatenate([e.observations for e in episodes])
        return cls(states.mean(0).astype(np.float32), (states.std(0) + 1e-6).astype(np.float32))


def _load(cfg: HarmoDTConfig, tasks: list[str], quality: str, episodes: int):
    d = cfg.data
    return load_datasets(tasks, quality, episodes, seed=d.seed, max_steps=d.max_steps,
                         data_dir=cfg.data_dir, workers=d.workers,
                         source=d.source if quality != "expert" else "generate", path=d.path)


def train_tasks(cfg: HarmoDTConfig) -> list[str]:
    return task_set(cfg.data.tasks)


def unseen_tasks(cfg: HarmoDTConfig) -> list[str]:
    return task_set(cfg.data.unseen_tasks) if cfg.data.unseen_tasks else []


def episodes_for(cfg: HarmoDTConfig, quality: str) -> int:
    return 2 * cfg.data.episodes if quality == "near-optimal" else cfg.data.episodes


def load_quality(cfg: HarmoDTConfig, tasks: list[str], quality: str) -> dict[str, list[Episode]]:
    """The configured number of episodes per task of one quality."""
    return _load(cfg, tasks, quality, episodes_for(cfg, quality))


def load_task_data(cfg: HarmoDTConfig, quality: str) -> list[TaskData]:
    """The training tasks' data of one quality, with their expert prompt demonstrations."""
    tasks = train_tasks(cfg)
    data = load_quality(cfg, tasks, quality)
    prompts = load_prompts(cfg, tasks)
    return [TaskData(t, data[t], prompts[t]) for t in tasks]


def load_prompts(cfg: HarmoDTConfig, tasks: list[str]) -> dict[str, list[Episode]]:
    return _load(cfg, tasks, "expert", cfg.data.prompt_episodes)


def _returns_to_go(rewards: np.ndarray) -> np.ndarray:
    return np.cumsum(rewards[::-1])[::-1].astype(np.float32)


class SegmentSampler:
    """Random K-step segments of one task's episodes, as padded numpy arrays."""

    def __init__(self, episodes: list[Episode], steps: int, norm: Normaliser,
                 return_scale: float, max_ep_len: int) -> None:
        self.steps, self.max_ep_len = steps, max_ep_len
        self.states = [norm(e.observations) for e in episodes]
        self.actions = [e.actions.astype(np.float32) for e in episodes]
        self.rewards = [e.rewards.astype(np.float32) for e in episodes]
        self.rtg = [_returns_to_go(e.rewards) / return_scale for e in episodes]

    def sample(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        k = self.steps
        out = {"states": np.zeros((n, k, self.states[0].shape[1]), np.float32),
               "actions": np.full((n, k, self.actions[0].shape[1]), PAD_ACTION, np.float32),
               "rewards": np.zeros((n, k), np.float32),
               "rtg": np.zeros((n, k, 1), np.float32), "timesteps": np.zeros((n, k), np.int64),
               "mask": np.zeros((n, k), np.float32)}
        for row in range(n):
            e = int(rng.integers(len(self.states)))
            start = int(rng.integers(len(self.states[e])))
            stop = min(start + k, len(self.states[e]))
            width = stop - start
            out["states"][row, k - width:] = self.states[e][start:stop]
            out["actions"][row, k - width:] = self.actions[e][start:stop]
            out["rewards"][row, k - width:] = self.rewards[e][start:stop]
            out["rtg"][row, k - width:, 0] = self.rtg[e][start:stop]
            out["timesteps"][row, k - width:] = np.minimum(np.arange(start, stop), self.max_ep_len - 1)
            out["mask"][row, k - width:] = 1.0
        return out

    def windows(self, n: int, steps: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Gate inputs: n windows of 1..steps recent rows ending at a random step, left-padded."""
        obs_act = self.states[0].shape[1] + self.actions[0].shape[1] + 1
        rows = np.zeros((n, steps, obs_act), np.float32)
        valid = np.zeros((n, steps), bool)
        for i in range(n):
            e = int(rng.integers(len(self.states)))
            end = int(rng.integers(len(self.states[e]))) + 1
            width = min(int(rng.integers(1, steps + 1)), end)
            rows[i, steps - width:] = gate_rows(self.states[e], self.actions[e], self.rewards[e],
                                                end - width, end)
            valid[i, steps - width:] = True
        return rows, valid


def gate_rows(states: np.ndarray, actions: np.ndarray, rewards: np.ndarray, start: int,
              stop: int) -> np.ndarray:
    """Rows (s_t, a_{t−1}, r_{t−1}/10) for t in [start, stop), zeros before an episode's start.

    The same convention as DTPolicy.recent, so the gate sees at test time what it saw here."""
    width = stop - start
    prev_a = np.zeros((width, actions.shape[1]), np.float32)
    prev_r = np.zeros(width, np.float32)
    lo = max(start, 1)
    prev_a[lo - start:] = actions[lo - 1:stop - 1]
    prev_r[lo - start:] = rewards[lo - 1:stop - 1]
    return np.concatenate([states[start:stop], prev_a, prev_r[:, None] / 10.0], -1)


def prompt_keys(segment: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {f"prompt_{k}": v for k, v in segment.items() if k != "rewards"}


def to_torch(batch: dict[str, np.ndarray], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: torch.as_tensor(v, device=device) for k, v in batch.items()}


class MultiTaskBatches:
    """Per-task segment and prompt samplers behind one `batch(task_index, n, rng)` call."""

    def __init__(self, tasks: list[TaskData], context: int, prompt_steps: int,
                 norm: Normaliser, return_scale: float, max_ep_len: int) -> None:
        self.names = [t.task for t in tasks]
        self.segments = [SegmentSampler(t.episodes, context, norm, return_scale, max_ep_len)
                         for t in tasks]
        self.prompts = [SegmentSampler(t.prompts, prompt_steps, norm, return_scale, max_ep_len)
                        for t in tasks]

    def batch(self, task: int, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        out = self.segments[task].sample(n, rng)
        out.update(prompt_keys(self.prompts[task].sample(n, rng)))
        out["task"] = np.full(n, task, np.int64)
        return out
