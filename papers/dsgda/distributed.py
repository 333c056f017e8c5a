"""The `torch.distributed` backend: one process per client, launched with torchrun
(single- or multi-node), gloo on CPU and NCCL on GPU.

Each process builds the same replicas as the simulation (the data generation is
deterministic), keeps its own client's slice and draws the same random numbers, so the
iterates equal the simulation's up to floating-point summation order. Mixing:
- W = 11ᵀ/m for every replica (Local-SGDA): one all-reduce of the stacked (x, y);
- otherwise (Local-DSGDA): point-to-point exchange with the neighbours {l : W_il ≠ 0} only,
  then x_i ← W_ii x_i + Σ_l W_il x_l.
The outputs (consensus and time averages) are all-reduced only at the evaluation horizons;
they are not part of the algorithm's communication and are not counted in its timing.
"""

from __future__ import annotations

import os
import time
from datetime import timedelta

import torch
import torch.distributed as dist

from papers.dsgda.algorithm import Recorder, Replicas, draw, local_step, sample
from shared import UserError
from shared.tracking import progress


def under_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def init(backend: str = "auto", clients: int | None = None) -> tuple[int, int, torch.device]:
    """(rank, world size, device) after joining the process group torchrun describes."""
    if not under_torchrun():
        raise UserError("sgda.backend=distributed needs torchrun, e.g. "
                        "torchrun --nproc_per_node=<clients> -m papers.dsgda train sgda.backend=distributed")
    if backend == "auto":
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl" and not torch.cuda.is_available():
        raise UserError("sgda.dist_backend=nccl needs CUDA; use gloo on CPU")
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    device = torch.device(f"cuda:{local_rank}") if backend == "nccl" else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=timedelta(minutes=10))
    rank, world = dist.get_rank(), dist.get_world_size()
    if clients is not None and world != clients:
        raise UserError(f"sgda.backend=distributed runs one process per client: "
                        f"world size {world} but sgda.clients = {clients}")
    return rank, world, device


class Mixer:
    """Client i's side of x_i ← Σ_l W_il x_l over the process group."""

    def __init__(self, W: torch.Tensor, rank: int):
        self.rank, self.m = rank, W.shape[-1]
        self.full = bool(torch.allclose(W, torch.full_like(W, 1.0 / self.m), atol=1e-12))
        self.self_weight = W[:, rank, rank]  # (R,)
        row = W[:, rank]  # (R, m)
        self.peers = [j for j in range(self.m) if j != rank and bool((row[:, j] != 0).any())]
        self.weights = {j: row[:, j] for j in self.peers}
        self.seconds = 0.0
        self.rounds = 0

    def __call__(self, state: torch.Tensor) -> torch.Tensor:
        """state (R, 1, d) -> mixed state (R, 1, d)."""
        start = time.perf_counter()
        if self.full:
            out = state.clone()
            dist.all_reduce(out)
            out /= self.m
        else:
            send = state.contiguous()
            recv = {j: torch.empty_like(send) for j in self.peers}
            ops = [dist.P2POp(dist.isend, send, j) for j in self.peers]
            ops += [dist.P2POp(dist.irecv, recv[j], j) for j in self.peers]
            for req in dist.batch_isend_irecv(ops) if ops else []:
                req.wait()
            out = self.self_weight[:, None, None] * state
            for j in self.peers:
                out = out + self.weights[j][:, None, None] * recv[j]
        self.seconds += time.perf_counter() - start
        self.rounds += 1
        return out


def all_mean(v: torch.Tensor, m: int) -> torch.Tensor:
    """(R, 1, d) on every rank -> the mean over all clients (R, d), on every rank."""
    out = v[:, 0].clone()
    dist.all_reduce(out)
    return out / m


def run_client(problem, reps: Replicas, steps: int, batch_size: int, hs: list[int], seed: int,
               rank: int, device: torch.device, show_progress: bool = False) -> tuple[dict, dict]:
    """This process's client of every replica; returns (trace on every rank, timing)."""
    m = reps.clients
    gen = torch.Generator().manual_seed(seed)  # drawn on CPU so every device sees the same u
    dtype = reps.z.dtype
    z = reps.z[:, rank:rank + 1].to(device)
    n = reps.n.to(device)
    lr_x, lr_y, K = reps.lr_x.to(device), reps.lr_y.to(device), reps.K.to(device)
    mixer = Mixer(reps.W.to(device), rank)
    dx = reps.x0.shape[1]
    x = reps.x0[:, None].to(device).clone()
    y = reps.y0[:, None].to(device).clone()
    rec = Recorder(hs, lambda v: all_mean(v, m))
    mixes = {int(k) for k in reps.K.unique()}
    bar = progress(total=steps, desc=f"client {rank}", leave=False,
                   **({} if show_progress and rank == 0 else {"disable": True}))
    start = time.perf_counter()
    for t in range(1, steps + 1):
        u = draw(gen, reps.num_streams, m, batch_size, dtype)[reps.stream][:, rank:rank + 1].to(device)
        x, y = local_step(problem, x, y, sample(z, n, u), lr_x, lr_y)
        if any(t % k == 0 for k in mixes):
            mixed = mixer(torch.cat([x, y], -1))
            due = (t % K == 0)[:, None, None]
            x = torch.where(due, mixed[..., :dx], x)
            y = torch.where(due, mixed[..., dx:], y)
        rec.update(t, x, y)
        bar.update(1)
    bar.close()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    total = time.perf_counter() - start
    trace = {k: (v.cpu() if isinstance(v, torch.Tensor) else v) for k, v in rec.trace().items()}
    timing = {"seconds": total, "mix_seconds": mixer.seconds, "rounds": mixer.rounds,
              "seconds_per_round": mixer.seconds / max(mixer.rounds, 1),
              "peers": len(mixer.peers), "all_reduce": mixer.full}
    return trace, timing
