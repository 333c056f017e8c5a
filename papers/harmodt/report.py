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
METRICS = ("final_success", "best_success", "unseen_success", "gate_accuracy")
RUN_KEYS = ("method", "quality", "seed", "final_success", "best_success", "per_task_success",
            "curve", "unseen_success", "unseen_per_task", "overlap", "overlap_random", "groups",
            "gate_accuracy")


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
                               for s in runs],
           "mask_iou": [_mean_iou(s.get("overlap")) for s in runs],
           "random_iou": [s.get("overlap_random") for s in runs],
           "best_minus_final": [100 * (s["best_success"] - s["final_success"]) for s in runs]}
    return {k: v for k, v in out.items() if v and all(x is not None for x in v)}


def _mean_iou(overlap) -> float | None:
    if overlap is None or len(overlap) < 2:
        return None
    m = np.asarray(overlap, dtype=np.float64)
    return float(m[~np.eye(len(m), dtype=bool)].mean())


def runs_record(summaries: list[dict]) -> list[dict]:
    """Per run what a reader needs: success per task, the curves (success, per-task success
    and training loss at every evaluation), masks' IoU, gate accuracy, best and final."""
    return [{k: s.get(k) for k in RUN_KEYS}
            for s in sorted(summaries, key=lambda s: (s["quality"], s["method"], s["seed"]))]


def _mean_std(values: list[float]) -> str:
    if not values:
        return "n/a"
    a = np.asarray(values, dtype=np.float64)
    return f"{a.mean():.1f} ± {a.std(ddof=1):.1f}" if len(a) > 1 else f"{a.mean():.1f}"


def detail_tables(cfg: HarmoDTConfig, summaries: list[dict]) -> list[dict]:
    """Per-task success (seen and unseen), mask IoU against random, G-HarmoDT's gate accuracy
    and the training loss at each evaluation."""
    out = []
    tasks = train_tasks(cfg)
    for q in cfg.data.qualities:
        rows, unseen_rows, iou_rows, loss_rows = [], [], [], []
        unseen_names: list[str] = []
        iterations: list[int] = []
        for m in cfg.train.methods:
            runs = _runs(summaries, m, q)
            if not runs:
                continue
            rows.append([LABELS[m]] + [_mean_std([100 * s["per_task_success"][t] for s in runs]) for t in tasks])
            if runs[0].get("unseen_per_task"):
                unseen_names = list(runs[0]["unseen_per_task"])
                unseen_rows.append([LABELS[m]] + [_mean_std([100 * s["unseen_per_task"][t] for s in runs])
                                                  for t in unseen_names])
            if runs[0].get("overlap") is not None:
                iou = [_mean_iou(s["overlap"]) for s in runs]
                ref = [s["overlap_random"] for s in runs]
                gate = [100 * s["gate_accuracy"] for s in runs if s.get("gate_accuracy") is not None]
                iou_rows.append([LABELS[m], f"{np.mean(iou):.4f}", f"{np.mean(ref):.4f}",
                                 f"{np.mean(iou) - np.mean(ref):+.4f}", _mean_std(gate)])
            curve = runs[0].get("curve") or []
            if curve and all("loss" in c for c in curve):
                iterations = [c["iteration"] for c in curve]
                loss_rows.append([LABELS[m]] + [f"{np.mean([s['curve'][i]['loss'] for s in runs]):.4f}"
                                                for i in range(len(curve))])
        short = [t.removesuffix("-v3") for t in tasks]
        out.append({"title": f"{q}: final success % per training task, mean ± std over seeds",
                    "columns": ["Method", *short], "rows": rows})
        if unseen_rows:
            out.append({"title": f"{q}: final success % per unseen task, mean ± std over seeds",
                        "columns": ["Method", *[t.removesuffix("-v3") for t in unseen_names]],
                        "rows": unseen_rows})
        if iou_rows:
            out.append({"title": f"{q}: mean IoU between the final task (or group) masks, against "
                                 "independent random ERK masks; G-HarmoDT's gate accuracy (%) on "
                                 "the seen tasks' final evaluation",
                        "columns": ["Method", "mask IoU", "random IoU", "excess", "gate accuracy %"],
                        "rows": iou_rows})
        if loss_rows:
            out.append({"title": f"{q}: training loss (action MSE, mean over the iterations since "
                                 "the previous evaluation), mean over seeds",
                        "columns": ["Method", *[str(i) for i in iterations]], "rows": loss_rows})
    return out


def tables(cfg: HarmoDTConfig, summaries: list[dict]) -> tuple[dict, list[dict]]:
    methods, rows = {}, []
    for m in cfg.train.methods:
        row = [LABELS[m]]
        for q in cfg.data.qualities:
            entry = {k: summarize(v) for k in METRICS if (v := _values(summaries, m, q, k))}
            entry.update({k: summarize(v) for k, v in _derived(summaries, m, q).items()})
            methods[f"{LABELS[m]} / {q}"] = entry
            if not entry:
                continue
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
    return methods, [{"title": title, "columns": columns, "rows": rows}, *detail_tables(cfg, summaries)]


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


def _curve(summaries, method: str, quality: str, key: str = "success", scale: float = 100.0):
    runs = [s for s in summaries if s["method"] == method and s["quality"] == quality]
    if not runs or not all(key in c for s in runs for c in s["curve"]):
        return None
    x = [c["iteration"] for c in runs[0]["curve"]]
    y = np.array([[scale * c[key] for c in s["curve"]] for s in runs])
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
        losses = {LABELS[m]: c for m in cfg.train.methods if (c := _curve(summaries, m, q, "loss", 1.0))}
        if losses:
            line_plot(plot_dir / f"loss_{q}.png", losses, xlabel="iteration", logy=True,
                      ylabel="training action MSE (mean ± std over seeds)",
                      title=f"Meta-World {cfg.data.tasks}, {q}: training loss")
            paths.append(f"plots/loss_{q}.png")
        for m in ("harmodt-f", "g-harmodt"):
            runs = [s for s in summaries if s["method"] == m and s["quality"] == q and s.get("overlap")]
            if runs:
                matrix = np.mean([s["overlap"] for s in runs], axis=0)
                labels = train_tasks(cfg) if m != "g-harmodt" else [f"group {g}" for g in range(len(matrix))]
                overlap_plot(plot_dir / f"overlap_{m}_{q}.png", matrix, labels,
                             f"{LABELS[m]} mask overlap (IoU), {q}, mean over seeds")
                paths.append(f"plots/overlap_{m}_{q}.png")
    return paths
