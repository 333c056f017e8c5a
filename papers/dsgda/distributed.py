"""The `torch.distributed` backend: the m clients split over the processes torchrun starts
(single- or multi-node), gloo on CPU and NCCL on GPU.

Placement: rank r of a world of size w owns a contiguous block of clients, m // w of them or
one more (the first m mod w ranks take the extra ones), so any world size 1 ≤ w ≤ m works.
Under NCCL rank r uses `cuda:(local_rank % device_count)`; NCCL cannot put two ranks on one
GPU, so more processes per node than GPUs is refused with one line (fewer processes, each
with a larger block, do the same run).

Each process builds the same replicas as the simulation (the data generation is
deterministic), keeps its own block of clients and draws the same random numbers, so the
iterates equal the simulation's up to floating-point summation order. Mixing:
- W = 11ᵀ/m for every replica (Local-SGDA): each rank sums its block, one all-reduce of the
  stacked (x, y) sums, divided by m;
- otherwise (Local-DSGDA): a point-to-point exchange with the ranks that own a neighbour
  {l : W_il ≠ 0} of one of this rank's clients i, sending only the clients a peer's rows
  need, then x_i ← Σ_{l in the block} W_il x_l + Σ_{l received} W_il x_l.
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

LAUNCH = "torchrun --nproc_per_node=<processes> -m papers.dsgda train sgda.backend=distributed"


def under_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def launched_world_size() -> int:
    """WORLD_SIZE as torchrun set it (1 outside torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1")) if under_torchrun() else 1


def blocks(m: int, world: int) -> list[tuple[int, int]]:
    """[lo, hi) of each rank's clients: contiguous, sizes m // world or one more."""
    base, extra = divmod(m, world)
    bounds, lo = [], 0
    for r in range(world):
        hi = lo + base + (r < extra)
        bounds.append((lo, hi))
        lo = hi
    return bounds


def init(backend: str = "auto", clients: int | None = None) -> tuple[int, int, torch.device]:
    """(rank, world size, device) after joining the process group torchrun describes.

    Every check that can fail runs before the rendezvous, on every rank alike, so a mistake
    is one line on each rank and no rank waits for the others."""
    if not under_torchrun():
        raise UserError(f"sgda.backend=distributed needs torchrun, e.g. {LAUNCH}")
    world = int(os.environ["WORLD_SIZE"])
    if clients is not None and world > clients:
        raise UserError(f"world size {world} > sgda.clients = {clients}: every process needs at "
                        f"least one client; use --nproc_per_node ≤ {clients} (or more clients)")
    if backend == "auto":
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl" and not torch.cuda.is_available():
        raise UserError("sgda.dist_backend=nccl needs CUDA; use gloo on CPU")
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    device = torch.device("cpu")
    if backend == "nccl":
        count = torch.cuda.device_count()
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))
        if local_world > count:
            raise UserError(f"NCCL cannot put two processes on one GPU: {local_world} processes on "
                            f"this node but {count} GPU(s); use --nproc_per_node={min(count, clients or count)} "
                            "(each process then runs a block of clients) or sgda.dist_backend=gloo")
        device = torch.device(f"cuda:{local_rank % count}")
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=timedelta(minutes=10))
    return dist.get_rank(), dist.get_world_size(), device


class Mixer:
    """One rank's side of x_i ← Σ_l W_il x_l for the clients i of its block."""

    def __init__(self, W: torch.Tensor, rank: int, bounds: list[tuple[int, int]]):
        self.rank, self.m = rank, W.shape[-1]
        self.lo, self.hi = bounds[rank]
        self.full = bool(torch.allclose(W, torch.full_like(W, 1.0 / self.m), atol=1e-12))
        rows = slice(self.lo, self.hi)
        self.local = W[:, rows, rows]  # (R, c, c)
        used = (W != 0).any(0)  # (m, m): W_il ≠ 0 for some replica
        self.recv: dict[int, tuple[list[int], torch.Tensor]] = {}  # peer -> (its clients, W[:, block, them])
        self.send: dict[int, list[int]] = {}  # peer -> this block's clients (local index) it needs
        for s, (a, b) in enumerate(bounds):
            if s == rank:
                continue
            need = [j for j in range(a, b) if bool(used[rows, j].any())]
            needed = [j - self.lo for j in range(self.lo, self.hi) if bool(used[a:b, j].any())]
            if need:
                self.recv[s] = (need, W[:, rows][:, :, need])
            if needed:
                self.send[s] = needed
        self.peers = sorted(set(self.recv) | set(self.send))
        self.seconds = 0.0
        self.rounds = 0

    def outgoing(self, state: torch.Tensor) -> dict[int, torch.Tensor]:
        """What this rank sends each peer: the rows of its block that the peer's clients mix."""
        return {s: state[:, idx].contiguous() for s, idx in self.send.items()}

    def combine(self, state: torch.Tensor, received: dict[int, torch.Tensor]) -> torch.Tensor:
        """Σ_l W_il x_l for this block's clients i, from its own states and what it received."""
        out = torch.bmm(self.local, state)
        for s, (_, weights) in self.recv.items():
            out = out + torch.bmm(weights, received[s])
        return out

    def __call__(self, state: torch.Tensor) -> torch.Tensor:
        """state (R, c, d) of this block -> mixed state (R, c, d)."""
        start = time.perf_counter()
        if self.full:
            total = state.sum(1, keepdim=True)
            dist.all_reduce(total)
            out = (total / self.m).expand_as(state)
        else:
            bufs = {s: torch.empty(state.shape[0], len(need), state.shape[2], dtype=state.dtype,
                                   device=state.device) for s, (need, _) in self.recv.items()}
            ops = [dist.P2POp(dist.isend, t, s) for s, t in self.outgoing(state).items()]
            ops += [dist.P2POp(dist.irecv, bufs[s], s) for s in self.recv]
            for req in dist.batch_isend_irecv(ops) if ops else []:
                req.wait()
            out = self.combine(state, bufs)
        self.seconds += time.perf_counter() - start
        self.rounds += 1
        return out


