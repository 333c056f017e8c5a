"""Throughput of the Meta-World data generator and evaluator.

    python -m shared.offline_rl.benchmark [--tasks MT10] [--workers 0] [--episodes 20]

The parallel generator should reach about 0.8 x cores x the bare single-core step rate on
workloads large enough to amortise its fixed costs (process start-up ~0.5 s, and ~0.6 s per
task per worker to build Meta-World's goal list and env). Measured on 2 cores (MT10, 200-step
episodes): bare loop ~2,800 steps/s; generation with 2 workers ~3,800 steps/s for 20
episodes per task (0.67 x, fixed costs) and ~5,100 steps/s for 100 per task (0.90 x, 39 s
for MT10 x 100 episodes incl. Minari writing); evaluator ~12 episodes/s with 1 worker and
~18 with 2 (100 episodes of 200 steps).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings

import numpy as np

from shared.offline_rl.datasets import Request, generate_episodes, load_datasets
from shared.offline_rl.evaluator import Evaluator
from shared.offline_rl.policies import ScriptedBatchPolicy
from shared.offline_rl.tasks import (
    MAX_PATH_LENGTH,
    make_env,
    resolve_workers,
    scripted_policy,
    task_set,
)


def bare_step_rate(task: str, steps: int) -> float:
    """Env steps/s of a plain single-core loop: scripted action + N(0, 0.1^2) noise, step,
    reset at the end of each 500-step episode (env construction not timed)."""
    env, policy = make_env(task, 0, MAX_PATH_LENGTH), scripted_policy(task)
    rng = np.random.default_rng(0)
    obs, _ = env.reset()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Constant\\(s\\) may be too high")
        start = time.perf_counter()
        for _ in range(steps):
            action = np.clip(policy.get_action(obs) + 0.1 * rng.standard_normal(4), -1, 1)
            obs, _, terminated, truncated, _ = env.step(action.astype(np.float32))
            if terminated or truncated:
                obs, _ = env.reset()
        return steps / (time.perf_counter() - start)


def generation_rate(tasks: list[str], episodes: int, max_steps: int, workers: int,
                    write: bool = False) -> float:
    """Env steps/s of generating `episodes` near-optimal episodes per task, including
    process start-up; with `write`, through `load_datasets` into a fresh temporary
    directory (Minari writing and checksums included)."""
    start = time.perf_counter()
    if write:
        with tempfile.TemporaryDirectory() as data_dir:
            load_datasets(tasks, "near-optimal", episodes, seed=0, max_steps=max_steps,
                          data_dir=data_dir, workers=workers)
    else:
        generate_episodes([Request(t, "near-optimal", episodes, 0, max_steps) for t in tasks],
                          workers)
    return len(tasks) * episodes * max_steps / (time.perf_counter() - start)


def evaluator_rate(tasks: list[str], goals: list[int], max_steps: int, workers: int) -> float:
    """Episodes/s of `Evaluator.run` with the batched scripted experts, full-length episodes
    (worker start-up excluded: workers persist across runs)."""
    with Evaluator(tasks, goals, max_steps, workers=workers) as evaluator:
        result = evaluator.run(ScriptedBatchPolicy(tasks))
    return result["episodes"] / result["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="MT10", help="a task set or comma-separated tasks")
    parser.add_argument("--workers", type=int, default=0, help="0 = all cores")
    parser.add_argument("--episodes", type=int, default=20, help="per task")
    parser.add_argument("--max-steps", type=int, default=200)
    args = parser.parse_args()
    tasks, workers = task_set(args.tasks), resolve_workers(args.workers)
    # Steps over time of the same number of steps of every task, as in the generator's mix.
    bare = len(tasks) / sum(1 / bare_step_rate(task, 1000) for task in tasks)
    rows = [("bare single-core loop (all tasks)", f"{bare:,.0f} steps/s", "")]
    for w in sorted({1, workers}):
        for write in (False, True):
            rate = generation_rate(tasks, args.episodes, args.max_steps, w, write=write)
            rows.append((f"generation, workers={w}{', Minari write' if write else ''}",
                         f"{rate:,.0f} steps/s", f"{rate / (w * bare):.2f} x workers x bare"))
    for w in sorted({1, workers}):
        rate = evaluator_rate(tasks, list(range(10)), args.max_steps, w)
        rows.append((f"evaluator, workers={w}, {len(tasks)} tasks x 10 goals",
                     f"{rate:,.2f} episodes/s", f"{rate * args.max_steps:,.0f} steps/s"))
    print(f"cores: {os.cpu_count()}; tasks: {', '.join(tasks)}; {args.episodes} episodes "
          f"x {args.max_steps} steps per task\n")
    print("| measurement | rate | note |\n|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
