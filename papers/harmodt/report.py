"""Tables, notes and plots of a `reproduce` run (from the per-run summaries); the claims
and their verdicts are in `claims.py`.

The tables give the final (last evaluation) and the best (maximum over evaluations) success;
the paper reports the best, the claims use the final one. `methods` also keeps, per run, the
success change over the last 20 % of training (`tail_change`, points) and the mean IoU between
the run's masks minus that of random ERK masks (`mask_iou_excess`), which the claims'
preconditions read.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from papers.harmodt.claims import LABELS, PAPER, QUALITY_COLUMN, mask_iou_excess, tail_change
from papers.harmodt.config import HarmoDTConfig
from papers.harmodt.data import train_tasks
from shared.results import line_plot, summarize

__all__ = ["LABELS", "PAPER", "QUALITY_COLUMN", "tables", "notes", "plots"]
METRICS = ("final_success", "best_success", "unseen_success")


def _runs(summaries: list[dict], method: str, quality: str) -> list[dict]:
    return sorted((s for s in summaries if s["method"] == method and s["quality"] == quality),
                  key=lambda s: s["seed"])


def _values(summaries: list[dict], method: str, quality: str, key: str) -> list[float]:
    return [100 * s[key] for s in _runs(summaries, method, quality) if s.get(key) is not None]


def _derived(summaries: list[dict], method: str, quality: str) -> dict[str, list[float]]:
    """Per-seed tail_change and mask_iou_excess, only where every run recorded them."""
    runs = _runs(summaries, method, quality)
    out = {"tail_change": [tail_change(s.get("curve") or []) for s in runs],
           "mask_iou_excess": [mask_iou_excess(s.get("overlap"), s.get("overlap_random"))
                               for s in runs]}
    return {k: v for k, v in out.items() if v and all(x is not None for x in v)}


def tables(cfg: HarmoDTConfig, summaries: list[dict]) -> tuple[dict, list[dict]]:
    methods, rows = {}, []
    for m in cfg.train.methods:
        row = [LABELS[m]]
        for q in cfg.data.qualities:
            entry = {k: summarize(v) for k in METRICS if (v := _values(summaries, m, q, k))}
            entry.update({k: summarize(v) for k, v in _derived(summaries, m, q).items()})
            methods[f"{LABELS[m]} / {q}"] = entry
            row += [entry["final_success"], entry["best_success"], entry.get("unseen_success", "n/a")]
        for q in cfg.data.qualities:
            column = QUALITY_COLUMN.get(q)
            row.append(PAPER["MT50"].get(m, ("", ""))[column] if column is not None else "")
        rows.append(row)
    columns = ["Method"]
    for q in cfg.data.qualities:
        columns += [f"{q} final %", f"{q} best %", f"{q} unseen %"]
    columns += [f"paper MT50 {q} % (best)" for q in cfg.data.qualities]
    n_tasks = len(train_tasks(cfg))
    title = (f"Success rate over {n_tasks} tasks × {cfg.eval.goals} goals, mean ± std over "
             f"{cfg.num_seeds} seeds (final = last evaluation, best = max over evaluations)")
    return methods, [{"title": title, "columns": columns, "rows": rows}]


def notes(cfg: HarmoDTConfig, summaries: list[dict]) -> list[str]:
    tasks = train_tasks(cfg)
    out = []
    for s in summaries:
        if s["method"] == "g-harmodt" and s.get("groups"):
            groups = {}
            for task, g in zip(tasks, s["groups"]):
                groups.setdefault(g, []).append(task.removesuffix("-v3"))
            out.append(f"G-HarmoDT groups, {s['quality']} seed {s['seed']}: "
                       + " | ".join(", ".join(v) for _, v in sorted(groups.items())))
    return out


def _curve(summaries, method: str, quality: str):
    runs = [s for s in summaries if s["method"] == method and s["quality"] == quality]
    if not runs:
        return None
    x = [c["iteration"] for c in runs[0]["curve"]]
    y = np.array([[100 * c["success"] for c in s["curve"]] for s in runs])
    return x, y.mean(0), y.std(0, ddof=1) if len(runs) > 1 else None


def overlap_plot(path: Path, matrix: np.ndarray, tasks: list[str], title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4.8), dpi=110)
    image = ax.imshow(matrix, cmap="viridis", vmin=matrix.min(), vmax=1.0)
    names = [t.removesuffix("-v3") for t in tasks]
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, label="mask IoU")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plots(cfg: HarmoDTConfig, summaries: list[dict], out: Path) -> list[str]:
    plot_dir = out / "plots"
    plot_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for q in cfg.data.qualities:
        series = {LABELS[m]: c for m in cfg.train.methods if (c := _curve(summaries, m, q))}
        line_plot(plot_dir / f"success_{q}.png", series, xlabel="iteration",
                  ylabel="success % (mean ± std over seeds)", title=f"Meta-World {cfg.data.tasks}, {q}")
        paths.append(f"plots/success_{q}.png")
        for m in ("harmodt-f", "g-harmodt"):
            runs = [s for s in summaries if s["method"] == m and s["quality"] == q and s.get("overlap")]
            if runs:
                matrix = np.mean([s["overlap"] for s in runs], axis=0)
                labels = train_tasks(cfg) if m != "g-harmodt" else [f"group {g}" for g in range(len(matrix))]
                overlap_plot(plot_dir / f"overlap_{m}_{q}.png", matrix, labels,
                             f"{LABELS[m]} mask overlap (IoU), {q}, mean over seeds")
                paths.append(f"plots/overlap_{m}_{q}.png")
    return paths
