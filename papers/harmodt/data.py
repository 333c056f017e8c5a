"""Offline data for HarmoDT: per-task datasets, prompts and the G-HarmoDT gate's inputs.

Datasets come from `shared.offline_rl` (generated from Meta-World's scripted policies, or
read from the user's D4RL-layout HDF5 / per-episode npz files). The DT data pipeline is
`shared.offline_rl` too: states are normalised with one mean/std over all training tasks
(`Normaliser.fit`), so no method gets the task identity from it; segments follow the DT
recipe (a random episode, a random start, up to K steps, left-padded with s = 0, a = −10,
R̂ = 0, t = 0 and mask 0); prompts are random 5-step windows of expert demonstrations
(`PromptSelector` mode "window"); batches are `MultiTaskBatches`.
"""

from __future__ import annotations

import numpy as np

from papers.harmodt.config import HarmoDTConfig
from shared.offline_rl import Episode, load_datasets, task_set
from shared.offline_rl.batches import TaskData
from shared.offline_rl.segments import SegmentSampler

PROMPT_MODE = "window"  # a random K-step window of a random expert demonstration


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


def gate_rows(states: np.ndarray, actions: np.ndarray, rewards: np.ndarray, start: int,
              stop: int) -> np.ndarray:
    """Rows (s_t, a_{t−1}, r_{t−1}/10) for t in [start, stop), zeros before an episode's start.

    The same convention as `recent_gate_rows`, so the gate sees at test time what it saw here."""
    width = stop - start
    prev_a = np.zeros((width, actions.shape[1]), np.float32)
    prev_r = np.zeros(width, np.float32)
    lo = max(start, 1)
    prev_a[lo - start:] = actions[lo - 1:stop - 1]
    prev_r[lo - start:] = rewards[lo - 1:stop - 1]
    return np.concatenate([states[start:stop], prev_a, prev_r[:, None] / 10.0], -1)


def gate_windows(sampler: SegmentSampler, n: int, steps: int, rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Gate inputs: n windows of 1..steps recent rows ending at a random step, left-padded."""
    obs_act = sampler.states[0].shape[1] + sampler.actions[0].shape[1] + 1
    rows = np.zeros((n, steps, obs_act), np.float32)
    valid = np.zeros((n, steps), bool)
    for i in range(n):
        e = int(rng.integers(len(sampler.states)))
        end = int(rng.integers(len(sampler.states[e]))) + 1
        width = min(int(rng.integers(1, steps + 1)), end)
        rows[i, steps - width:] = gate_rows(sampler.states[e], sampler.actions[e], sampler.rewards[e],
                                            end - width, end)
        valid[i, steps - width:] = True
    return rows, valid


def recent_gate_rows(policy, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """The gate's input at test time from a `shared.offline_rl.DTPolicy`'s history:
    [B, steps, obs+act+1] rows (s_t, a_{t−1}, r_{t−1}/10) and their valid mask."""
    t, b = policy.t, len(policy.task_index)
    start, width = max(0, t + 1 - steps), min(t + 1, steps)
    out = np.zeros((b, steps, policy.states.shape[2] + policy.actions.shape[2] + 1), np.float32)
    for i in range(b):
        out[i, steps - width:] = gate_rows(policy.states[i], policy.actions[i], policy.rewards[i],
                                           start, t + 1)
    valid = np.zeros((b, steps), bool)
    valid[:, steps - width:] = True
    return out, valid
