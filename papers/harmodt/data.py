"""Offline data for HarmoDT: per-task datasets, prompts and the G-HarmoDT gate's inputs.

Datasets come from `shared.offline_rl` (generated from Meta-World's scripted policies, or
read from the user's D4RL-layout HDF5 / per-episode npz files). The DT data pipeline is
`shared.offline_rl` too: states are normalised with one mean/std per task, as the authors'
code does (`data.normalise=per-task`; `shared` = one mean/std over all training tasks, the
behaviour before issue 21; G-HarmoDT is task-agnostic and always uses the shared one, since
a per-task normaliser would hand it the task identity); segments follow the DT recipe (a
random episode, a random start, up to K steps, left-padded with s = 0, a = −10, R̂ = 0,
t = 0 and mask 0); prompts are the last P steps of the highest-return expert demonstration
of the task (`data.prompt=best-tail`, `PromptSelector` mode "best-tail", as Prompt-DT and
HarmoDT) or random P-step windows (`window`, before issue 21); batches are
`MultiTaskBatches`.

`data.source=npz` reads `<path>/<task>/`; when only the authors' / MTDiff's v2 folder
`<path>/<task-v2>/` exists it is used instead, with a one-line notice that v2 data are
evaluated in v3 environments.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from papers.harmodt.config import HarmoDTConfig
from shared import UserError
from shared.offline_rl import Episode, load_datasets, task_set
from shared.offline_rl.batches import TaskData
from shared.offline_rl.readers import read_episode_npz_dir
from shared.offline_rl.segments import Normaliser, SegmentSampler

TASK_AGNOSTIC = ("g-harmodt",)  # methods that must not get the task identity from the normaliser


def npz_task_dir(path: str | Path, task: str) -> Path:
    """`path/<task>`, else the authors' / MTDiff's v2 name `path/<task with -v2>` (with a
    one-line notice on stderr); a missing folder is a one-line UserError."""
    root = Path(path)
    if not str(path):
        raise UserError("source 'npz' needs a path: the directory holding <task>/ folders")
    if (root / task).is_dir():
        return root / task
    v2 = task[:-3] + "-v2" if task.endswith("-v3") else task
    if v2 != task and (root / v2).is_dir():
        print(f"harmodt: {root / v2} holds Meta-World v2 data; it is trained on as {task} and "
              "evaluated in the v3 environment", file=sys.stderr)
        return root / v2
    raise UserError(f"no {task}/ (or {v2}/) episode folder in {root}")


def _load(cfg: HarmoDTConfig, tasks: list[str], quality: str, episodes: int):
    d = cfg.data
    if d.source == "npz" and quality != "expert":
        return {t: read_episode_npz_dir(npz_task_dir(d.path, t), task=t)[:episodes] for t in tasks}
    return load_datasets(tasks, quality, episodes, seed=d.seed, max_steps=d.max_steps,
                         data_dir=cfg.data_dir, workers=d.workers,
                         source=d.source if quality != "expert" else "generate", path=d.path)


def fit_normaliser(cfg: HarmoDTConfig, method: str, episodes_by_task: list[list[Episode]]) -> Normaliser:
    """Per-task state statistics (the authors'), or one mean/std over every task's steps
    (`data.normalise=shared`, and always for the task-agnostic G-HarmoDT)."""
    if cfg.data.normalise == "per-task" and method not in TASK_AGNOSTIC:
        return Normaliser.fit_per_task(episodes_by_task)
    return Normaliser.fit([e for eps in episodes_by_task for e in eps])


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
