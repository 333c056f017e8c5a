"""The prepared GPU check of dsgda's paper path: `train --config paper` (Local-DSGDA on a 4×4
torus, m = 16 clients × n = 1000 samples, 16 neighbouring pairs = 32 replicas, float64, AUC
problem with 20 features) on the distributed backend, as `torchrun --nproc_per_node=1` runs
it on a one-GPU node: one NCCL process owning the whole block of 16 clients (the step of
rank r of a larger world is the same on its smaller block, plus the neighbour exchange).

    python -m papers.dsgda.gpu_check --size paper --steps 400   # one GPU, well under a minute
    python -m papers.dsgda.gpu_check --size tiny --steps 3      # CPU, gloo (the test)

A step is `distributed.BlockRun.step`: every client of every replica draws its sample, takes
one simultaneous descent/ascent step with the projection onto Y, mixes with its torus
neighbours every K = 5 steps, and updates the recorder's running sums (all-reduced at the
log-spaced horizons). FLOPs per step are counted once with FlopCounterMode; they are tiny
(the step is elementwise and launch-bound), and the iterates are float64, for which
shared.gpu_check has no peak, so MFU is reported as None.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import torch

from papers.dsgda import distributed
from papers.dsgda.algorithm import horizons
from papers.dsgda.config import DSGDAConfig
from papers.dsgda.experiment import base_point, build_replicas, problem_for
from shared.config import load_config

CONFIGS = Path(__file__).parent / "configs"
SIZES = {"paper": ("paper", []), "tiny": ("smoke", ["sgda.topology=torus", "sgda.backend=distributed"])}


def _one_process_group() -> None:
    """A world of one (what torchrun --nproc_per_node=1 sets up), unless already under torchrun."""
    if distributed.under_torchrun():
        return
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK="0", WORLD_SIZE="1",
                      LOCAL_RANK="0", LOCAL_WORLD_SIZE="1")


def run(size: str, steps: int, device: torch.device) -> list[dict]:
    from shared.device import close_distributed
    from shared.gpu_check import measure

    name, overrides = SIZES[size]
    cfg = load_config(DSGDAConfig, CONFIGS, name, ["wandb=false", *overrides])
    s = cfg.sgda
    _one_process_group()
    backend = "nccl" if device.type == "cuda" else "gloo"
    rank, world, dev = distributed.init(backend, s.clients)
    try:
        problem, pool = problem_for(cfg, cfg.problem.setting)
        reps = build_replicas(cfg, problem, pool, [base_point(cfg)], cfg.seed, cfg.sweep.pairs)
        block = distributed.BlockRun(problem, reps, s.batch_size, horizons(s.steps, s.eval_points),
                                     cfg.seed, rank, world, dev)
        from torch.utils.flop_counter import FlopCounterMode

        counter = FlopCounterMode(display=False)
        with counter:
            for _ in range(s.local_steps):  # one round: K local steps and one mixing
                block.step()
        flops = counter.get_total_flops() / s.local_steps
        result = measure(block.step, steps=steps, device=dev, warmup=10,
                         name=f"train --config {name} (distributed, world 1)",
                         setting=cfg.problem.setting, clients=s.clients, replicas=reps.size,
                         samples_per_client=s.samples_per_client, topology=s.topology,
                         local_steps=s.local_steps, dtype=s.dtype, backend=backend,
                         counted_flops_per_step=flops)
        result["mix_rounds"] = block.mixer.rounds  # over the counted round, warm-up and timed steps
        result["client_steps_per_s"] = result["steps_per_s"] * reps.size * s.clients
        result["mfu_note"] = ("None: float64 iterates (no peak in the table) and an elementwise, "
                              "launch-bound step")
        return [result]
    finally:
        close_distributed(wait=False)


def main(argv: list[str] | None = None) -> int:
    from shared.gpu_check import paper_main

    return paper_main("dsgda", run, argv)


if __name__ == "__main__":
    sys.exit(main())
