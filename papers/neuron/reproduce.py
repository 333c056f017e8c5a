"""`reproduce`: encoders per split; the held-out sweep of every head's (lr, logit scale) on
each split's seen classes (first seed); then every head at its chosen values (methods with
GZSL, Neuron ablations with ZSL at Neuron's chosen values, each with one validation head for
its validation curve) for every split and seed; the result tables, the claims computed from
them (`papers.neuron.claims`) and plots.

Numbers per (method, unseen size): each seed's metric averaged over that size's splits,
then mean ± std over seeds."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from papers.neuron import pipeline
from papers.neuron.claims import (
    ENCODER_CURVE_TITLE,
    ENCODER_TITLE,
    GZSL_TITLE,
    HEAD_TITLE,
    SWEEP_TITLE,
    VAL_TITLE,
    ZSL_KEYS,
    ZSL_TITLE,
    build_claims,
    config_budget,
    zsl_column,
)
from papers.neuron.config import NeuronExperimentConfig
from papers.neuron.heads import extend_points, sweep_grid, with_hparams
from papers.neuron.train import HeadJob, TuneJob, run_head, run_tune
from shared.cli import Context
from shared.results import build_results, line_plot, summarize, write_results
from shared.runs import mark_done, new_reproduce_dir, run_jobs, write_run_info

TITLE = "Neuron: Context-Aware Evolving Representations for Zero-Shot Skeleton Action Recognition"
CONTEXT = {  # unseen top-1 (%), NTU-60 55/5 and NTU-120 96/24, from the brief (other papers)
    "TDSM": (86.49, 65.06), "SA-DVAE": (82.37, 46.12), "STAR": (81.4, 44.3), "PURLS": (79.23, 52.01),
    "SMIE": (77.98, 45.3), "CADA-VAE": (76.84, 35.77), "SynSE": (75.81, 38.7)}


@dataclass
class SplitJob:
    cfg: NeuronExperimentConfig
    name: str
    unseen: list[int]


def build_split(job: SplitJob) -> dict:
    """Pre-train this split's encoder and cache its features (in a worker process):
    {"acc": seen-class test top-1, "curve": [[step, lr, loss, seen acc or NaN] per epoch]}."""
    torch.set_num_threads(1)
    f = pipeline.split_features(job.cfg, job.unseen, job.name, show_progress=False)
    return {"acc": f["encoder_seen_acc"], "curve": f["encoder_curve"]}


def run_any(job) -> dict:
    """A sweep point or a head run (one worker function for both)."""
    return run_tune(job) if isinstance(job, TuneJob) else run_head(job)


def tune_jobs(cfg: NeuronExperimentConfig, ctx: Context, split_list, points=None) -> list[TuneJob]:
    """Sweep points to run, first seed: `points[(method, split)]` = [(lr, scale)] (default:
    every method × split × the config's starting grid)."""
    return [TuneJob(with_hparams(cfg, lr, scale), ctx, name, unseen, method, "", cfg.seeds[0], lr, scale)
            for name, unseen in split_list for method in cfg.experiment.methods
            for lr, scale in (sweep_grid(cfg, method) if points is None else points.get((method, name), []))]


def _score(r: dict) -> float:
    v = r["val_zsl"]
    return float(v) if np.isfinite(v) else -1.0  # a diverged point is never chosen


def chosen(sweep: list[dict]) -> dict[tuple[str, str], tuple[float, float | None]]:
    """{(method, split): (lr, scale)} with the best held-out ZSL (the first in grid order on ties)."""
    best: dict = {}
    for r in sweep:
        key = (r["method"], r["split"])
        if key not in best or _score(r) > _score(best[key]):
            best[key] = r
    return {k: (r["lr"], r["scale"]) for k, r in best.items()}


def run_sweep(cfg: NeuronExperimentConfig, ctx: Context, split_list, processes: int) -> list[dict]:
    """The held-out sweep, one rule for every head: the starting grid (tune.lrs ×
    tune.logit_scales), then up to `tune.extend` rounds in which each head whose choice lacks
    a swept neighbour on either side of an axis gets those neighbours (`extend_points`: the
    next lr below/above at its scale, the next scale below/above at its lr, beyond an end
    geometrically). Each row carries its "round"."""
    sweep: list[dict] = []
    todo = None
    for rnd in range(cfg.tune.extend + 1):
        jobs = tune_jobs(cfg, ctx, split_list, todo)
        if not jobs:
            break
        for r in run_jobs(run_tune, jobs, processes, desc=f"sweep round {rnd}"):
            sweep.append({**r, "round": rnd})
        picks = chosen(sweep)
        todo = {key: extend_points([(r["lr"], r["scale"]) for r in sweep
                                    if (r["method"], r["split"]) == key], pick)
                for key, pick in picks.items()}
    return sweep


def head_jobs(cfg: NeuronExperimentConfig, ctx: Context, split_list, picks) -> list:
    """Every head at its split's chosen (lr, scale); the ablations at Neuron's, each with one
    validation head (a TuneJob, first seed) for its validation curve."""
    jobs: list = []
    for name, unseen in split_list:
        for seed in cfg.seeds:
            for method in cfg.experiment.methods:
                lr, scale = picks[(method, name)]
                jobs.append(HeadJob(with_hparams(cfg, lr, scale), ctx, name, unseen, method, "", seed, gzsl=True))
            if len(unseen) in cfg.experiment.ablation_sizes and "neuron" in cfg.experiment.methods:
                lr, scale = picks[("neuron", name)]
                for ablation in cfg.experiment.ablations:
                    jobs.append(HeadJob(with_hparams(cfg, lr, scale), ctx, name, unseen, "neuron", ablation,
                                        seed, gzsl=False))
        if len(unseen) in cfg.experiment.ablation_sizes and "neuron" in cfg.experiment.methods:
            lr, scale = picks[("neuron", name)]
            for ablation in cfg.experiment.ablations:
                jobs.append(TuneJob(with_hparams(cfg, lr, scale), ctx, name, unseen, "neuron", ablation,
                                    cfg.seeds[0], lr, scale))
    return jobs


def per_seed(results: list[dict], label: str, size: int, key: tuple[str, str], seeds: list[int]) -> list[float]:
    """[seed] of the metric averaged over the size's splits (NaN when absent)."""
    out = []
    for seed in seeds:
        vals = [r[key[0]][key[1]] for r in results
                if r["method"] == label and len(r["unseen"]) == size and r["seed"] == seed
                and key[0] in r and key[1] in r[key[0]]]
        out.append(float(np.mean(vals)) if vals else float("nan"))
    return out


def zsl_key(label: str) -> tuple[str, str]:
    return ("zsl", zsl_column(label))


def curves_per_seed(results: list[dict], label: str, size: int, seeds: list[int],
                    group: str = "training", key: str = "loss") -> np.ndarray | None:
    """[seed, point] of a recorded curve (training loss, or the validation head's pseudo-unseen
    ZSL) averaged over the size's splits, for the seeds that have it; None when none has."""
    rows = []
    for seed in seeds:
        runs = [r for r in results if r["method"] == label and len(r["unseen"]) == size and r["seed"] == seed]
        if runs and all(group in r for r in runs):
            rows.append(np.mean([r[group][key] for r in runs], axis=0))
    return np.asarray(rows) if rows else None


def curve_table(title: str, results: list[dict], labels, sizes, seeds, at: list[int],
                group: str, key: str) -> dict:
    rows = []
    for label in labels:
        for size in sizes:
            curves = curves_per_seed(results, label, size, seeds, group, key)
            if curves is None or curves.shape[1] != len(at):
                continue
            steps = [r[group]["at"][-1] for r in results
                     if r["method"] == label and len(r["unseen"]) == size and group in r]
            rows.append([label, size, float(np.mean(steps)), *(summarize(curves[:, e]) for e in range(len(at)))])
    return {"title": title, "columns": ["method", "unseen", "steps", *(f"step {a}" for a in at)], "rows": rows}


def validation_results(results: list[dict], sweep_monitors: list[dict]) -> list[dict]:
    """The validation curves: the methods' per-seed validation heads (inside their results)
    and the ablations' validation heads (their TuneJob results), in one shape."""
    out = [r for r in results if "validation" in r]
    out += [{"method": m["method"], "unseen": m["unseen"], "seed": m["seed"],
             "validation": {"zsl": m["curve"], "at": m["at"]}} for m in sweep_monitors]
    return out


def reproduce(cfg: NeuronExperimentConfig, ctx: Context) -> Path | None:
    """Everything the results need; under a launch of several processes the encoders are
    pre-trained by all of them, the rest (and every file) by the main process, and the
    others return None."""
    num_classes = pipeline.class_count(cfg)
    split_list = pipeline.splits(cfg, num_classes)
    pipeline.check_text(cfg, num_classes)
    if not pipeline.distributed_encoders(cfg, split_list, show_progress=True):
        return None
    out = new_reproduce_dir(cfg.runs_dir, ctx.slug, ctx.config_name)
    write_run_info(out, cfg)
    pipeline.sequences(cfg)  # generate (or check) the sequence caches once, before the workers
    pipeline.text_embeddings(cfg, num_classes)  # ...and the text cache
    p = cfg.experiment.processes
    encoders = run_jobs(build_split, [SplitJob(cfg, n, u) for n, u in split_list], p, desc="encoders")
    enc_acc = [e["acc"] for e in encoders]
    sweep = run_sweep(cfg, ctx, split_list, p)
    picks = chosen(sweep)
    jobs = head_jobs(cfg, ctx, split_list, picks)
    done = run_jobs(run_any, jobs, p, desc="heads")
    results = [r for j, r in zip(jobs, done) if isinstance(j, HeadJob)]
    monitors = [r for j, r in zip(jobs, done) if isinstance(j, TuneJob)]
    (out / "raw.json").write_text(json.dumps({"heads": results, "sweep": sweep, "ablation_validation": monitors,
                                              "encoders": encoders}) + "\n")
    sizes = sorted({len(u) for _, u in split_list})
    labels = list(dict.fromkeys(j.label for j in jobs if isinstance(j, HeadJob)))
    methods, rows_zsl, rows_gzsl = {}, [], []
    for label in labels:
        for size in sizes:
            key = zsl_key(label)
            vals = per_seed(results, label, size, key, cfg.seeds)
            if np.isnan(vals).all():
                continue
            methods.setdefault(label, {})[f"ZSL top-1 ({size} unseen)"] = summarize(vals)
            row = [label, size]
            for k in ZSL_KEYS:
                v = per_seed(results, label, size, ("zsl", k), cfg.seeds)
                row.append(summarize(v) if not np.isnan(v).any() else "")
            rows_zsl.append(row)
            if any("gzsl_val_gamma" in r for r in results if r["method"] == label):
                row = [label, size]
                for group in ("gzsl_val_gamma", "gzsl_test_gamma", "gzsl_released"):
                    row += [summarize(per_seed(results, label, size, (group, m), cfg.seeds)) for m in ("S", "U", "H")]
                rows_gzsl.append(row)
    tables = [
        {"title": ZSL_TITLE,
         "columns": ["method", "unseen", *ZSL_KEYS], "rows": rows_zsl},
        {"title": GZSL_TITLE,
         "columns": ["method", "unseen", "S (val γ)", "U (val γ)", "H (val γ)", "S (test γ)", "U (test γ)",
                     "H (test γ)", "S (released)", "U (released)", "H (released)"],
         "rows": rows_gzsl},
        {"title": "Context: published unseen top-1 (%) on real NTU data (not comparable with synthetic numbers)",
         "columns": ["method", "NTU-60 55/5", "NTU-120 96/24"],
         "rows": [[k, *v] for k, v in CONTEXT.items()]},
        {"title": ENCODER_TITLE,
         "columns": ["split", "unseen classes", "steps", "seen-class top-1"],
         "rows": [[n, " ".join(map(str, u)), cfg.encoder.steps, a] for (n, u), a in zip(split_list, enc_acc)]},
        {"title": ENCODER_CURVE_TITLE,
         "columns": ["split", "epoch", "step", "lr", "training loss", "seen-class top-1"],
         "rows": [[n, i + 1, int(step), lr, loss, acc if np.isfinite(acc) else ""]
                  for (n, _), e in zip(split_list, encoders)
                  for i, (step, lr, loss, acc) in enumerate(e["curve"])]},
        sweep_table(sweep, picks),
    ]
    at = sweep[0]["at"] if sweep else []
    training = curve_table(HEAD_TITLE, results, labels, sizes, cfg.seeds, at, "training", "loss")
    validation = curve_table(VAL_TITLE, validation_results(results, monitors), labels, sizes, cfg.seeds, at,
                             "validation", "zsl")
    tables += [t for t in (training, validation) if t["rows"]]
    plots = [_plot(out / "plots", results, labels, sizes, cfg.seeds)]
    for extra in (_plot_training(out / "plots", results, labels, sizes, cfg.seeds, "training", "loss"),
                  _plot_training(out / "plots", validation_results(results, monitors), labels, sizes, cfg.seeds,
                                 "validation", "zsl"),
                  _plot_encoders(out / "plots", split_list, encoders)):
        plots += [extra] if extra else []
    res = build_results(
        paper=ctx.slug, title=TITLE, config=ctx.config_name, seeds=cfg.seeds, methods=methods,
        claims=[], tables=tables, plots=plots,
        notes=["Skeletons are synthesised (papers/neuron/README.md); numbers are not comparable with NTU.",
               "ZSL 'fused' sums the branches' softmaxes (honest); 'oracle_or' is the released code's "
               "either-branch-right count and needs the label.",
               "Final-epoch heads only; no checkpoint selection."])
    budget = config_budget(cfg, num_classes, sizes)
    res["claims"], res["protocol_notes"] = build_claims(res, budget, cfg.neuron.ablation_loss)
    write_results(out, res)
    mark_done(out)
    return out


def _plot(out: Path, results, labels, sizes, seeds) -> str:
    series = {}
    for label in labels:
        points = [(s, per_seed(results, label, s, zsl_key(label), seeds)) for s in sizes]
        points = [(s, v) for s, v in points if not np.isnan(v).any()]
        if points:
            series[label] = ([s for s, _ in points], [100 * np.mean(v) for _, v in points],
                             [100 * np.std(v) for _, v in points])
    path = line_plot(out / "zsl_by_unseen_size.png", series, xlabel="unseen classes",
                     ylabel="ZSL top-1 (%)", title="Unseen-class accuracy (mean ± std over seeds)")
    return str(path.relative_to(out.parent))


def sweep_table(sweep: list[dict], picks: dict) -> dict:
    rows = [[r["method"], len(r["unseen"]), r["split"], r["lr"], "" if r["scale"] is None else r["scale"],
             r["val_zsl"], "yes" if picks.get((r["method"], r["split"])) == (r["lr"], r["scale"]) else "",
             r.get("round", 0)]
            for r in sorted(sweep, key=lambda r: (r["method"], r["split"], r["lr"], r["scale"] or 0.0))]
    return {"title": SWEEP_TITLE, "columns": ["method", "unseen", "split", "lr", "logit scale",
                                              "held-out ZSL top-1", "chosen", "round"], "rows": rows}


def _plot_training(out: Path, results, labels, sizes, seeds, group: str, key: str) -> str | None:
    series = {}
    for label in labels:
        for size in sizes:
            runs = [r for r in results if r["method"] == label and len(r["unseen"]) == size and group in r]
            curves = curves_per_seed(results, label, size, seeds, group, key)
            if curves is not None and runs:
                series[f"{label} ({size})"] = (runs[0][group]["at"], curves.mean(0), curves.std(0))
    if not series:
        return None
    name, ylabel, title = (("head_training_loss.png", "mean training loss", "Head training loss")
                           if group == "training" else
                           ("head_validation_zsl.png", "pseudo-unseen ZSL top-1",
                            "Validation heads: held-out pseudo-unseen ZSL"))
    path = line_plot(out / name, series, xlabel="optimizer step", ylabel=ylabel,
                     title=f"{title} (split-averaged, mean ± std over seeds)")
    return str(path.relative_to(out.parent))


def _plot_encoders(out: Path, split_list, encoders) -> str | None:
    series = {}
    for (name, _), e in zip(split_list, encoders):
        pts = [(c[0], c[3]) for c in e["curve"] if np.isfinite(c[3])]
        if pts:
            series[name] = ([x for x, _ in pts], [100 * y for _, y in pts], [0.0] * len(pts))
    if not series:
        return None
    path = line_plot(out / "encoder_seen_accuracy.png", series, xlabel="optimizer step",
                     ylabel="seen-class test top-1 (%)", title="Encoder pre-training (seen classes only)")
    return str(path.relative_to(out.parent))
