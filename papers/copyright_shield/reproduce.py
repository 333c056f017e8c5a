"""`reproduce`: every (run name, seed) fine-tune side by side in `parallel_runs` processes,
the copyright feature inversion on the undefended model of the first seed, then
results.json, RESULTS.md, plots and grids under runs_dir/copyright_shield/<config>/reproduce/.

With `resume=latest` finished runs are reused and interrupted ones continue.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file

from papers.copyright_shield import claims, report
from papers.copyright_shield.config import CopyrightShieldConfig
from papers.copyright_shield.data import build_world
from papers.copyright_shield.model import load_base
from papers.copyright_shield.similarity import calibration
from papers.copyright_shield.train import GENERATIONS, fine_tune
from shared.cli import Context
from shared.results import build_results, summary_line, write_results
from shared.runs import new_reproduce_dir, run_jobs

TITLE = ("CopyrightShield: Spatial Similarity Guided Backdoor Defense against Copyright "
         "Infringement in Diffusion Models")


def prepare(cfg: CopyrightShieldConfig) -> None:
    """Build the cached base model once, before the runs start."""
    if cfg.model.name == "tiny":
        world = build_world(cfg, cfg.seed)
        load_base(cfg, world.avoid, torch.device("cpu"))


def calibration_table(cfg: CopyrightShieldConfig) -> dict:
    """The similarity's calibration on the first seed's world (similarity.calibration): clean
    entries against every target and near-copies against their target, with the threshold."""
    world = build_world(cfg, cfg.seed)
    clean = world.mix.images[world.mix.poison_of < 0]
    c = calibration(world.similarity, clean, world.references, cfg.similarity.threshold)
    return {"title": claims.CALIBRATION_TABLE,
            "columns": ["similarity", "clean q99", "clean max", "near-copy q01", "near-copy min", "threshold",
                        "separated"],
            "rows": [[cfg.similarity.name, round(c["clean_q99"], 3), round(c["clean_max"], 3), round(c["copy_q01"], 3),
                      round(c["copy_min"], 3), c["threshold"], c["separated"]]]}


def _one_run(args: tuple) -> dict:
    cfg, ctx, run, seed = args
    return fine_tune(cfg, ctx, run, seed)


def reproduce(cfg: CopyrightShieldConfig, ctx: Context) -> Path:
    out = new_reproduce_dir(cfg.runs_dir, ctx.slug, ctx.config_name)
    prepare(cfg)
    calib = calibration_table(cfg)  # the threshold is checked before any attack runs
    jobs = [(cfg, ctx, run, seed) for seed in cfg.seeds for run in cfg.train.runs]
    summaries = run_jobs(_one_run, jobs, cfg.parallel_runs, "copyright_shield runs")
    groups = report.by_run(summaries)
    methods = report.method_metrics(groups, cfg.eval.evals_per_epoch)
    tables = [report.curves_table(groups), claims.relative_table(methods), calib]
    world = build_world(cfg, cfg.seed)
    generations = {name: load_file(str(Path(runs[0]["run_dir"]) / GENERATIONS))["images"]
                   for name, runs in groups.items()}
    plots = []
    if "attack" in groups:
        tables.append(report.detection_table(groups))
        n = min(8, cfg.eval.cir_generations)
        gen = generations["attack"]
        refs = world.references.repeat_interleave(n, 0)[: len(gen)]
        report.similarity_histograms(world, world.similarity, gen, refs, cfg.similarity.threshold,
                                     out / "similarity_histograms.png")
        plots.append("similarity_histograms.png")
        if cfg.inversion.steps and cfg.model.name == "tiny":
            from papers.copyright_shield.inversion import invert_run

            inv = invert_run(cfg, Path(groups["attack"][0]["run_dir"]), cfg.seeds[0])
            tables.append(inv["table"])
            methods["inversion"] = inv["metrics"]
    report.bar_plot(methods, out / "fae_cir.png")
    plots.append("fae_cir.png")
    if any(n in groups for n in ("flip", "rotate", "unlinked")):
        report.geometry_plot(methods, out / "geometry.png")
        plots.append("geometry.png")
    report.attack_grid(world, generations, out / "grid.png")
    plots.append("grid.png")
    found, notes = claims.paper_claims(methods, tables)
    text = [
        f"{len(world.targets)} targets × {cfg.data.elements} elements, {cfg.data.image_size} px; "
        f"{cfg.attack.poisons_per_target} poisons per target × {cfg.attack.repeats}, poisoning ratio "
        f"{cfg.attack.ratio}; {cfg.train.epochs} epochs, batch {cfg.train.batch_size}, lr {cfg.train.lr}.",
        f"similarity: {cfg.similarity.name}, threshold {cfg.similarity.threshold}; FAE from "
        f"{cfg.eval.fae_generations} trigger generations {cfg.eval.evals_per_epoch}× per epoch, CIR from "
        f"{cfg.eval.cir_generations} per target at the end (DDIM {cfg.eval.sample_steps} steps, η = 0).",
        "units of every interval: (seed, target) pairs; FAE of a target never copied is censored at "
        "epochs + 1 / evals_per_epoch.",
        "detection [recon, v1]: joint = max over elements of feature × spatial score; thresholds are the "
        f"{cfg.detection.calibration_quantile} quantile of each score against a held-out, never-attacked target.",
    ]
    results = build_results(paper=ctx.slug, title=TITLE, config=ctx.config_name, seeds=cfg.seeds,
                            methods=methods, claims=found, protocol_notes=notes, tables=tables,
                            plots=plots, notes=text)
    write_results(out, results, announce=False)
    print((out / "RESULTS.md").read_text())
    print(summary_line(results, out / "results.json"), flush=True)
    return out
