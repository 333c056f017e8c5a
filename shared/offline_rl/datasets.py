"""Offline Meta-World datasets: generated locally and cached as Minari datasets, or read
from a user's D4RL-style HDF5 files or MTDiff-style per-episode `.npz` files.

Generated datasets live in `<data_dir>/minari/<dataset_id>/`, one per (task, generation),
with the cache key in the id: `metaworld-<task>-<generation>-<key>-v0`. Generation runs in
parallel over chunks of episodes of any task (so one task also uses every core) and gives
bit-identical arrays for any number of workers.

ML1 (`benchmark="ML1"`, meta-RL): episodes come from the partially observable envs of one
goal `split` ("train" for training data, "test" for the demonstrations prompts of held-out
goals are cut from), cycling over `goals` (all 50 of the split by default). The benchmark,
split and goal list are part of the cache key; MT1 keys without a goal list are unchanged.
"""

from __future__ import annotations

import math
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

from shared import UserError, runs
from shared.cache import cache_key
from shared.offline_rl.episodes import QUALITIES, Episode, QualityRecipe, generate_chunk
from shared.offline_rl.readers import d4rl_file, read_d4rl_hdf5, read_episode_npz_dir
from shared.offline_rl.store import read_dataset, write_dataset
from shared.offline_rl.tasks import (
    N_GOALS,
    check_benchmark,
    check_max_steps,
    check_task,
    resolve_workers,
)
from shared.tracking import progress

# Bump when the generated data would change for the same key (e.g. a new rollout rule).
GENERATOR_VERSION = 1
VERSIONED_PACKAGES = ("metaworld", "mujoco", "minari", "gymnasium", "numpy")
SOURCES = ("generate", "d4rl", "npz")


def package_versions() -> dict[str, str | None]:
    """The versions a generated dataset depends on (part of its cache key)."""
    return runs.package_versions(VERSIONED_PACKAGES, with_python=False)


def _key_parts(task: str, quality_generation: str, episodes: int, seed: int, max_steps: int,
               recipe: QualityRecipe, benchmark_seed: int, benchmark: str = "MT1",
               split: str = "train", goals: tuple[int, ...] | None = None) -> dict:
    schedule = {k: v for k, v in asdict(recipe).items() if k.startswith(("eps", "sigma"))}
    parts = {
        "task": task, "generation": quality_generation, "episodes": int(episodes),
        "seed": int(seed), "max_steps": int(max_steps), "recipe": schedule,
        "benchmark_seed": int(benchmark_seed), "generator_version": GENERATOR_VERSION,
        "versions": package_versions(),
    }
    if benchmark != "MT1":  # MT1 keys stay as they were before ML1 existed
        parts.update(benchmark=benchmark, split=split)
    if goals is not None:
        parts["goals"] = [int(g) for g in goals]
    return parts


def dataset_key(task: str, quality_generation: str, episodes: int, seed: int, max_steps: int,
                recipe: QualityRecipe, benchmark_seed: int = 0, benchmark: str = "MT1",
                split: str = "train", goals: tuple[int, ...] | None = None) -> str:
    """The cache key of one generated buffer (package versions included)."""
    return cache_key(**_key_parts(task, quality_generation, episodes, seed, max_steps, recipe,
                                  benchmark_seed, benchmark, split, goals))


@dataclass(frozen=True)
class Request:
    """One buffer to generate: `episodes` episodes of `task` made with `generation`."""

    task: str
    generation: str
    episodes: int
    seed: int
    max_steps: int
    benchmark_seed: int = 0
    benchmark: str = "MT1"
    split: str = "train"
    goals: tuple[int, ...] | None = None  # goal variations cycled over (None: all 50)

    @property
    def recipe(self) -> QualityRecipe:
        return QUALITIES[self.generation]

    def key_parts(self) -> dict:
        return _key_parts(self.task, self.generation, self.episodes, self.seed, self.max_steps,
                          self.recipe, self.benchmark_seed, self.benchmark, self.split,
                          self.goals)

    def dataset_id(self) -> str:
        kind = "" if self.benchmark == "MT1" else f"{self.benchmark.lower()}{self.split}-"
        return f"metaworld-{kind}{self.task}-{self.generation}-{cache_key(**self.key_parts())}-v0"


def _chunks(requests: list[Request], workers: int) -> list[tuple[Request, int, int]]:
    # About four chunks per worker balance the load; chunks stay within one task so a
    # worker builds each task's env once.
    total = sum(r.episodes for r in requests)
    size = max(1, math.ceil(total / (4 * workers)))
    return [(r, start, min(start + size, r.episodes))
            for r in requests for start in range(0, r.episodes, size)]


def _run_chunk(request: Request, start: int, stop: int) -> list[Episode]:
    return generate_chunk(request.task, request.recipe, request.episodes, start, stop,
                          request.seed, request.max_steps, request.benchmark_seed,
                          request.benchmark, request.split, request.goals)


