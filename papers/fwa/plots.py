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


def nonsmooth_plots(cfg: FWAConfig, rows: list[dict], out: Path) -> list[str]:
    """f − F* of the last iterate and of each FWA window against T, and the last/FWA ratio."""
    Ts = [r["T"] for r in rows]
    names = list(rows[-1]["window"])
    series = {"SGD (last iterate)": (Ts, [r["value"]["sgd"] for r in rows])}
    for m in names:
        pts = [(r["T"], r["value"][m]) for r in rows if m in r["value"]]
        series[m] = ([p[0] for p in pts], [p[1] for p in pts])
    series["lower bound log T/(32√T)"] = (Ts, [r["lower_bound"] for r in rows])
    paths = [line_plot(out / "nonsmooth_subopt.png", series, logx=True, logy=True,
                       styles={"lower bound log T/(32√T)": ":"}, xlabel="T (steps)",
                       ylabel="f − F*", title="Non-smooth construction (Harvey et al. 2019)")]
    ratio, styles, colors = {}, {}, {}
    for i, m in enumerate(names):
        pts = [(r["T"], r["ratio"][m], r["theory"][m]) for r in rows if m in r["ratio"]]
        ratio[f"{m}"] = ([p[0] for p in pts], [p[1] for p in pts])
        ratio[f"{m} 1/theory"] = ([p[0] for p in pts], [1.0 / p[2] for p in pts])
        styles[f"{m} 1/theory"] = ":"
        colors[m] = colors[f"{m} 1/theory"] = f"C{i % 10}"
    paths.append(line_plot(out / "nonsmooth_ratio.png", ratio, styles=styles, colors=colors,
                           logx=True, xlabel="T (steps)", ylabel="SGD / FWA suboptimality",
                           title="last iterate over FWA: measured (solid), bound ratio⁻¹ (dotted)"))
    return [str(p.relative_to(out.parent)) for p in paths]
