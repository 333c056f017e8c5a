"""The figures of the FWA reproduction (PNG, via shared.results.line_plot)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from papers.fwa.config import FWAConfig
from shared.results import line_plot


def convex_plots(cfg: FWAConfig, summary: dict, out: Path) -> list[str]:
    paths = []
    for name in cfg.convex.datasets:
        entry = summary[name]["sqrt"]
        series, styles, colors = {}, {}, {}
        for i, k in enumerate(k for k in cfg.convex.windows if k > 1):
            f = entry[f"fwa{k}"]
            series[f"k={k}"] = (f["T"], f["ratio"])
            series[f"k={k} theory"] = (f["T"], f["theory"])
            styles[f"k={k} theory"] = ":"
            colors[f"k={k}"] = colors[f"k={k} theory"] = f"C{i % 10}"
        paths.append(line_plot(out / f"convex_ratio_{name}.png", series, styles=styles,
                               colors=colors, logx=True,
                               xlabel="T (steps)", ylabel="FWA / SGD suboptimality",
                               title=f"{name}, α_t = c/√t: measured (solid), theory (dotted)"))
        series = {m: (v["T"], v["mean"], v["std"]) for m, v in entry.items()}
        paths.append(line_plot(out / f"convex_subopt_{name}.png", series, logx=True, logy=True,
                               xlabel="T (steps)", ylabel="F(w̄) − F*",
                               title=f"{name}, α_t = c/√t (mean ± std over seeds)"))
    return [str(p.relative_to(out.parent)) for p in paths]


def stability_plots(cfg: FWAConfig, summary: dict, out: Path) -> list[str]:
    s = cfg.stability
    paths = []
    n = max(s.sizes)
    for model in s.models:
        series = {}
        for schedule in s.schedules:
            for method, v in summary[model][n][schedule].items():
                if method == "fwa1":
                    continue
                series[f"{schedule} {method}"] = (v["T"], v["mean"], v["std"])
        paths.append(line_plot(out / f"stability_T_{model}.png", series, logx=True, logy=True,
                               xlabel="T (steps)", ylabel="‖w̄ − w̄′‖",
                               title=f"{model}, n={n}: distance on neighbouring datasets"))
    if len(s.sizes) > 1:
        series = {}
        for model in s.models:
            for schedule in s.schedules:
                final = [summary[model][m][schedule]["sgd"]["mean"][-1] for m in s.sizes]
                series[f"{model} {schedule}"] = (s.sizes, final)
        ref = summary[s.models[0]][s.sizes[0]][s.schedules[0]]["sgd"]["mean"][-1]
        series["∝ 1/n"] = (s.sizes, [ref * s.sizes[0] / m for m in s.sizes])
        paths.append(line_plot(out / "stability_n.png", series, logx=True, logy=True,
                               styles={"∝ 1/n": "k--"}, xlabel="n (training samples)",
                               ylabel=f"SGD ‖w_T − w′_T‖, T={s.steps}",
                               title="Stability against dataset size"))
    return [str(p.relative_to(out.parent)) for p in paths]


def nonconvex_plots(cfg: FWAConfig, curves: dict, gaps: dict, epochs: list[int], out: Path) -> list[str]:
    paths = []
    for name, data, label in (("test_acc", curves, "test accuracy"), ("loss_gap", gaps, "test − train loss")):
        series = {}
        for method, runs in data.items():
            arr = np.asarray(runs)
            series[method] = (epochs, arr.mean(0), arr.std(0))
        paths.append(line_plot(out / f"nonconvex_{name}.png", series, xlabel="epoch", ylabel=label,
                               title=f"{cfg.train.dataset}: {label} (mean ± std over seeds)"))
    return [str(p.relative_to(out.parent)) for p in paths]
