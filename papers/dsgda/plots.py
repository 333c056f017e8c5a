"""The figures of the D-SGDA reproduction (PNG, via shared.results.line_plot): per setting,
ε against T for every η, ε and the weak PD gap against N, ε and the consensus distance
against K, and the population primal risk against T for every N (the optimal-T trade-off)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from papers.dsgda.experiment import base_point
from shared.results import line_plot


def _band(curves) -> tuple:
    arr = np.asarray(curves, float)
    return arr.mean(0), arr.std(0)


def all_plots(res, out: Path) -> list[str]:
    paths = []
    T = res.T
    for setting in res.cfg.sweep.settings:
        entries = res.grid.get("eta") or [("base", base_point(res.cfg))]
        series = {f"η={v}": (T, *_band(res.curves(setting, p, "eps"))) for v, p in entries}
        paths.append(line_plot(out / f"{setting}_eps_T.png", series, logx=True, logy=True,
                               xlabel="T (local steps)", ylabel="ε = ‖x̄−x̄′‖ + ‖ȳ−ȳ′‖",
                               title=f"{setting}: stability against T (mean ± std over seeds)"))
        if "N" in res.grid:
            Ns = [v for v, _ in res.grid["N"]]
            series = {}
            for metric, label in (("eps", "ε"), ("gap", "weak PD gap"), ("gap_strong", "strong PD gap"),
                                  ("pop_pd", "population weak PD risk")):
                finals = [res.final(setting, p, metric) for _, p in res.grid["N"]]
                series[label] = (Ns, [np.mean(f) for f in finals], [np.std(f) for f in finals])
            paths.append(line_plot(out / f"{setting}_N.png", series, logx=True,
                                   xlabel="N = m·n", ylabel=f"value at T={T[-1]}",
                                   title=f"{setting}: stability and generalization against N"))
            series = {f"N={v}": (T, *_band(res.curves(setting, p, "pop_primal"))) for v, p in res.grid["N"]}
            paths.append(line_plot(out / f"{setting}_risk_T.png", series, logx=True,
                                   xlabel="T (local steps)", ylabel="population primal risk sup_y F_D(x̄, y)",
                                   title=f"{setting}: population risk against T"))
        if "K" in res.grid:
            series = {}
            for sweep, topo, tag in (("K", "full", "full"), ("K", "ring", "ring"), ("K_skew", "ring", "ring skew")):
                pts = [(v[1], p) for v, p in res.grid.get(sweep, []) if v[0] == topo]
                Ks = [k for k, _ in pts]
                if not pts:
                    continue
                for metric, label in (("eps", "ε"), ("client_eps", "per-client"), ("consensus", "consensus dist.")):
                    finals = [res.final(setting, p, metric) for _, p in pts]
                    if topo == "full" and metric == "consensus":
                        continue  # zero after every mixing step: no point on a log axis
                    series[f"{tag} {label}"] = (Ks, [np.mean(f) for f in finals], [np.std(f) for f in finals])
            paths.append(line_plot(out / f"{setting}_K.png", series, logx=True, logy=True,
                                   xlabel="K (local steps between mixings)", ylabel=f"value at T={T[-1]}",
                                   title=f"{setting}: local steps, server (full) vs ring"))
    return [str(Path(p).relative_to(out.parent)) for p in paths]
