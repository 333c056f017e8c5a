"""The tables, plots and grids of `reproduce`, from the runs' summaries."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from papers.copyright_shield.claims import CURVES_TABLE
from papers.copyright_shield.data import World
from papers.copyright_shield.detection import DETECTORS
from papers.copyright_shield.similarity import Similarity, near_copies
from shared.results import summarize
from shared.t2i.grid import save_grid


def by_run(summaries: list[dict]) -> dict[str, list[dict]]:
    """{run name: summaries in seed order}."""
    out: dict[str, list[dict]] = {}
    for s in sorted(summaries, key=lambda s: s["seed"]):
        out.setdefault(s["run"], []).append(s)
    return out


def censored_fae(summary: dict, evals_per_epoch: int) -> list[tuple[float, bool]]:
    cap = summary["epochs"] + 1 / evals_per_epoch
    return [(cap, True) if f is None else (float(f), False) for f in summary["fae"]]


def method_metrics(groups: dict[str, list[dict]], evals_per_epoch: int) -> dict:
    """Per-unit (seed, target) values of every run name, plus the detection pseudo-method."""
    methods = {}
    for name, runs in groups.items():
        fae = [v for s in runs for v in censored_fae(s, evals_per_epoch)]
        m = {"fae": [f for f, _ in fae], "fae_censored": [float(c) for _, c in fae],
             "cir": [c for s in runs for c in s["cir"]], "mean_sim": [c for s in runs for c in s["mean_sim"]]}
        if "cir_moved" in runs[0]:
            m["cir_moved"] = [c for s in runs for c in s["cir_moved"]]
            m["mean_sim_moved"] = [c for s in runs for c in s["mean_sim_moved"]]
        methods[name] = {k: summarize(v) for k, v in m.items()}
    attack = groups.get("attack")
    if attack and "detection" in attack[0]:
        det = {}
        for d in DETECTORS:
            for key in ("f1", "precision", "recall"):
                det[f"{key}_{d}"] = summarize([row[d][key] for s in attack for row in s["detection"]])
        methods["detection"] = det
    return methods


def curves_table(groups: dict[str, list[dict]]) -> dict:
    rows = []
    for name, runs in groups.items():
        epochs = [h["epoch"] for h in runs[0]["history"]]
        loss = np.mean([[h["loss"] for h in s["history"]] for s in runs], axis=0)
        sim = np.mean([[max(h["max_sim_target"]) for h in s["history"]] for s in runs], axis=0)
        rows.append([name, epochs, [round(float(v), 4) for v in loss], [round(float(v), 3) for v in sim]])
    return {"title": CURVES_TABLE, "columns": ["run", "epochs", "ε-MSE", "max trigger similarity"], "rows": rows}


def detection_table(groups: dict[str, list[dict]]) -> dict:
    """F1 / precision / recall per target (mean over seeds) for every detector."""
    attack = groups["attack"]
    n_targets = len(attack[0]["detection"])
    rows = []
    for t in range(n_targets):
        for d in DETECTORS:
            vals = {k: float(np.mean([s["detection"][t][d][k] for s in attack])) for k in ("f1", "precision", "recall")}
            rows.append([f"T{t}", d, round(vals["f1"], 3), round(vals["precision"], 3), round(vals["recall"], 3)])
    return {"title": "Detection per target (mean over seeds; threshold from the held-out target)",
            "columns": ["target", "detector", "F1", "precision", "recall"], "rows": rows}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def similarity_histograms(world: World, similarity: Similarity, generated: torch.Tensor | None,
                          generated_target: torch.Tensor | None, threshold: float, path: Path) -> Path:
    """Clean entries vs every target, near-copies (noise, blur, 1-px shifts) vs their target,
    and the undefended trigger generations vs their target."""
    plt = _plt()
    refs = world.references
    clean = world.mix.images[world.mix.poison_of < 0]
    clean_sims = similarity.matrix(clean, refs).flatten().numpy()
    copies = near_copies(refs)
    copy_sims = similarity(copies, refs.repeat(len(copies) // len(refs), 1, 1, 1)).numpy()
    poisons = torch.stack([p.image for p in world.poisons])
    poison_sims = similarity(poisons, refs[[p.target for p in world.poisons]]).numpy()
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=110)
    bins = np.linspace(-1, 1, 41)
    ax.hist(clean_sims, bins=bins, alpha=0.6, density=True, label=f"clean vs target ({len(clean_sims)})")
    ax.hist(poison_sims, bins=bins, alpha=0.6, density=True, label=f"poisons vs their target ({len(poison_sims)})")
    ax.hist(copy_sims, bins=bins, alpha=0.6, density=True, label=f"near-copies vs target ({len(copy_sims)})")
    if generated is not None:
        ax.hist(similarity(generated, generated_target).numpy(), bins=bins, alpha=0.5, density=True,
                label="undefended trigger generations")
    ax.axvline(threshold, color="k", ls="--", lw=1, label=f"threshold {threshold}")
    ax.set(xlabel="similarity", ylabel="density", title="copy-detection similarity")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def bar_plot(methods: dict, path: Path) -> Path:
    """FAE and CIR per run (mean ± std over units)."""
    plt = _plt()
    names = [n for n in ("attack", "released", "differentiable", "hinge", "clean") if n in methods]
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.4), dpi=110)
    for ax, metric, label in ((axes[0], "fae", "FAE (epochs, censored)"), (axes[1], "cir", "CIR")):
        ax.bar(names, [methods[n][metric]["mean"] for n in names],
               yerr=[methods[n][metric]["std"] for n in names], capsize=3, color="tab:blue")
        ax.set(ylabel=label)
        ax.tick_params(axis="x", rotation=30, labelsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def geometry_plot(methods: dict, path: Path) -> Path:
    """Similarity of the trigger generations to the original and to the moved target."""
    plt = _plt()
    names = [n for n in ("attack", "flip", "rotate", "unlinked") if n in methods]
    x = np.arange(len(names))
    orig = [methods[n]["mean_sim"]["mean"] for n in names]
    moved = [methods[n]["mean_sim_moved"]["mean"] if "mean_sim_moved" in methods[n] else np.nan for n in names]
    fig, ax = plt.subplots(figsize=(5.5, 3.4), dpi=110)
    ax.bar(x - 0.2, orig, 0.4, label="vs original target")
    ax.bar(x + 0.2, moved, 0.4, label="vs target moved like the poisons")
    ax.set_xticks(x, names)
    ax.set(ylabel="mean similarity of trigger generations", title="the copy follows the poisons")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def attack_grid(world: World, generations: dict[str, torch.Tensor], path: Path, show: int = 6) -> Path:
    """Targets, one poison per element, and trigger generations per run (first target)."""
    rows, labels = [world.references], ["targets"]
    poisons = [p.image for p in world.poisons if p.target == 0][:show]
    rows.append(torch.stack(poisons))
    labels.append("poisons T0")
    for name, images in generations.items():
        rows.append(images[:show])
        labels.append(name[:9])
    width = max(len(r) for r in rows)
    rows = [torch.cat([r, torch.ones(width - len(r), *r.shape[1:])]) for r in rows]
    return save_grid(rows, labels, path)
