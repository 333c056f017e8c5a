"""`reproduce`: every sweep on every setting for every seed, then the claims table, the sweep
tables, results.json, RESULTS.md and plots.

One run directory (and wandb run) per (setting, seed); inside it one vectorised simulation
per (m, n) shape. With `resume=latest` finished (setting, seed) runs are reused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from papers.dsgda import claims, plots
from papers.dsgda.config import DSGDAConfig
from papers.dsgda.distributed import launched_world_size
from papers.dsgda.experiment import OUTPUT_OF_SETTING, base_point, grid, run_points, shapes
from shared import UserError
from shared.cli import Context
from shared.config import to_dict
from shared.results import build_results, summarize, write_results
from shared.runs import finish_run, mark_done, new_reproduce_dir, open_run, run_jobs, write_run_info
from shared.tracking import Tracker

TITLE = "Stability and Generalization for Distributed SGDA (Local-SGDA / Local-DSGDA)"
RELEVANT = ("problem.", "data.", "sgda.", "sweep.pairs", "sweep.etas", "sweep.local_steps",
            "sweep.topologies", "sweep.clients", "sweep.total_samples", "sweep.sweeps")
METRIC_NAMES = claims.METRIC_NAMES


@dataclass
class Job:
    cfg: DSGDAConfig
    ctx: Context
    setting: str
    seed: int


def run_job(job: Job) -> dict:
    """Every grid point of one setting and seed (reused when finished and resuming)."""
    torch.set_num_threads(1)
    cfg, ctx = job.cfg, job.ctx
    run_dir, done = open_run(cfg, ctx.slug, ctx.config_name, f"sweep-{job.setting}", job.seed, RELEVANT,
                             {"seed": job.seed, "setting": job.setting})
    if done is not None:
        return done
    points = [p for entries in grid(cfg).values() for _, p in entries]
    merged: dict = {"setting": job.setting, "seed": job.seed, "points": {}}
    with Tracker(run_dir, slug=ctx.slug, group=f"{ctx.config_name}-sweep-{job.setting}",
                 name=f"{ctx.slug}__sweep-{job.setting}__{ctx.config_name}__{job.seed}",
                 config=to_dict(cfg), use_wandb=cfg.wandb) as tracker:
        for group in shapes(points).values():
            out = run_points(cfg, job.setting, job.seed, group)
            merged["T"], merged["output"] = out["T"], out["output"]
            merged["points"].update(out["points"])
        base = merged["points"][base_point(cfg).key]
        for h, T in enumerate(merged["T"]):
            tracker.log({k: v[h] for k, v in base.items() if isinstance(v, list)}, step=T)
    return finish_run(run_dir, merged)


class Results:
    """Per-seed sweep results of every setting, read by point key, metric and horizon."""

    def __init__(self, cfg: DSGDAConfig, per_seed: dict[str, list[dict]]):
        self.cfg, self.per_seed = cfg, per_seed
        self.grid = grid(cfg)
        first = next(iter(per_seed.values()))[0]
        self.T = first["T"]

    def curves(self, setting: str, point, metric: str, output: str | None = None) -> list[list[float]]:
        """[seed][horizon] of a metric (output defaults to the setting's)."""
        output = output or OUTPUT_OF_SETTING[setting]
        key = metric if metric.startswith(("last/", "avg/")) else f"{output}/{metric}"
        return [run["points"][point.key][key] for run in self.per_seed[setting]]

    def final(self, setting: str, point, metric: str, output: str | None = None) -> list[float]:
        """[seed] at the last horizon."""
        return [c[-1] for c in self.curves(setting, point, metric, output)]

    def has(self, setting: str, point, metric: str) -> bool:
        entry = self.per_seed[setting][0]["points"][point.key]
        return f"{OUTPUT_OF_SETTING[setting]}/{metric}" in entry

    def W(self, setting: str, point) -> dict:
        return self.per_seed[setting][0]["points"][point.key]["W"]


def _label(value):
    return "/".join(map(str, value)) if isinstance(value, tuple) else value


def sweep_rows(res: Results, setting: str) -> list[list]:
    metrics = [m for m in ("eps", "client_eps", "gap", "gap_strong", "pop_pd", "pop_pd_strong", "train_pd",
                           "train_pd_strong", "pop_primal", "test_auc", "consensus", "contraction")
               if res.has(setting, base_point(res.cfg), m)]
    rows = []
    for sweep, entries in res.grid.items():
        for value, point in entries:
            rows.append([setting, sweep, _label(value), float(res.W(setting, point)["spectral_gap"]),
                         *(summarize(res.final(setting, point, m)) for m in metrics)])
    return rows, metrics


def curve_rows(res: Results, setting: str) -> list:
    """What the claims read at every horizon: ε and η·μₓ·T of the base point, ε at every η,
    the population primal risk at every N (per seed)."""
    def cells(point, metric):
        return [summarize(list(v)) for v in zip(*res.curves(setting, point, metric))]

    base = base_point(res.cfg)
    rows = [("T", res.cfg.sgda.steps, m, cells(base, m)) for m in ("eps", "contraction")]
    rows += [("eta", v, "eps", cells(p, "eps")) for v, p in res.grid.get("eta", [])]
    rows += [("N", v, "pop_primal", cells(p, "pop_primal")) for v, p in res.grid.get("N", [])]
    return rows


def reproduce(cfg: DSGDAConfig, ctx: Context) -> Path:
    world = launched_world_size()
    if world > 1:  # each rank would write its own result set
        raise UserError(f"reproduce runs the sweeps in the simulation, in sweep.processes worker "
                        f"processes; run it without torchrun (not {world} processes)")
    out = new_reproduce_dir(cfg.runs_dir, ctx.slug, ctx.config_name)
    write_run_info(out, cfg)
    jobs = [Job(cfg, ctx, setting, seed) for setting in cfg.sweep.settings for seed in cfg.seeds]
    done = run_jobs(run_job, jobs, cfg.sweep.processes, desc="dsgda sweeps")
    per_seed: dict[str, list[dict]] = {}
    for job, result in zip(jobs, done):
        per_seed.setdefault(job.setting, []).append(result)
    res = Results(cfg, per_seed)
    (out / "raw.json").write_text(json.dumps(per_seed) + "\n")
    tables, methods = [], {}
    for setting in cfg.sweep.settings:
        rows, metrics = sweep_rows(res, setting)
        tables.append({"title": f"{setting}: every grid point at T = {cfg.sgda.steps} "
                                f"({OUTPUT_OF_SETTING[setting]} output)",
                       "columns": ["setting", "sweep", "value", "spectral gap",
                                   *(METRIC_NAMES[m] for m in metrics)],
                       "rows": rows})
        tables.append(claims.curve_table(setting, OUTPUT_OF_SETTING[setting], res.T, curve_rows(res, setting)))
        base = base_point(cfg)
        methods[f"{setting}: {base.key}"] = {METRIC_NAMES[m]: summarize(res.final(setting, base, m))
                                             for m in metrics}
    plot_paths = plots.all_plots(res, out / "plots")
    results = build_results(
        paper=ctx.slug, title=TITLE, config=ctx.config_name, seeds=cfg.seeds, methods=methods,
        claims=[], tables=tables, plots=plot_paths,
        notes=["The paper publishes no experiments or code: the problems, grids, tests and "
               "thresholds here are ours (papers/dsgda/README.md).",
               f"ε, gaps and risks are means over {cfg.sweep.pairs} neighbouring-dataset pairs per "
               "seed; ± is the std over seeds. Every number is at the last horizon unless a claim "
               "says otherwise; nothing is a best-over-T pick.",
               "Outputs: time-averaged consensus iterate for cc and bilinear (C-C), last consensus "
               "iterate otherwise.",
               "Weak PD risks (Lei et al. 2021): sup_y′ E[F(x, y′)] − inf_x′ E[F(x′, y)], the expectation "
               "over the 2·pairs replicas of a grid point inside the sup and the inf; the strong form "
               "E[sup − inf] is reported beside it as *_strong. The population side is exact: clients "
               "sample the pool uniformly, so D is that distribution and F_D comes from the pool's "
               "moments. The held-out set serves the test AUC only.",
               "Per-client distance: (1/m) Σ_i ‖x_i − x′_i‖ + ‖y_i − y′_i‖ (the clients' time averages "
               "for a time-averaged output), beside ε on the consensus averages.",
               "η·μₓ·T: step size × the x-curvature of the empirical objective at the output (on "
               "the span of the per-sample gradients) × T; above 1 the coupled runs have been "
               "contracted by curvature (papers/dsgda/measures.py)."])
    results = claims.rederive(results)  # the claims read the tables, as a re-render does
    write_results(out, results)
    mark_done(out)
    return out
