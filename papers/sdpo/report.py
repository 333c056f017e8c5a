"""Tables, claims and plots of a reproduce run, from the per-run summaries.

The main table is the authors' figure read as numbers: the reward at 1/2/4/8 sampling steps
of the base model and of every method after training (final evaluation, never the best).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from papers.sdpo.config import SDPOExperimentConfig
from shared.results import claim, fmt, line_plot, significantly_lower, summarize

# Aesthetic score on SD-Turbo after ~30k samples, read off the authors' curves (brief).
PAPER = {
    "base": {1: 6.1, 2: 6.0, 4: 5.9, 8: 5.75},
    "sdpo": {1: 7.4, 2: 7.95, 4: 8.05, 8: 8.2},
    "ddpo": {1: 6.5, 2: 6.8, 4: 6.9, 8: 7.0},
    "rebel": {1: 6.45, 2: 6.45, 4: 6.5, 8: 6.45},
    "d3po": {1: 6.1, 2: 6.25, 4: 6.2, 8: 6.15},
}
BASELINES = ("ddpo", "d3po", "rebel")


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


def paired(a: list[dict], b: list[dict]) -> tuple[list[dict], list[dict]]:
    """The runs of a and b on the seeds both have (ablations may use fewer seeds)."""
    common = sorted({r["seed"] for r in a} & {r["seed"] for r in b})
    return ([r for r in a if r["seed"] in common], [r for r in b if r["seed"] in common])


def _gains(runs: list[dict], n: int) -> list[float]:
    return [r[f"gain_{n}"] for r in runs]


def _improves(runs: list[dict], n: int) -> bool:
    """Paired over seeds: the gain over the (common) base model is > 0 by 2 SE."""
    gains = _gains(runs, n)
    return significantly_lower([0.0] * len(gains), gains)


def claims(cfg: SDPOExperimentConfig, groups: dict[str, list[dict]]) -> list[dict]:
    steps = cfg.eval.steps
    out = []
    sdpo = groups.get("sdpo")
    if sdpo:
        improved = [n for n in steps if _improves(sdpo, n)]
        gains = ", ".join(f"{n}: {np.mean(_gains(sdpo, n)):+.3g}" for n in steps)
        out.append(claim("SDPO improves the reward at every step count (step generalization)",
                         "+1.3 / +1.95 / +2.15 / +2.45 at 1/2/4/8 steps",
                         f"gain at {gains}", len(improved) == len(steps),
                         f"significant (2 SE over seeds) at {improved or 'none'}"))
        for base in BASELINES:
            if base not in groups:
                continue
            other, ours = paired(groups[base], sdpo)
            wins = [n for n in steps
                    if significantly_lower([r[f"final_{n}"] for r in other], [r[f"final_{n}"] for r in ours])]
            diffs = ", ".join(
                f"{n}: {np.mean([a[f'final_{n}'] - b[f'final_{n}'] for a, b in zip(ours, other, strict=True)]):+.3g}"
                for n in steps)
            out.append(claim(f"SDPO beats {base.upper()} at every step count",
                             f"SDPO − {base.upper()} > 0 at 1/2/4/8 steps", f"SDPO − {base.upper()}: {diffs}",
                             len(wins) == len(steps), f"significant at {wins or 'none'}"))
    for base in BASELINES:
        runs = groups.get(base)
        if not runs or len(steps) < 2:
            continue
        g1 = np.mean(_gains(runs, steps[0]))
        others = {n: np.mean(_gains(runs, n)) for n in steps[1:]}
        out.append(claim(f"{base.upper()} improves least at {steps[0]} step",
                         "trajectory-level methods gain least at 1 step",
                         f"gain {g1:+.3g} at {steps[0]} vs " + ", ".join(f"{v:+.3g} at {n}" for n, v in others.items()),
                         bool(g1 <= min(others.values()))))
    if sdpo and "sdpo-sparse" in groups:
        n = steps[0]
        sparse, dense = paired(groups["sdpo-sparse"], sdpo)
        holds = significantly_lower([r[f"final_{n}"] for r in sparse], [r[f"final_{n}"] for r in dense])
        out.append(claim(f"Dense rewards beat the sparse final reward at {n} step",
                         "the motivation of SDPO's dense reward",
                         f"{np.mean([r[f'final_{n}'] for r in dense]):.4g} vs "
                         f"{np.mean([r[f'final_{n}'] for r in sparse]):.4g} "
                         f"(seeds {[r['seed'] for r in sparse]})", holds))
    return out


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
    series = {name: (cfg.eval.steps, [np.mean(_gains(groups[name], n)) for n in cfg.eval.steps],
                     [np.std(_gains(groups[name], n)) for n in cfg.eval.steps])
              for name in groups}
    line_plot(out_dir / "gain_vs_steps.png", series, xlabel="sampling steps", ylabel="final − base reward",
              title="step generalization", logx=True)
    files.append("gain_vs_steps.png")
    return files
