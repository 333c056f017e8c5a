"""One `results.json` schema for every paper, its markdown rendering and a PNG plot helper.

results.json:
    schema, paper, title, config, command, created, git {commit, dirty}, versions,
    seeds: [int],
    methods: {method: {metric: {mean, std, n, values}}},
    claims: [{claim, paper, ours, holds (true | false | null), detail}],
    tables: [{title, columns, rows}]   (optional extra tables),
    plots: [relative PNG paths], notes: [str]
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from shared.runs import git_commit, package_versions

SCHEMA_VERSION = 1
REQUIRED = ("schema", "paper", "config", "git", "seeds", "methods", "claims")


def summarize(values: Sequence[float]) -> dict:
    """mean ± sample std (ddof=1) over seeds; std is 0 for a single value."""
    arr = np.asarray([float(v) for v in values], dtype=np.float64)
    std = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    return {"mean": float(arr.mean()), "std": std, "n": int(arr.size),
            "values": [float(v) for v in arr]}


def significantly_lower(a: Sequence[float], b: Sequence[float]) -> bool:
    """Whether a < b paired over seeds: mean(a − b) + 2·SE < 0 (needs ≥ 2 seeds)."""
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if len(diff) < 2:
        return False
    se = diff.std(ddof=1) / np.sqrt(len(diff))
    return bool(diff.mean() + 2 * se < 0)


def claim(text: str, paper: str, ours: str, holds: bool | None, detail: str = "") -> dict:
    return {"claim": text, "paper": paper, "ours": ours,
            "holds": None if holds is None else bool(holds), "detail": detail}


def build_results(
    *, paper: str, title: str, config: str, seeds: list[int], methods: dict, claims: list,
    tables: list | None = None, plots: list | None = None, notes: list | None = None,
) -> dict:
    return {
        "schema": SCHEMA_VERSION, "paper": paper, "title": title, "config": config,
        "command": " ".join(sys.argv), "created": datetime.now(UTC).isoformat(),
        "git": git_commit(), "versions": package_versions(), "seeds": list(seeds),
        "methods": methods, "claims": claims, "tables": tables or [], "plots": plots or [],
        "notes": notes or [],
    }


def validate(results: dict) -> None:
    missing = [key for key in REQUIRED if key not in results]
    if missing:
        raise ValueError(f"results.json lacks {', '.join(missing)}")
    for method, metrics in results["methods"].items():
        for metric, summary in metrics.items():
            if not {"mean", "std", "n"} <= set(summary):
                raise ValueError(f"results.json: {method}.{metric} is not a mean/std/n summary")
    for item in results["claims"]:
        if not {"claim", "paper", "ours", "holds"} <= set(item):
            raise ValueError(f"results.json: malformed claim {item}")


def fmt(value: Any, digits: int = 4) -> str:
    if isinstance(value, dict) and "mean" in value:
        return f"{fmt(value['mean'], digits)} ± {fmt(value['std'], digits)}"
    if isinstance(value, float):
        if value == 0 or math.isnan(value) or 1e-3 <= abs(value) < 1e5:
            return f"{value:.{digits}g}"
        return f"{value:.3e}"
    return str(value)


def _table(columns: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(c) for c in row) + " |" for row in rows]
    return lines


def holds_mark(holds: bool | None) -> str:
    return {True: "yes", False: "**no**", None: "n/a"}[holds]


def render_markdown(results: dict, plot_prefix: str = "") -> str:
    git = results["git"]
    commit = git["commit"][:12] + (" (uncommitted changes)" if git.get("dirty") else "")
    out = [
        f"# {results.get('title', results['paper'])}: results ({results['config']})",
        "",
        f"- command: `{results.get('command', '')}`",
        f"- commit: `{commit}`; created {results.get('created', '')}",
        f"- seeds: {', '.join(str(s) for s in results['seeds'])} (mean ± sample std over seeds)",
        "",
        "## Claims",
        "",
    ]
    out += _table(["Claim", "Paper / theory", "Ours (measured)", "Holds"], [
        [c["claim"], c["paper"], c["ours"], holds_mark(c["holds"])] for c in results["claims"]
    ])
    metrics = sorted({m for per in results["methods"].values() for m in per})
    if metrics:
        out += ["", "## Methods", ""]
        out += _table(["Method", *metrics], [
            [name, *(per.get(m, "") for m in metrics)] for name, per in results["methods"].items()
        ])
    for table in results.get("tables", []):
        out += ["", f"## {table['title']}", ""] + _table(table["columns"], table["rows"])
    if results.get("notes"):
        out += ["", "## Notes", ""] + [f"- {note}" for note in results["notes"]]
    if results.get("plots"):
        out += ["", "## Plots", ""]
        out += [f"![{Path(p).stem}]({plot_prefix}{p})" for p in results["plots"]]
    return "\n".join(out) + "\n"


def write_results(out_dir: str | Path, results: dict) -> Path:
    validate(results)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "results.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    (out_dir / "RESULTS.md").write_text(render_markdown(results))
    return path


def load_results(path: str | Path) -> dict:
    results = json.loads(Path(path).read_text())
    validate(results)
    return results


def line_plot(
    path: str | Path, series: dict[str, tuple], *, xlabel: str, ylabel: str, title: str = "",
    logx: bool = False, logy: bool = False, styles: dict[str, str] | None = None,
    colors: dict[str, str] | None = None,
) -> Path:
    """Plot `series[label] = (x, y)` or `(x, y, yerr)` as lines (with a ±err band) to a PNG.

    `styles` maps a label to a matplotlib format string, `colors` to a colour."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8), dpi=110)
    for label, data in series.items():
        x, y = np.asarray(data[0], float), np.asarray(data[1], float)
        color = {"color": colors[label]} if colors and label in colors else {}
        line, = ax.plot(x, y, (styles or {}).get(label, "-"), label=label, lw=1.6, **color)
        if len(data) > 2 and data[2] is not None:
            err = np.asarray(data[2], float)
            ax.fill_between(x, y - err, y + err, color=line.get_color(), alpha=0.15, lw=0)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
