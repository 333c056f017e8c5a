"""`reproduce`: encoders per split, then every head (methods with GZSL, Neuron ablations
with ZSL) for every split and seed; the result tables, the claims computed from them
(`papers.neuron.claims`) and plots.

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
    ENCODER_TITLE,
    GZSL_TITLE,
    HEAD_TITLE,
    ZSL_KEYS,
    ZSL_TITLE,
    build_claims,
    config_budget,
    zsl_column,
)
from papers.neuron.config import NeuronExperimentConfig
from papers.neuron.train import HeadJob, run_head
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


def build_split(job: SplitJob) -> float:
    """Pre-train this split's encoder and cache its features (in a worker process)."""
    torch.set_num_threads(1)
    return pipeline.split_features(job.cfg, job.unseen, job.name, show_progress=False)["encoder_seen_acc"]


def head_jobs(cfg: NeuronExperimentConfig, ctx: Context, split_list) -> list[HeadJob]:
    jobs = []
    for name, unseen in split_list:
        for seed in cfg.seeds:
            for method in cfg.experiment.methods:
                jobs.append(HeadJob(cfg, ctx, name, unseen, method, "", seed, gzsl=True))
            if len(unseen) in cfg.experiment.ablation_sizes:
                for ablation in cfg.experiment.ablations:
                    jobs.append(HeadJob(cfg, ctx, name, unseen, "neuron", ablation, seed, gzsl=False))
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


def curves_per_seed(results: list[dict], label: str, size: int, seeds: list[int]) -> np.ndarray | None:
    """[seed, epoch] training loss averaged over the size's splits; None when a run has no curve
    (a head reused from a run recorded before curves were kept)."""
    rows = []
    for seed in seeds:
        runs = [r for r in results if r["method"] == label and len(r["unseen"]) == size and r["seed"] == seed]
        if not runs or any("training" not in r for r in runs):
            return None
        rows.append(np.mean([r["training"]["loss"] for r in runs], axis=0))
    return np.asarray(rows)


def head_training_table(results: list[dict], labels, sizes, seeds, epochs: int) -> dict:
    rows = []
    for label in labels:
        for size in sizes:
            curves = curves_per_seed(results, label, size, seeds)
            if curves is None or curves.shape[1] != epochs:
                continue
            steps = [r["training"]["steps"] for r in results if r["method"] == label and len(r["unseen"]) == size]
            rows.append([label, size, float(np.mean(steps)), *(summarize(curves[:, e]) for e in range(epochs))])
    return {"title": HEAD_TITLE, "columns": ["method", "unseen", "steps", *(f"epoch {e + 1}" for e in range(epochs))],
            "rows": rows}


def reproduce(cfg: NeuronExperimentConfig, ctx: Context) -> Path | None:
    """Everything the results need; under a launch of several processes the encoders are
    pre-trained by all of them, the rest (and every file) by the main process, and the
    others return None."""
    num_classes = pipeline.class_count(cfg)
    split_list = pipeline.splits(cfg, num_classes)
    if not pipeline.distributed_encoders(cfg, split_list, show_progress=True):
        return None
    out = new_reproduce_dir(cfg.runs_dir, ctx.slug, ctx.config_name)
    write_run_info(out, cfg)
    pipeline.sequences(cfg)  # generate (or check) the sequence caches once, before the workers
    pipeline.text_embeddings(cfg, num_classes)  # ...and the text cache
    p = cfg.experiment.processes
    enc_acc = run_jobs(build_split, [SplitJob(cfg, n, u) for n, u in split_list], p, desc="encoders")
    jobs = head_jobs(cfg, ctx, split_list)
    results = run_jobs(run_head, jobs, p, desc="heads")
    (out / "raw.json").write_text(json.dumps(results) + "\n")
    sizes = sorted({len(u) for _, u in split_list})
    labels = list(dict.fromkeys(j.label for j in jobs))
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
                for group in ("gzsl_val_gamma", "gzsl_test_gamma"):
                    row += [summarize(per_seed(results, label, size, (group, m), cfg.seeds)) for m in ("S", "U", "H")]
                rows_gzsl.append(row)
    tables = [
        {"title": ZSL_TITLE,
         "columns": ["method", "unseen", *ZSL_KEYS], "rows": rows_zsl},
        {"title": GZSL_TITLE,
         "columns": ["method", "unseen", "S (val γ)", "U (val γ)", "H (val γ)", "S (test γ)", "U (test γ)", "H (test γ)"],
         "rows": rows_gzsl},
        {"title": "Context: published unseen top-1 (%) on real NTU data (not comparable with synthetic numbers)",
         "columns": ["method", "NTU-60 55/5", "NTU-120 96/24"],
         "rows": [[k, *v] for k, v in CONTEXT.items()]},
        {"title": ENCODER_TITLE,
         "columns": ["split", "unseen classes", "seen-class top-1"],
         "rows": [[n, " ".join(map(str, u)), a] for (n, u), a in zip(split_list, enc_acc)]},
    ]
    training = head_training_table(results, labels, sizes, cfg.seeds, cfg.train.epochs)
    tables += [training] if training["rows"] else []
    plots = [_plot(out / "plots", results, labels, sizes, cfg.seeds)]
    loss_plot = _plot_training(out / "plots", results, labels, sizes, cfg.seeds)
    plots += [loss_plot] if loss_plot else []
    res = build_results(
        paper=ctx.slug, title=TITLE, config=ctx.config_name, seeds=cfg.seeds, methods=methods,
        claims=[], tables=tables, plots=plots,
        notes=["Skeletons are synthesised (papers/neuron/README.md); numbers are not comparable with NTU.",
               "ZSL 'fused' sums the branches' softmaxes (honest); 'oracle_or' is the released code's "
               "either-branch-right count and needs the label.",
               "Final-epoch heads only; no checkpoint selection."])
    budget = config_budget(cfg, num_classes, sizes)
    res["claims"], res["protocol_notes"] = build_claims(res, budget, cfg.neuron.logit_scale)
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


def _plot_training(out: Path, results, labels, sizes, seeds) -> str | None:
    series = {}
    for label in labels:
        for size in sizes:
            curves = curves_per_seed(results, label, size, seeds)
            if curves is not None:
                epochs = np.arange(1, curves.shape[1] + 1)
                series[f"{label} ({size})"] = (epochs, curves.mean(0), curves.std(0))
    if not series:
        return None
    path = line_plot(out / "head_training_loss.png", series, xlabel="epoch", ylabel="mean training loss",
                     title="Head training loss (split-averaged, mean ± std over seeds)")
    return str(path.relative_to(out.parent))
