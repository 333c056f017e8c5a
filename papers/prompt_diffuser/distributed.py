"""Running under a launcher (torchrun / accelerate launch, gloo on CPU).

One run here is a CPU job of a few hundred small steps, so a run is never split over
processes: `train` runs on the main process (the others wait at a barrier) and `reproduce`
deals its runs out to the processes (job i on rank i mod world), gathers every summary on
every process, and only the main process writes the results."""

from __future__ import annotations

import os
from collections.abc import Callable


def world() -> tuple[int, int]:
    """(world size, rank) from the launcher's environment (1, 0 without one)."""
    return int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0"))


def _group():
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo")
    return dist


def barrier() -> None:
    if world()[0] > 1:
        _group().barrier()


def shared_jobs(fn: Callable, jobs: list, run_local: Callable[[Callable, list], list]) -> list:
    """[fn(job) for job in jobs] with the jobs dealt out over the launcher's processes;
    `run_local(fn, my_jobs)` runs one process's share. Every process gets every result."""
    size, rank = world()
    if size == 1:
        return run_local(fn, jobs)
    mine = run_local(fn, jobs[rank::size])
    parts: list = [None] * size
    _group().all_gather_object(parts, mine)
    out: list = [None] * len(jobs)
    for r, results in enumerate(parts):
        out[r::size] = results
    return out
