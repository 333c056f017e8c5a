"""Tables and plots of a reproduce run, from the per-run summaries (the claims are in
`papers.sdpo.claims`, computed from the tables and metrics written here).

The main table is the authors' figure read as numbers: the reward at 1/2/4/8 sampling steps
of the base model and of every method after training (final evaluation, never the best).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from papers.sdpo import claims
from papers.sdpo.claims import BASELINES, PAPER
from papers.sdpo.config import SDPOExperimentConfig
from shared.results import fmt, line_plot, summarize


def by_name(summaries: list[dict]) -> dict[str, list[dict]]:
    """Summaries grouped by run name (method or sdpo-<ablation>), sorted by seed."""
    groups: dict[str, list[dict]] = {}
    for s in sorted(summaries, key=lambda s: s["seed"]):
        groups.setdefault(s["name"], []).append(s)
    return groups


def method_metrics(cfg: SDPOExperimentConfig, groups: dict[str, list[dict]]) -> dict:
    """{run name: {final_N, gain_N: mean/std/n/values}} plus the base model's row."""
    out = {}
    first = next(iter(groups.values()))
    out["base"] = {f"reward_{n}": summarize([first[0][f"initial_{n}"]]) for n in cfg.eval.steps}
    for name, runs in groups.items():
        metrics = {}
        for n in cfg.eval.steps:
            metrics[f"reward_{n}"] = summarize([r[f"final_{n}"] for r in runs])
            metrics[f"gain_{n}"] = summarize([r[f"gain_{n}"] for r in runs])
        out[name] = metrics
    return out


def step_table(cfg: SDPOExperimentConfig, metrics: dict, names: list[str], title: str,
               with_paper: bool) -> dict:
    columns = ["Method", *[f"{n} step{'s' * (n > 1)}" for n in cfg.eval.steps]]
    if with_paper:
        columns += [f"paper {n}" for n in cfg.eval.steps if n in PAPER["base"]]
    rows = []
    for name in names:
        if name not in metrics:
            continue
        row = [name, *[fmt(metrics[name][f"reward_{n}"]) for n in cfg.eval.steps]]
        if with_paper:
            row += [PAPER.get(name, {}).get(n, "") for n in cfg.eval.steps if n in PAPER["base"]]
        rows.append(row)
    return {"title": title, "columns": columns, "rows": rows}


def _gains(runs: list[dict], n: int) -> list[float]:
    return [r[f"gain_{n}"] for r in runs]


def curves(cfg: SDPOExperimentConfig, groups: dict[str, list[dict]]) -> dict:
    """The claims' convergence table: each run name's held-out reward curve (mean over its
    seeds) at every step count, against trajectories sampled."""
    out = {}
    for name, runs in groups.items():
        points = [r["curve"] for r in runs]
        x = [p["samples"] for p in points[0]]
        out[name] = {n: (x, np.mean([[p[str(n)] for p in c] for c in points], axis=0).tolist())
                     for n in cfg.eval.steps}
    return claims.curves_table(out)


DIAGNOSTICS_TABLE = "Trust region and reward queries (final runs, mean ± std over seeds)"


def diagnostics_table(cfg: SDPOExperimentConfig, groups: dict[str, list[dict]]) -> dict:
    """Per run name: the share of trained transitions beyond the method's trust region, the
    mean |log π_θ − log π_old| when trained on (means over the epochs), trajectories sampled
    and reward queries (SDPO queries 3 images per trajectory, the oracle T, the rest 1)."""
    rows = []
    for name, runs in groups.items():
        cf = summarize([r.get("clipfrac", float("nan")) for r in runs])
        dl = summarize([r.get("abs_dlogp", float("nan")) for r in runs])
        rows.append([name, fmt(cf), fmt(dl), runs[0]["samples"], runs[0].get("reward_queries", 0)])
    return {"title": DIAGNOSTICS_TABLE,
            "columns": ["Run", "clip fraction", "mean |Δ log π|", "trajectories", "reward queries"],
            "rows": rows}


def plots(cfg: SDPOExperimentConfig, groups: dict[str, list[dict]], out_dir: Path) -> list[str]:
    """Reward vs samples seen at each budget (the authors' figure), and gain vs budget."""
    files = []
    methods = [m for m in ("sdpo", *BASELINES) if m in groups]
    for n in cfg.eval.steps:
        series = {}
        for name in methods:
            curves = [r["curve"] for r in groups[name]]
            x = [p["samples"] for p in curves[0]]
            ys = np.array([[p[str(n)] for p in c] for c in curves])
            series[name] = (x, ys.mean(0), ys.std(0))
        name = f"reward_vs_samples_{n}step.png"
        line_plot(out_dir / name, series, xlabel="trajectories sampled", ylabel=f"{cfg.reward.name} reward",
                  title=f"held-out reward at {n} sampling step{'s' * (n > 1)}")
        files.append(name)
    for n in (cfg.eval.steps[0], cfg.eval.steps[-1]):
        series = {}
        for name in methods:
            curves = [r["curve"] for r in groups[name]]
            x = [p.get("reward_queries", 0) for p in curves[0]]
            ys = np.array([[p[str(n)] for p in c] for c in curves])
            series[name] = (x, ys.mean(0), ys.std(0))
        name = f"reward_vs_queries_{n}step.png"
        line_plot(out_dir / name, series, xlabel="reward queries (images scored)",
                  ylabel=f"{cfg.reward.name} reward",
                  title=f"held-out reward at {n} sampling step{'s' * (n > 1)} vs reward queries")
        files.append(name)
    series = {name: (cfg.eval.steps, [np.mean(_gains(groups[name], n)) for n in cfg.eval.steps],
                     [np.std(_gains(groups[name], n)) for n in cfg.eval.steps])
              for name in groups}
    line_plot(out_dir / "gain_vs_steps.png", series, xlabel="sampling steps", ylabel="final − base reward",
              title="step generalization", logx=True)
    files.append("gain_vs_steps.png")
    return files