def all_mean(v: torch.Tensor, m: int) -> torch.Tensor:
    """(R, c, d) of this block on every rank -> the mean over all m clients (R, d), on every rank."""
    out = v.sum(1)
    dist.all_reduce(out)
    return out / m


class BlockRun:
    """This rank's block of clients of every replica, one step at a time (`step`), with the
    Recorder's outputs; `run_client` loops it, gpu_check times it."""

    def __init__(self, problem, reps: Replicas, batch_size: int, hs: list[int], seed: int,
                 rank: int, world: int, device: torch.device):
        m = reps.clients
        self.problem, self.reps, self.batch_size, self.device = problem, reps, batch_size, device
        self.bounds = blocks(m, world)
        self.lo, self.hi = self.bounds[rank]
        self.gen = torch.Generator().manual_seed(seed)  # drawn on CPU so every device sees the same u
        self.z = reps.z[:, self.lo:self.hi].to(device)
        self.n = reps.n.to(device)
        self.lr_x, self.lr_y, self.K = reps.lr_x.to(device), reps.lr_y.to(device), reps.K.to(device)
        self.mixer = Mixer(reps.W.to(device), rank, self.bounds)
        self.dx = reps.x0.shape[1]
        c = self.hi - self.lo
        self.x = reps.x0[:, None].expand(-1, c, -1).to(device).clone()
        self.y = reps.y0[:, None].expand(-1, c, -1).to(device).clone()
        self.rec = Recorder(hs, lambda v: all_mean(v, m))
        self.mixes = {int(k) for k in reps.K.unique()}
        self.t = 0

    def step(self) -> None:
        self.t += 1
        t, reps = self.t, self.reps
        u = draw(self.gen, reps.num_streams, reps.clients, self.batch_size, reps.z.dtype)
        u = u[reps.stream][:, self.lo:self.hi].to(self.device)
        x, y = local_step(self.problem, self.x, self.y, sample(self.z, self.n, u), self.lr_x, self.lr_y)
        if any(t % k == 0 for k in self.mixes):
            mixed = self.mixer(torch.cat([x, y], -1))
            due = (t % self.K == 0)[:, None, None]
            x = torch.where(due, mixed[..., :self.dx], x)
            y = torch.where(due, mixed[..., self.dx:], y)
        self.x, self.y = x, y
        self.rec.update(t, x, y)


def run_client(problem, reps: Replicas, steps: int, batch_size: int, hs: list[int], seed: int,
               rank: int, world: int, device: torch.device, show_progress: bool = False) -> tuple[dict, dict]:
    """This process's block of clients of every replica; returns (trace on every rank, timing)."""
    run = BlockRun(problem, reps, batch_size, hs, seed, rank, world, device)
    bar = progress(total=steps, desc=f"clients {run.lo}..{run.hi - 1}", leave=False,
                   **({} if show_progress and rank == 0 else {"disable": True}))
    start = time.perf_counter()
    for _ in range(steps):
        run.step()
        bar.update(1)
    bar.close()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    total = time.perf_counter() - start
    mixer = run.mixer
    trace = {k: (v.cpu() if isinstance(v, torch.Tensor) else v) for k, v in run.rec.trace().items()}
    timing = {"seconds": total, "mix_seconds": mixer.seconds, "rounds": mixer.rounds,
              "seconds_per_round": mixer.seconds / max(mixer.rounds, 1),
              "peers": len(mixer.peers), "all_reduce": mixer.full, "world_size": world,
              "clients_per_process": [hi - lo for lo, hi in run.bounds]}
    return trace, timing
