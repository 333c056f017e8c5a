"""Meta-World v3 task sets, goal-indexed environments and scripted expert policies.

Every environment is built directly from a Meta-World benchmark of one task, and a
`gymnasium.wrappers.TimeLimit` cuts the episode at `max_steps`:

- "MT1" (default, multi-task RL): `metaworld.MT1(task, seed=benchmark_seed)`; goal variation
  `g` is `train_tasks[g]` (50 per task, fixed for a given seed) and the goal position is
  observable: the last 3 of the 39 observation entries.
- "ML1" (meta-RL): `metaworld.ML1(task, seed=benchmark_seed)`; its 50 `train_tasks` and 50
  held-out `test_tasks` (`split`) are drawn by Meta-World with seeds `benchmark_seed` and
  `benchmark_seed + 1`, and are *partially observable*: Meta-World sets
  `_partially_observable` from the task and then writes zeros where the goal would be, so the
  goal has to be inferred (e.g. from a prompt). The ML1 train goals are the MT1 goals of the
  same seed (same draws), only hidden.

`goal_position(env)` reads the goal the env is scored against (what an MT observation ends
with); scripted experts need it in ML1, learned policies must not use it. Meta-World
environments ignore the seed passed to `reset`: once the goal variation is set, an episode
depends only on the actions taken.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import os
import pickle
from typing import Any

import gymnasium
import metaworld
import numpy as np
from metaworld import env_dict
from metaworld.policies import ENV_POLICY_MAP

from shared import UserError

N_GOALS = 50
BENCHMARKS = ("MT1", "ML1")
SPLITS = ("train", "test")
GOAL_SLICE = slice(36, 39)  # where an MT observation holds the goal position
MAX_PATH_LENGTH = 500  # Meta-World refuses to step an episode past 500 steps
OBS_DIM = 39
ACT_DIM = 4

MT50 = list(env_dict.ALL_V3_ENVIRONMENTS)

# HarmoDT (arXiv 2405.18080) config/MetaWorld/task.json, `mt30_task_list`, in its order
# (v2 names there; the same tasks in v3).
_HARMODT_MT30 = [
    "basketball", "bin-picking", "button-press-topdown", "button-press", "button-press-wall",
    "coffee-button", "coffee-pull", "coffee-push", "dial-turn", "disassemble", "door-close",
    "door-lock", "door-open", "door-unlock", "hand-insert", "drawer-close", "drawer-open",
    "faucet-open", "faucet-close", "handle-press-side", "handle-press", "handle-pull-side",
    "handle-pull", "lever-pull", "peg-insert-side", "pick-place-wall", "pick-out-of-hole",
    "reach", "push-back", "push",
]
# Continual World's CW10 sequence (Wołczyk et al., 2021), in its order.
_CW10 = [
    "hammer", "push-wall", "faucet-close", "push-back", "stick-pull", "handle-press-side",
    "push", "shelf-place", "window-close", "peg-unplug-side",
]
_MT5 = ["basketball", "bin-picking", "button-press-topdown", "button-press", "button-press-wall"]

TASK_SETS: dict[str, list[str]] = {
    "MT5": [f"{name}-v3" for name in _MT5],
    "MT10": list(env_dict.MT10_V3),
    "MT30": [f"{name}-v3" for name in _HARMODT_MT30],
    "MT50": MT50,
    "CW10": [f"{name}-v3" for name in _CW10],
}


def _resolve_task(name: str) -> str:
    """A v3 task name; `reach` and `reach-v3` both give `reach-v3`."""
    name = name.strip()
    for candidate in (name, f"{name}-v3"):
        if candidate in env_dict.ALL_V3_ENVIRONMENTS:
            return candidate
    choices = list(TASK_SETS) + MT50
    close = difflib.get_close_matches(name, choices, n=4, cutoff=0.5)
    hint = f" (did you mean: {', '.join(close)}?)" if close else ""
    raise UserError(f"unknown Meta-World task or task set {name!r}{hint}")


def task_set(name_or_csv: str) -> list[str]:
    """The tasks of a named set (MT5, MT10, MT30, MT50, CW10) or of a comma-separated list
    of tasks and sets. Task names may omit `-v3`; repeats are dropped, the order is kept."""
    tasks = []
    for part in (p.strip() for p in name_or_csv.split(",")):
        if part.upper() in TASK_SETS:
            tasks += TASK_SETS[part.upper()]
        elif part:
            tasks.append(_resolve_task(part))
    if not tasks:
        raise UserError("empty task list: give a task set (MT5, MT10, MT30, MT50, CW10) or tasks")
    return list(dict.fromkeys(tasks))


def check_task(task: str) -> str:
    """`task` itself when it is a v3 task name, else a one-line UserError."""
    if task not in env_dict.ALL_V3_ENVIRONMENTS:
        _resolve_task(task)  # raises with close matches when it is not a shortened name
        raise UserError(f"task {task!r} needs its full v3 name ({_resolve_task(task)!r})")
    return task


def check_max_steps(max_steps: int) -> int:
    if not 1 <= int(max_steps) <= MAX_PATH_LENGTH:
        raise UserError(f"max_steps must be in 1..{MAX_PATH_LENGTH} (Meta-World's limit), "
                        f"got {max_steps}")
    return int(max_steps)


def resolve_workers(workers: int) -> int:
    """A worker count: 0 means every core (`os.cpu_count()`)."""
    if workers < 0:
        raise UserError(f"workers must be >= 0 (0 = all cores), got {workers}")
    return workers or os.cpu_count() or 1


def stable_task_hash(task: str) -> int:
    """A 64-bit integer of the task name that, unlike `hash()`, is the same in every process."""
    return int.from_bytes(hashlib.sha256(task.encode()).digest()[:8], "little")


def check_benchmark(benchmark: str, split: str = "train") -> tuple[str, str]:
    """(benchmark, split), or a one-line UserError: MT1 has train goals only."""
    if benchmark not in BENCHMARKS:
        raise UserError(f"unknown Meta-World benchmark {benchmark!r} (one of {', '.join(BENCHMARKS)})")
    if split not in SPLITS:
        raise UserError(f"unknown goal split {split!r} (one of {', '.join(SPLITS)})")
    if benchmark == "MT1" and split != "train":
        raise UserError("MT1 has no test goals: use benchmark 'ML1' for held-out goals")
    return benchmark, split


@functools.cache
def _benchmark(task: str, benchmark_seed: int, benchmark: str = "MT1") -> metaworld.Benchmark:
    # Building MT1 resets a throw-away env 50 times (~0.5 s), ML1 100 times; every env of a
    # task shares it.
    if benchmark == "ML1":
        return metaworld.ML1(task, seed=benchmark_seed)
    return metaworld.MT1(task, seed=benchmark_seed)


def goal_tasks(task: str, benchmark_seed: int = 0, benchmark: str = "MT1",
               split: str = "train") -> list:
    """The 50 `metaworld.Task`s of one split (goal index g is entry g)."""
    check_task(task)
    check_benchmark(benchmark, split)
    bench = _benchmark(task, benchmark_seed, benchmark)
    return bench.train_tasks if split == "train" else bench.test_tasks


def goal_vectors(task: str, benchmark_seed: int = 0, benchmark: str = "MT1",
                 split: str = "train") -> np.ndarray:
    """[50, d] Meta-World `rand_vec`s of a split: the randomised object and goal positions
    that make each goal variation (what ML1's train/test split is made of).

    `Task.data` is the pickle Meta-World itself builds in this process (and unpickles in
    `set_task`); no file is read here."""
    return np.stack([pickle.loads(t.data)["rand_vec"]
                     for t in goal_tasks(task, benchmark_seed, benchmark, split)])


def make_env(task: str, goal: int, max_steps: int, benchmark_seed: int = 0, *,
             benchmark: str = "MT1", split: str = "train") -> gymnasium.Env:
    """Meta-World `task` with goal variation `goal` (0..49) of `benchmark`'s `split`,
    truncated at `max_steps`."""
    check_task(task)
    check_max_steps(max_steps)
    check_benchmark(benchmark, split)
    if not 0 <= goal < N_GOALS:
        raise UserError(f"goal index must be in 0..{N_GOALS - 1}, got {goal}")
    bench = _benchmark(task, benchmark_seed, benchmark)
    env = bench.train_classes[task]()
    env.set_task(goal_tasks(task, benchmark_seed, benchmark, split)[goal])
    return gymnasium.wrappers.TimeLimit(env, max_episode_steps=max_steps)


def scripted_policy(task: str) -> Any:
    """Meta-World's hand-written expert for `task`: `get_action(obs)` (clip it to [-1, 1]).
    It reads the goal from `obs[GOAL_SLICE]`: in ML1, write `goal_position(env)` there first."""
    return ENV_POLICY_MAP[check_task(task)]()


def goal_position(env: gymnasium.Env) -> np.ndarray:
    """The goal position the env scores against ([3] float64; what an MT observation ends
    with). Meta-World 3.1.1 exposes it only as the private `_get_pos_goal()`."""
    return np.array(env.unwrapped._get_pos_goal(), dtype=np.float64)


def set_goal(env: gymnasium.Env, task: str, goal: int, benchmark_seed: int = 0, *,
             benchmark: str = "MT1", split: str = "train") -> None:
    """Switch an env from `make_env(task, ...)` to goal variation `goal` (effective at reset)."""
    env.unwrapped.set_task(goal_tasks(task, benchmark_seed, benchmark, split)[goal])
