"""`reproduce`: build (or load) the base model and the reward model once, run every
(method, seed) and (SDPO ablation, seed) side by side in `parallel_runs` processes, then
write results.json, RESULTS.md, the curves and the before/after image grids.

With `resume=latest` finished runs are reused and interrupted ones continue from their
latest checkpoint.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch

from papers.sdpo import claims, report
from papers.sdpo.config import SDPOExperimentConfig
from papers.sdpo.train import check_inputs, load_backbone, new_accelerator, on_main, run_name, train
from shared import UserError
from shared.cli import Context
from shared.results import build_results, summary_line, write_results
from shared.runs import new_reproduce_dir, run_jobs

TITLE = "SDPO: Aligning Few-Step Diffusion Models with Dense Reward Difference Learning"


def prepare(cfg: SDPOExperimentConfig) -> None:
    """Build the cached base model and reward model before the runs start (once, here)."""
    from papers.sdpo.rewards import build_reward

    check_inputs(cfg)
    device = torch.device("cpu") if cfg.device == "auto" else torch.device(cfg.device)
    load_backbone(cfg, device)
    build_reward(cfg, device)


def jobs(cfg: SDPOExperimentConfig) -> list[tuple[str, str, int]]:
    runs = [(m, "", s) for m in cfg.train.methods for s in cfg.seeds]
    ablation_seeds = cfg.seeds[: cfg.train.ablation_seeds]
    runs += [("sdpo", a, s) for a in cfg.train.ablations for s in ablation_seeds]
    return runs


def _one_run(args: tuple) -> dict:
    cfg, ctx, method, ablation, seed = args
    return train(cfg, ctx, method, ablation, seed)


def run_all(cfg: SDPOExperimentConfig, ctx: Context) -> list[dict]:
    return run_jobs(_one_run, [(cfg, ctx, m, a, s) for m, a, s in jobs(cfg)], cfg.parallel_runs, "sdpo runs")


def copy_grids(groups: dict[str, list[dict]], out: Path) -> list[str]:
    """The before grid (the base model, shared) and each run name's after grid (first seed)."""
    files = []
    for name, runs in groups.items():
        run_dir = Path(runs[0]["run_dir"])
        if not files and (run_dir / "grid-before.png").exists():
            shutil.copy(run_dir / "grid-before.png", out / "grid_base.png")
            files.append("grid_base.png")
        if (run_dir / "grid-after.png").exists():
            shutil.copy(run_dir / "grid-after.png", out / f"grid_{name}.png")
            files.append(f"grid_{name}.png")
    return files


def reproduce(cfg: SDPOExperimentConfig, ctx: Context) -> Path:
    """Every run, then the results. Under `accelerate launch` / torchrun (several processes)
    the runs go one after another, each on every process; the main process alone makes the
    reproduce directory and writes the results (one result set)."""
    check_inputs(cfg)
    processes = int(os.environ.get("WORLD_SIZE", "1"))
    if processes > 1 and cfg.parallel_runs != 1:
        raise UserError(f"parallel_runs={cfg.parallel_runs}: under {processes} processes the runs "
                        "already share the processes; set parallel_runs=1")
    accelerator = new_accelerator(cfg) if processes > 1 else None
    if accelerator is None:
        out = new_reproduce_dir(cfg.runs_dir, ctx.slug, ctx.config_name)
    else:
        out = on_main(accelerator, lambda: new_reproduce_dir(cfg.runs_dir, ctx.slug, ctx.config_name))
    prepare(cfg)
    summaries = run_all(cfg, ctx)
    if accelerator is not None and not accelerator.is_main_process:
        return out
    groups = report.by_name(summaries)
    metrics = report.method_metrics(cfg, groups)
    methods = ["base", *cfg.train.methods]
    ablations = ["sdpo", *[run_name("sdpo", a) for a in cfg.train.ablations]]
    tables = [report.step_table(cfg, metrics, methods,
                                f"Held-out {cfg.reward.name} reward by sampling steps (final evaluation)",
                                with_paper=True)]
    if cfg.train.ablations:
        tables.append(report.step_table(cfg, metrics, ["base", *ablations], "SDPO ablations", with_paper=False))
    tables += [claims.settings_table(cfg, ctx.config_name), report.curves(cfg, groups)]
    found, tables = claims.with_claims(metrics, tables, cfg.seeds)
    plots = report.plots(cfg, groups, out) + copy_grids(groups, out)
    notes = [
        f"reward: {cfg.reward.name}; policy: {cfg.policy.model} "
        f"({'LoRA rank ' + str(cfg.policy.lora_rank) if cfg.policy.lora_rank else 'full fine-tuning'}); "
        f"T = {cfg.sample.steps} training steps; {cfg.train.epochs} epochs × "
        f"{2 * cfg.sample.pairs_per_epoch} trajectories.",
        "paper columns: aesthetic score on SD-Turbo after ~30k samples (read off the authors' curves); "
        "our scale and reward differ, compare the direction and the shape across step counts.",
        f"held-out prompts × {cfg.eval.images_per_prompt} fixed noise seeds, "
        "identical for every method, seed and evaluation; final evaluation, never the best.",
    ]
    results = build_results(paper=ctx.slug, title=TITLE, config=ctx.config_name, seeds=cfg.seeds,
                            methods=metrics, claims=found, protocol_notes=[], tables=tables,
                            plots=plots, notes=notes)
    write_results(out, results, announce=False)
    print((out / "RESULTS.md").read_text())
    print(summary_line(results, out / "results.json"), flush=True)
    return out