def generate_episodes(requests: list[Request], workers: int = 0,
                      on_done: Callable[[Request, list[Episode]], None] | None = None
                      ) -> dict[Request, list[Episode]]:
    """Generate every request, in parallel over `workers` processes (1 = in this process),
    with one progress bar; `on_done(request, episodes)` runs as each request completes."""
    workers = resolve_workers(workers)
    chunks = _chunks(requests, workers)
    parts: dict[Request, dict[int, list[Episode]]] = {r: {} for r in requests}
    done: dict[Request, list[Episode]] = {}

    def collect(request: Request, start: int, episodes: list[Episode]) -> None:
        parts[request][start] = episodes
        if sum(len(p) for p in parts[request].values()) == request.episodes:
            done[request] = [ep for s in sorted(parts[request]) for ep in parts[request][s]]
            del parts[request]
            if on_done is not None:
                on_done(request, done[request])

    total = sum(r.episodes for r in requests)
    with progress(total=total, desc="generating episodes", unit="ep") as bar:
        if workers == 1 or len(chunks) == 1:
            for request, start, stop in chunks:
                collect(request, start, _run_chunk(request, start, stop))
                bar.update(stop - start)
        else:
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(min(workers, len(chunks)), mp_context=context) as pool:
                futures = {pool.submit(_run_chunk, *chunk): chunk for chunk in chunks}
                try:
                    for future in as_completed(futures):
                        request, start, stop = futures[future]
                        collect(request, start, future.result())
                        bar.update(stop - start)
                except BaseException:
                    pool.shutdown(wait=False, cancel_futures=True)  # fail fast
                    raise
    return done


def _store(data_dir: Path, request: Request, episodes: list[Episode]) -> list[Episode]:
    """Write a generated buffer; if another process stored it first, verify and use theirs."""
    target = data_dir / "minari" / request.dataset_id()
    info = {"key": cache_key(**request.key_parts()), "key_parts": request.key_parts(),
            "recipe": asdict(request.recipe), "description": request.recipe.description}
    if write_dataset(target, episodes, info):
        return episodes
    return read_dataset(target, request.task)[1]


def _generated(requests: list[Request], data_dir: Path, workers: int) -> dict[str, list[Episode]]:
    out, missing = {}, []
    for request in requests:
        target = data_dir / "minari" / request.dataset_id()
        if target.exists():
            out[request.task] = read_dataset(target, request.task)[1]
        else:
            missing.append(request)
    if missing:
        stored: dict[Request, list[Episode]] = {}

        def store(request: Request, episodes: list[Episode]) -> None:
            stored[request] = _store(data_dir, request, episodes)

        generate_episodes(missing, workers, on_done=store)
        out.update({r.task: stored[r] for r in missing})
    return {r.task: out[r.task] for r in requests}


def _check_args(tasks: list[str], quality: str, episodes: int, seed: int, source: str) -> None:
    if quality not in QUALITIES:
        raise UserError(f"unknown dataset quality {quality!r} (one of {', '.join(QUALITIES)})")
    if source not in SOURCES:
        raise UserError(f"unknown dataset source {source!r} (one of {', '.join(SOURCES)})")
    if episodes < 1 or seed < 0:
        raise UserError(f"episodes must be >= 1 and seed >= 0, got {episodes} and {seed}")
    if len(set(tasks)) != len(tasks):
        raise UserError("the task list has duplicates")
    for task in tasks:
        check_task(task)


def _check_goals(goals) -> tuple[int, ...] | None:
    if goals is None:
        return None
    goals = tuple(int(g) for g in goals)
    if not goals or len(set(goals)) != len(goals) or not all(0 <= g < N_GOALS for g in goals):
        raise UserError(f"goals must be distinct indices in 0..{N_GOALS - 1}, got {list(goals)}")
    return goals


def load_datasets(tasks: list[str], quality: str, episodes: int, *, seed: int, max_steps: int,
                  data_dir: str | Path, workers: int = 0, source: str = "generate",
                  path: str = "", benchmark_seed: int = 0, benchmark: str = "MT1",
                  split: str = "train", goals: list[int] | None = None
                  ) -> dict[str, list[Episode]]:
    """task -> episodes of the given quality.

    source="generate": the first `episodes` episodes of each task's cached buffer, generated
    (in parallel over `workers` processes, 0 = all cores, 1 = this process) when missing.
    "sub-optimal" with `episodes=N` is the first N episodes of the 2N-episode "near-optimal"
    buffer. source="d4rl": `path/<task>-<quality>.hdf5`, else `path/<task>.hdf5`, in the
    D4RL layout (see `read_d4rl_hdf5`). source="npz": `path/<task>/*.npz` (see
    `read_episode_npz_dir`). File sources give the first `episodes` episodes found (all of
    them when there are fewer); `seed`, `max_steps` and `data_dir` only apply to generation.
    `<data_dir>/minari` is a valid MINARI_DATASETS_PATH for Minari's own tools.
    `benchmark`/`split`/`goals` (generation only): "ML1" episodes of the given goal split,
    episode j on goal `goals[j % len(goals)]` (see the module docstring).
    """
    _check_args(tasks, quality, episodes, seed, source)
    check_benchmark(benchmark, split)
    goals = _check_goals(goals)
    if source != "generate" and (benchmark != "MT1" or goals is not None):
        raise UserError(f"benchmark/split/goals apply to generated data only, not source {source!r}")
    if source == "d4rl":
        return {task: read_d4rl_hdf5(d4rl_file(path, task, quality), task=task)[:episodes]
                for task in tasks}
    if source == "npz":
        if not path:
            raise UserError("source 'npz' needs a path: the directory holding <task>/ folders")
        return {task: read_episode_npz_dir(Path(path) / task, task=task)[:episodes]
                for task in tasks}
    recipe = QUALITIES[quality]
    requests = [Request(task, recipe.generation, recipe.generated_episodes(episodes), int(seed),
                        check_max_steps(max_steps), int(benchmark_seed), benchmark, split, goals)
                for task in tasks]
    generated = _generated(requests, Path(data_dir), workers)
    return {task: generated[task][:episodes] for task in tasks}
