"""Several CPU/GPU processes (torchrun or `accelerate launch`: WORLD_SIZE > 1), by hand on
torch.distributed (gloo on CPU, nccl on GPU).

Every process builds the same world and model and draws the same global batch from the same
generator; process r takes rows r, r + W, ... of it, and the gradients are averaged before
the (identical) optimiser step, so the weights stay equal on every process and the run is
the one-process run with the same global batch (up to the order of float sums). The main
process alone owns the run directory, evaluates, checkpoints and writes the summary.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def init() -> None:
    """Start the default process group once (a no-op for one process)."""
    if world_size() > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")


def broadcast(value):
    """The main process's `value` on every process."""
    if world_size() == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def shard(rows: torch.Tensor) -> torch.Tensor:
    """This process's share of a batch's row indices."""
    return rows[rank()::world_size()] if world_size() > 1 else rows


def average_gradients(params: list[torch.nn.Parameter]) -> None:
    if world_size() == 1:
        return
    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
            p.grad /= world_size()


def mean_scalar(value: float) -> float:
    """The mean of a number over the processes."""
    if world_size() == 1:
        return float(value)
    box = torch.tensor([float(value)], dtype=torch.float64)
    dist.all_reduce(box, op=dist.ReduceOp.SUM)
    return float(box) / world_size()
