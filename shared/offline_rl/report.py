"""A markdown table and a bar plot describing offline datasets per task and quality."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from shared.offline_rl.episodes import Episode
from shared.offline_rl.store import episode_stats


def _rows(datasets: dict[str, dict[str, list[Episode]]]) -> list[dict]:
    return [
        {"quality": quality, "task": task, **episode_stats(episodes)}
        for quality, per_task in datasets.items() for task, episodes in per_task.items()
    ]


def _markdown(rows: list[dict]) -> str:
    lines = [
        "# Offline datasets",
        "",
        "Return: undiscounted episode return, mean ± std over episodes. Success: share of "
        "episodes in which `info['success']` was true at some step.",
        "",
        "| Task | Quality | Episodes | Steps | Return | Success |",
        "|---|---|---|---|---|---|",
    ]
    for row in sorted(rows, key=lambda r: (r["task"], r["quality"])):
        lines.append(
            f"| {row['task']} | {row['quality']} | {row['episodes']} | {row['steps']} | "
            f"{row['return_mean']:.1f} ± {row['return_std']:.1f} | {row['success_rate']:.2f} |")
    return "\n".join(lines) + "\n"


def _plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = sorted({r["task"] for r in rows})
    qualities = list(dict.fromkeys(r["quality"] for r in rows))
    by_key = {(r["task"], r["quality"]): r for r in rows}
    width = 0.8 / max(1, len(qualities))
    x = np.arange(len(tasks))
    fig, axes = plt.subplots(2, 1, figsize=(max(6.0, 0.6 * len(tasks) + 2), 6), dpi=110,
                             sharex=True)
    for q, quality in enumerate(qualities):
        def value(task, field, quality=quality):
            row = by_key.get((task, quality))
            return row[field] if row else np.nan
        offset = x - 0.4 + width * (q + 0.5)
        axes[0].bar(offset, [value(t, "return_mean") for t in tasks], width,
                    yerr=[value(t, "return_std") for t in tasks], label=quality, capsize=2)
        axes[1].bar(offset, [value(t, "success_rate") for t in tasks], width, label=quality)
    axes[0].set(ylabel="episode return", title="Offline datasets per task and quality")
    axes[1].set(ylabel="success rate", ylim=(0, 1.05))
    axes[1].set_xticks(x, [t.removesuffix("-v3") for t in tasks], rotation=60, ha="right",
                       fontsize=7)
    for ax in axes:
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def dataset_report(datasets: dict[str, dict[str, list[Episode]]], out_dir: str | Path) -> str:
    """Write `dataset_report.md` and `dataset_report.png` for `datasets[quality][task]` into
    `out_dir` and return the markdown."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = _rows(datasets)
    markdown = _markdown(rows) + "\n![datasets](dataset_report.png)\n"
    (out_dir / "dataset_report.md").write_text(markdown)
    _plot(rows, out_dir / "dataset_report.png")
    return markdown
