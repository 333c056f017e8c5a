"""Replicated data parallelism for trainers whose every process holds the same model and draws
the same batches (same seed, same data stream), under `torchrun` or `accelerate launch`.

Each process computes the loss of its share of the rows of every batch, normalised by the
*whole* batch's count (so the shares' losses add up to the one-process loss), and the
gradients are summed over processes by hooks as each backward finishes. The replicas then take
identical optimizer steps, so the model, the data stream and any state derived from the
gradients (masks, clusters) stay equal on every process, and only the main process needs to
evaluate, log and write checkpoints. Unlike DDP this makes no assumption about how often or
where `backward` is called (several backwards per iteration, as HarmoDT's mask updates do).

One process (no launcher): every method is the identity, nothing is initialised.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import TypeVar

import numpy as np
import torch

from shared import UserError

T = TypeVar("T")


def launched_processes() -> int:
    """WORLD_SIZE set by torchrun / accelerate launch (1 without a launcher)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


class Replicas:
    """The processes of one launch: rank, world size, row shards and the collectives."""

    def __init__(self, device: torch.device) -> None:
        self.world = launched_processes()
        self.rank, self.device = 0, device
        if self.world == 1:
            return
        import torch.distributed as dist

        if not dist.is_initialized():
            backend = "nccl" if device.type == "cuda" else "gloo"
            dist.init_process_group(backend=backend)
        self.rank = dist.get_rank()
        if dist.get_world_size() != self.world:
            raise UserError(f"WORLD_SIZE={self.world} but the process group has {dist.get_world_size()}")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @staticmethod
    def local_device(device: torch.device) -> torch.device:
        """Under a launch on GPUs, process r uses cuda:(LOCAL_RANK % device count), so any
        number of processes maps onto the node's GPUs and none is asked to share by accident."""
        if device.type != "cuda" or device.index is not None or launched_processes() == 1:
            return device
        local = int(os.environ.get("LOCAL_RANK", "0"))
        return torch.device("cuda", local % max(1, torch.cuda.device_count()))

    def shard(self, rows: int) -> slice:
        """This process's contiguous share of `rows` (shares differ by at most one row)."""
        bounds = np.linspace(0, rows, self.world + 1).round().astype(int)
        return slice(int(bounds[self.rank]), int(bounds[self.rank + 1]))

    def sum_gradients(self, params: Iterable[torch.nn.Parameter]) -> None:
        """Sum every parameter's gradient over the processes as soon as backward has
        accumulated it (each process's loss is its share of the whole batch's loss)."""
        if self.world == 1:
            return
        import torch.distributed as dist

        for p in params:
            if p.requires_grad:
                p.register_post_accumulate_grad_hook(lambda q: dist.all_reduce(q.grad))

    def sum(self, value: float) -> float:
        """The sum of a float over the processes."""
        if self.world == 1:
            return value
        import torch.distributed as dist

        t = torch.tensor([value], dtype=torch.float64, device=self._comm_device)
        dist.all_reduce(t)
        return float(t.item())

    def broadcast(self, obj):
        """The main process's value of a picklable object, on every process."""
        if self.world == 1:
            return obj
        import torch.distributed as dist

        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0, device=self._comm_device)
        return box[0]

    def _on_main(self, fn: Callable[[], T], share: bool) -> T | None:
        """`fn()` on the main process; (ok, value or message) broadcast to every process."""
        outcome: tuple = ()
        if self.is_main:
            try:
                value = fn()
                outcome = (True, value if share else None)
            except UserError as exc:
                value, outcome = None, (False, str(exc))
        ok, shared_value = self.broadcast(outcome)
        if not ok:
            raise UserError(shared_value)
        return value if self.is_main else shared_value

    def from_main(self, fn: Callable[[], T]) -> T:
        """`fn()` on the main process, its result on every process; a UserError raised there
        is raised on every process (so none waits forever for a peer that gave up)."""
        return fn() if self.world == 1 else self._on_main(fn, share=True)

    def main_first(self, fn: Callable[[], T]) -> T:
        """`fn()` on the main process first (it builds caches alone), then on the others;
        a UserError on the main process is raised on every process."""
        if self.world == 1:
            return fn()
        result = self._on_main(fn, share=False)
        return result if self.is_main else fn()

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()

    @property
    def _comm_device(self) -> torch.device:
        return self.device if self.device.type == "cuda" else torch.device("cpu")
