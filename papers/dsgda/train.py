"""`train`: one configuration (sgda.*) on one problem, with sweep.pairs neighbouring pairs,
on the simulation or on torch.distributed (under torchrun, each process a block of clients).

Writes into its run directory: summary.json (every measure at every horizon, the final
ones, W's spectral gap, the backend's timing), metrics.jsonl / wandb (one record per
horizon) and trace.pt (the consensus and time-averaged iterates of every replica)."""

from __future__ import annotations

import json
import time

import torch

from papers.dsgda import distributed
from papers.dsgda.algorithm import simulate
from papers.dsgda.config import DSGDAConfig
from papers.dsgda.experiment import base_point, run_points
from shared import UserError
from shared.cli import Context
from shared.config import to_dict
from shared.device import close_distributed
from shared.runs import (
    check_same_config,
    is_done,
    mark_done,
    read_summary,
    resolve_run_dir,
    write_run_info,
)
from shared.tracking import Tracker

RELEVANT = ("problem.", "data.", "sgda.", "sweep.pairs", "seed")


def final_measures(entry: dict, output: str) -> dict:
    """The setting's output at the last horizon: {metric: value}."""
    return {key.split("/", 1)[1]: values[-1] for key, values in entry.items()
            if key.startswith(f"{output}/")}


def _broadcast(obj, rank: int):
    if not torch.distributed.is_initialized():
        return obj
    box = [obj if rank == 0 else None]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]


def train(cfg: DSGDAConfig, ctx: Context) -> dict:
    """Run (or reuse, with resume=latest) one training run; returns its summary on rank 0
    and {} on the other ranks."""
    setting, seed = cfg.problem.setting, cfg.seed
    dist_mode = cfg.sgda.backend == "distributed"
    world = distributed.launched_world_size()
    if not dist_mode and world > 1:
        raise UserError(f"train under torchrun ({world} processes) needs sgda.backend=distributed; "
                        "the simulation runs every client in one process (drop torchrun)")
    rank, device = 0, torch.device("cpu")
    if dist_mode:
        rank, world, device = distributed.init(cfg.sgda.dist_backend, cfg.sgda.clients)
    try:
        run_dir = None
        status: tuple = ("ok", False)
        if rank == 0:
            try:
                run_dir, resuming = resolve_run_dir(cfg.resume, cfg.runs_dir, ctx.slug, ctx.config_name,
                                                    f"train-{setting}", seed)
                if resuming:
                    check_same_config(run_dir, cfg, RELEVANT)
                status = ("ok", resuming and is_done(run_dir))
            except UserError as exc:  # every rank stops with the same line, none waits
                status = ("error", str(exc))
        status = _broadcast(status, rank)
        if status[0] == "error":
            raise UserError(status[1])
        if status[1]:
            return read_summary(run_dir) if rank == 0 else {}
        timing: dict = {}

        def on_backend(problem, reps, hs):
            if not dist_mode:
                loop_start = time.perf_counter()
                trace = simulate(problem, reps, cfg.sgda.steps, cfg.sgda.batch_size, hs, seed,
                                 show_progress=True, desc=f"{setting} simulation")
                timing.update(seconds=time.perf_counter() - loop_start,
                              rounds=cfg.sgda.steps // cfg.sgda.local_steps)
                return trace
            trace, timing_ = distributed.run_client(problem, reps, cfg.sgda.steps, cfg.sgda.batch_size,
                                                    hs, seed, rank, world, device, show_progress=True)
            timing.update(timing_)
            return trace

        start = time.perf_counter()
        point = base_point(cfg)
        result = run_points(cfg, setting, seed, [point], trace_fn=on_backend, keep_trace=True,
                            measure=rank == 0)  # only rank 0 writes, so only it measures
        seconds = time.perf_counter() - start
        if rank != 0:
            return {}
        return _write(cfg, ctx, run_dir, result, point, seconds, timing)
    finally:
        if dist_mode:
            close_distributed(wait=False)


def _write(cfg: DSGDAConfig, ctx: Context, run_dir, result: dict, point, seconds: float,
           timing: dict) -> dict:
    setting = cfg.problem.setting
    write_run_info(run_dir, cfg, {"seed": cfg.seed, "setting": setting, "point": point.key})
    entry = result["points"][point.key]
    output = result["output"]
    torch.save(result.pop("trace"), run_dir / "trace.pt")
    summary = {
        "setting": setting, "backend": cfg.sgda.backend, "point": point.key, "output": output,
        "W": entry["W"], "T": result["T"], "final": final_measures(entry, output),
        "curves": entry, "seconds": seconds, "timing": timing, "run_dir": str(run_dir),
    }
    with Tracker(run_dir, slug=ctx.slug, group=f"{ctx.config_name}-train-{setting}",
                 name=f"{ctx.slug}__train-{setting}__{ctx.config_name}__{cfg.seed}",
                 config=to_dict(cfg), use_wandb=cfg.wandb) as tracker:
        for h, T in enumerate(result["T"]):
            tracker.log({key: values[h] for key, values in entry.items() if isinstance(values, list)}, step=T)
        tracker.summary(summary["final"])
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    mark_done(run_dir)
    return summary
