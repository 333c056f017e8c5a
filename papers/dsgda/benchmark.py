"""Speed of both backends (not a test; numbers go into the README).

1. Simulation throughput: client-steps per second (replicas × clients × steps / wall time)
   for every setting at several replica counts, one torch thread.
2. Distributed backend: wall time per communication round (K local steps + one mixing) and
   the mixing's own time (all-reduce for the full W, neighbour exchange for a ring), with m
   processes under torchrun (gloo on CPU), against the simulation of the same run.

    python -m papers.dsgda.benchmark [--clients 4] [--steps 400] [--skip-distributed]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from papers.dsgda.algorithm import horizons, simulate
from papers.dsgda.config import DSGDAConfig
from papers.dsgda.experiment import Point, build_replicas, problem_for

REPO = Path(__file__).resolve().parents[2]


def simulation_throughput(setting: str, points: int, pairs: int, steps: int, m: int = 8) -> float:
    cfg = DSGDAConfig()
    cfg = replace(cfg, sweep=replace(cfg.sweep, pairs=pairs))
    problem, pool = problem_for(cfg, setting)
    pts = [Point(m, 50, 5, 0.01 * (1 + i), "full" if i % 2 else "ring", "iid") for i in range(points)]
    reps = build_replicas(cfg, problem, pool, pts, 0, pairs)
    simulate(problem, reps, 20, 1, [20], 0)  # warm-up
    start = time.perf_counter()
    simulate(problem, reps, steps, 1, horizons(steps, 4), 0)
    seconds = time.perf_counter() - start
    return reps.size * m * steps / seconds


def _train(launcher: list[str], runs: str, extra: list[str]) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "REPRO_PROGRESS": "0"}
    args = ["-m", "papers.dsgda", "train", "--config", "smoke", f"runs_dir={runs}", "wandb=false", *extra]
    proc = subprocess.run([*launcher, *args], cwd=REPO, env=env, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(proc.stderr[-2000:])
    run = sorted(Path(runs).glob("dsgda/smoke/train-*/seed*"))[-1]
    return json.loads((run / "summary.json").read_text())


def distributed_rounds(m: int, steps: int, K: int, topology: str) -> dict:
    extra = [f"sgda.clients={m}", f"sgda.steps={steps}", f"sgda.local_steps={K}",
             f"sgda.topology={topology}", "sweep.pairs=4", "problem.setting=cc", "sgda.eval_points=2"]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={m}"]
    with tempfile.TemporaryDirectory() as tmp:
        dist = _train(torchrun, f"{tmp}/d", [*extra, "sgda.backend=distributed"])
        sim = _train([sys.executable], f"{tmp}/s", extra)
    rounds = dist["timing"]["rounds"]
    return {"topology": topology, "m": m, "K": K, "rounds": rounds,
            "dist_s_per_round": dist["timing"]["seconds"] / rounds,
            "dist_mix_s_per_round": dist["timing"]["seconds_per_round"],
            "sim_s_per_round": sim["timing"]["seconds"] / rounds}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--skip-distributed", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print("simulation (1 thread, m = 8, float64): client-steps/s")
    for setting in ("cc", "scsc", "plsc", "ncnc"):
        rates = {2 * pairs * points: simulation_throughput(setting, points, pairs, args.steps)
                 for points, pairs in ((1, 8), (4, 16), (16, 16))}
        print(f"  {setting:5s} " + "  ".join(f"R={r}: {v:,.0f}" for r, v in rates.items()))
    if args.skip_distributed:
        return
    print(f"distributed (torchrun, {args.clients} processes, gloo) vs simulation, ms per round")
    for topology in ("full", "ring"):
        r = distributed_rounds(args.clients, args.steps, 1, topology)
        print(f"  {topology:5s} K=1: distributed {1e3 * r['dist_s_per_round']:.3f} "
              f"(mixing {1e3 * r['dist_mix_s_per_round']:.3f}), simulation "
              f"{1e3 * r['sim_s_per_round']:.3f} over {r['rounds']} rounds (loops only)")


if __name__ == "__main__":
    main()
