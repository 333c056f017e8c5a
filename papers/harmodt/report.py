"""Tables, claims, notes and plots of a `reproduce` run (from the per-run summaries).

Claims compare *final* success (the last evaluation), paired over seeds: "A beats B" holds
when mean(A − B) exceeds two standard errors of the paired differences. The paper reports
the best evaluation; our tables give both, the claims use the final one. These tests were
fixed before any result was seen.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from papers.harmodt.config import HarmoDTConfig
from papers.harmodt.data import train_tasks
from shared.results import claim, line_plot, significantly_lower, summarize

LABELS = {"harmodt-f": "HarmoDT-F", "harmodt-m": "HarmoDT-M", "harmodt-r": "HarmoDT-R",
          "g-harmodt": "G-HarmoDT", "prompt-dt": "Prompt-DT", "mtdt": "MTDT", "mtbc": "MTBC"}
# The paper's Table 1 (mean success %, near-optimal / sub-optimal; Meta-World v2, SAC data).
PAPER = {"MT50": {"mtbc": (60.39, 34.53), "mtdt": (65.80, 42.33), "prompt-dt": (71.60, 51.40),
                  "harmodt-r": (74.24, 52.45), "harmodt-m": (78.80, 56.20), "harmodt-f": (77.80, 57.50)},
         "MT30": {"mtdt": (71.89, 49.33), "prompt-dt": (71.30, 54.33), "harmodt-r": (80.10, 59.00),
                  "harmodt-m": (79.67, 62.33), "harmodt-f": (81.60, 60.60)},
         "MT5": {"mtdt": (100, 64.67), "prompt-dt": (100, 67.00), "harmodt-r": (100, 68.00),
                 "harmodt-m": (100, 72.12), "harmodt-f": (100, 75.04)}}
QUALITY_COLUMN = {"near-optimal": 0, "sub-optimal": 1}


def _values(summaries: list[dict], method: str, quality: str, key: str) -> list[float]:
    runs = sorted((s for s in summaries if s["method"] == method and s["quality"] == quality),
                  key=lambda s: s["seed"])
    return [100 * s[key] for s in runs if s.get(key) is not None]


def tables(cfg: HarmoDTConfig, summaries: list[dict]) -> tuple[dict, list[dict]]:
    methods, rows = {}, []
    for m in cfg.train.methods:
        row = [LABELS[m]]
        for q in cfg.data.qualities:
            entry = {k: summarize(v) for k in ("final_success", "best_success", "unseen_success")
                     if (v := _values(summaries, m, q, k))}
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


def _beats(summaries, a: str, b: str, q: str, key: str = "final_success") -> tuple[bool, str]:
    va, vb = _values(summaries, a, q, key), _values(summaries, b, q, key)
    if not va or len(va) != len(vb):
        return False, "not run"
    return significantly_lower(vb, va), f"{np.mean(va):.1f} vs {np.mean(vb):.1f}"


def claims(cfg: HarmoDTConfig, summaries: list[dict]) -> list[dict]:
    run = set(cfg.train.methods)
    out = []
    for q in cfg.data.qualities:
        col = QUALITY_COLUMN.get(q, 0)
        variants = [m for m in ("harmodt-f", "harmodt-m", "harmodt-r") if m in run]
        if variants and "prompt-dt" in run:
            results = {m: _beats(summaries, m, "prompt-dt", q) for m in variants}
            out.append(claim(
                f"{q}: every HarmoDT variant beats Prompt-DT",
                "MT50: " + ", ".join(f"{LABELS[m]} {PAPER['MT50'][m][col]}" for m in variants)
                + f" vs {PAPER['MT50']['prompt-dt'][col]}",
                "; ".join(f"{LABELS[m]} {r[1]}" for m, r in results.items()),
                all(r[0] for r in results.values()), "final success %, paired over seeds by 2 SE"))
        for a, b in (("prompt-dt", "mtdt"), ("mtdt", "mtbc")):
            if {a, b} <= run:
                holds, ours = _beats(summaries, a, b, q)
                out.append(claim(f"{q}: {LABELS[a]} beats {LABELS[b]}",
                                 f"MT50: {PAPER['MT50'][a][col]} vs {PAPER['MT50'][b][col]}",
                                 ours, holds, "final success %, paired over seeds by 2 SE"))
        if {"g-harmodt", "harmodt-f"} <= run:
            g, f = _values(summaries, "g-harmodt", q, "final_success"), _values(summaries, "harmodt-f", q, "final_success")
            out.append(claim(f"{q}: G-HarmoDT without task ids is not worse than HarmoDT-F with them",
                             "+5% task-agnostic (journal version)", f"{np.mean(g):.1f} vs {np.mean(f):.1f}",
                             bool(g) and not significantly_lower(g, f), "not lower by 2 SE, paired"))
        if cfg.data.unseen_tasks and {"harmodt-f", "prompt-dt"} <= run:
            holds, ours = _beats(summaries, "harmodt-f", "prompt-dt", q, "unseen_success")
            out.append(claim(f"{q}, unseen tasks: HarmoDT-F's majority-vote mask beats Prompt-DT",
                             "HarmoDT generalises to unseen tasks better (Sec. 5.4)", ours, holds,
                             "final success % on held-out tasks, paired by 2 SE"))
        if cfg.data.unseen_tasks and {"harmodt-f", "g-harmodt"} <= run:
            holds, ours = _beats(summaries, "g-harmodt", "harmodt-f", q, "unseen_success")
            out.append(claim(f"{q}, unseen tasks: G-HarmoDT beats HarmoDT-F",
                             "+10% on unseen tasks (journal version)", ours, holds,
                             "final success % on held-out tasks, paired by 2 SE"))
    return out


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
