"""Experiment 1 (design ours; brief "What a reproduction measures" 1): convergence of FWA on
L2-regularised logistic regression, F(w̄_T^k) − F* against T and k, for α_t = c/√t,
constant and c/t, compared with the theory trend (C₀ + log(T/k))/(2 + log T).

Two measurements say whether the run is in the regime where a window can matter: SGD's
suboptimality at T/4 (is SGD still converging?) and the integrated autocorrelation time τ
of SGD's suboptimality over the last half of the run (a window k ≪ τ averages iterates
that are nearly the same, so FWA/SGD ≈ 1 by construction).
"""

from __future__ import annotations

import numpy as np
import torch

from papers.fwa.averaging import fraction_label
from papers.fwa.config import ConvexConfig
from papers.fwa.data import binary_dataset
from papers.fwa.problems import LogisticProblem, optimum
from papers.fwa.theory import convergence_ratio
from papers.fwa.trajectory import horizons, run_trajectory, schedule_tensors
from shared import UserError
from shared.seeding import torch_generator
from shared.tracking import Tracker, progress


def smoothness(X: np.ndarray, l2: float) -> float:
    """β of every per-sample loss log(1 + exp(−y x·w)) + (λ/2)‖w‖²: max‖x‖²/4 + λ."""
    return float((np.asarray(X, dtype=np.float64) ** 2).sum(1).max() / 4.0 + l2)


def step_constants(X: np.ndarray, y: np.ndarray, w_star: np.ndarray, l2: float, T: int,
                   inv_shift: float = 0.05) -> dict:
    """Step sizes that respect smoothness, per schedule (α_t = c·(t + s)^(−p)).

    The classical bound (D²/c + cG²)·rate is smallest at c = D/G, with D = ‖w₀ − w*‖
    (w₀ = 0) and G² = E‖∇f(w₀; z)‖². On ill-conditioned data that step is far beyond the
    smoothness of single samples (breast-cancer: D/G ≈ 1.63 against 1/β ≈ 0.0095), so the
    first step is capped at 1/β, β = max‖x‖²/4 + λ (α·β ≤ 1, inside the α ≤ 2/β the
    stability theorems and the descent lemma need):
    - c/√t: c = min(D/G, 1/β);
    - constant: α = min(D/(G√T), 1/β) (the horizon-optimal constant step, capped);
    - c/(t + t₀) with t₀ = `inv_shift`·T: c = min(D/G, 1/β)·(1 + t₀), so α₁ is the capped
      step and the step falls like 1/t over the second part of the run (a plain c/t with
      c·μ ≪ 1 stalls: it never converges within T).
    Returns {"lr": c per schedule, "shift": s per schedule, "first": α₁ per schedule,
    "beta": β, "bound_optimal": D/G}. The config's `lr` multiplies "lr" (and α₁).
    """
    grads = -(y * 0.5)[:, None] * X  # ∇f(0; z) = −y σ(0) x (the λw term vanishes at 0)
    G = float(np.sqrt((grads**2).sum(1).mean()))
    c = float(np.linalg.norm(w_star)) / G
    beta = smoothness(X, l2)
    first = min(c, 1.0 / beta)
    t0 = float(inv_shift * T)
    lr = {"sqrt": first, "const": min(c / np.sqrt(T), 1.0 / beta), "inv": first * (1.0 + t0)}
    return {"lr": lr, "shift": {"sqrt": 0.0, "const": 0.0, "inv": t0},
            "first": {"sqrt": first, "const": lr["const"], "inv": first},
            "beta": beta, "bound_optimal": c}


def prepare(cfg: ConvexConfig) -> dict[str, tuple]:
    """Per dataset: (X, y, F*, step constants c, shifts s, steps record) with F* from a
    Newton solve; the record holds α₁ and β per schedule (α₁·β ≤ lr multiplier)."""
    out = {}
    for name in cfg.datasets:
        X, y = binary_dataset(name, cfg.synthetic_samples, cfg.synthetic_features, cfg.data_seed)
        try:
            w_star, f_star = optimum(X, y, cfg.l2)
        except UserError as exc:
            raise UserError(f"convex/{name} with convex.l2={cfg.l2:g}: {exc}") from None
        base = step_constants(X, y, w_star, cfg.l2, cfg.steps, cfg.inv_shift)
        lrs = {s: cfg.lr[s] * base["lr"][s] for s in cfg.schedules}
        shifts = {s: base["shift"][s] for s in cfg.schedules}
        steps = {"beta": base["beta"], "bound_optimal": base["bound_optimal"],
                 "first": {s: cfg.lr[s] * base["first"][s] for s in cfg.schedules}}
        out[name] = (X, y, f_star, lrs, shifts, steps)
    return out


def autocorrelation_time(x: np.ndarray, c: float = 5.0) -> float:
    """Integrated autocorrelation time τ = 1 + 2 Σ_{l≥1} ρ(l) of a series, with Sokal's
    automatic window (the smallest M with M ≥ c·τ(M)). The estimate is only trustworthy
    when the series is much longer than τ (`RESOLVED_LENGTH` τ, as emcee asks)."""
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean()
    n = len(x)
    if n < 2 or not np.any(x):
        return float("nan")
    f = np.fft.rfft(x, 2 * n)
    acf = np.fft.irfft(f * np.conj(f))[:n]
    acf /= acf[0]
    taus = 2.0 * np.cumsum(acf) - 1.0
    short = np.arange(n) < c * taus
    window = int(np.argmin(short)) if not short.all() else n - 1
    return float(taus[window])


RESOLVED_LENGTH = 50  # a τ estimate is resolved when the series is at least this many τ long


def run_dataset(cfg: ConvexConfig, seed: int, index: int, name: str, dataset: tuple,
                tracker: Tracker, bar) -> tuple[dict, dict]:
    """One dataset, one model per step-size schedule, all on the same data and from w₀ = 0:
    ({schedule: {method: {"T": [...], "value": [F(w̄) − F*, ...]}}}, {schedule: {"quarter":
    SGD's F − F* at T/4, "tau": τ of SGD's F − F* over the last half, "length": that
    series' length}}).

    The schedules do *not* share one index stream: each model is its own group, so at every
    step each schedule draws its own sample index (one draw per schedule from the one
    generator seeded by (seed, dataset)). Schedules are compared across independent
    trajectories; what shares a trajectory is every averaged output of one schedule (SGD,
    FWA-k, SWA, EMA are all read off that schedule's iterates)."""
    X, y, f_star, lrs, shifts, _ = dataset
    M = len(cfg.schedules)
    problem = LogisticProblem(torch.tensor(X).expand(M, *X.shape),
                              torch.tensor(y).expand(M, *y.shape), cfg.l2)
    c, power, shift = schedule_tensors(cfg.schedules, lrs, 1, shifts)
    record: dict = {s: {} for s in cfg.schedules}
    quarter, half = max(1, cfg.steps // 4), cfg.steps // 2
    tail = torch.zeros(cfg.steps - half, M, X.shape[1], dtype=torch.float64)
    at_quarter: list = []

    def on_step(t, pop):  # SGD's iterates for the diagnostics (no random numbers drawn)
        if t == quarter:
            at_quarter.extend((problem.objective(pop.tensors()) - f_star).tolist())
        if t > half:
            tail[t - half - 1].copy_(pop.tensors()[0])

    def on_eval(T, averagers, pop):
        logged = {}
        for method in averagers.methods:
            if not averagers.ready(method):
                continue
            value = problem.objective(averagers.weights(method, pop)) - f_star
            for s, schedule in enumerate(cfg.schedules):
                curve = record[schedule].setdefault(method, {"T": [], "value": []})
                curve["T"].append(T)
                curve["value"].append(float(value[s]))
                logged[f"convex/{name}/{schedule}/{method}"] = float(value[s])
        tracker.log(logged, step=index * cfg.steps + T)

    run_trajectory(problem, problem.init(M, None), steps=cfg.steps, c=c, power=power,
                   windows=cfg.windows,
                   eval_at=horizons(cfg.eval_first, cfg.steps, cfg.eval_points),
                   generator=torch_generator(seed * 7919 + index), groups=torch.arange(M),
                   on_eval=on_eval, on_step=on_step, ema_decay=cfg.ema_decay, progress=bar,
                   fractions=cfg.window_fractions, shift=shift)
    series = suboptimality_series(problem, tail, f_star)
    diagnostics = {schedule: {"quarter": at_quarter[s], "tau": autocorrelation_time(series[:, s]),
                              "length": len(series)}
                   for s, schedule in enumerate(cfg.schedules)}
    return record, diagnostics


def suboptimality_series(problem: LogisticProblem, iterates: torch.Tensor, f_star: float,
                         chunk: int = 1024) -> np.ndarray:
    """F(w_t) − F* for iterates (steps, M, d) of the problem's M models: (steps, M)."""
    out = []
    for start in range(0, len(iterates), chunk):
        block = iterates[start:start + chunk]  # (b, M, d)
        margins = problem.y[None] * torch.einsum("mnd,bmd->bmn", problem.X, block)
        data = torch.nn.functional.softplus(-margins).mean(-1)  # (b, M)
        out.append(data + 0.5 * problem.l2 * (block ** 2).sum(-1) - f_star)
    return torch.cat(out).numpy() if out else np.zeros((0, problem.X.shape[0]))


def run_seed(cfg: ConvexConfig, seed: int, tracker: Tracker, datasets: dict) -> dict:
    """out[dataset][schedule][method] = {"T": [...], "value": [F(w̄) − F*, ...]} and
    out["diagnostics"][dataset][schedule] = SGD's F − F* at T/4 and τ (see run_dataset)."""
    bar = progress(total=cfg.steps * len(datasets), desc=f"convex seed {seed}", leave=False)
    out: dict = {"diagnostics": {}}
    for index, (name, dataset) in enumerate(datasets.items()):
        out[name], out["diagnostics"][name] = run_dataset(cfg, seed, index, name, dataset,
                                                          tracker, bar)
    bar.close()
    return out


def aggregate(cfg: ConvexConfig, per_seed: list[dict]) -> dict:
    """Across seeds: mean/std suboptimality and the measured FWA/SGD ratio of means."""
    summary: dict = {}
    for name in cfg.datasets:
        for schedule in cfg.schedules:
            methods = per_seed[0][name][schedule]
            entry = summary.setdefault(name, {}).setdefault(schedule, {})
            for method, curve in methods.items():
                Ts = curve["T"]
                values = np.array([s[name][schedule][method]["value"] for s in per_seed])
                entry[method] = {"T": Ts, "mean": values.mean(0).tolist(),
                                 "std": values.std(0, ddof=1 if len(values) > 1 else 0).tolist(),
                                 "final": values[:, -1].tolist()}
            sgd = np.array(entry["sgd"]["mean"])
            for k in cfg.windows:
                fwa = entry[f"fwa{k}"]
                base = sgd[[entry["sgd"]["T"].index(T) for T in fwa["T"]]]
                fwa["ratio"] = (np.array(fwa["mean"]) / base).tolist()
                fwa["theory"] = [convergence_ratio(T, k, cfg.theory_c0) for T in fwa["T"]]
            for f in cfg.window_fractions:
                fwa = entry.get(f"fwaT{fraction_label(f)}")
                if fwa is None:
                    continue
                base = sgd[[entry["sgd"]["T"].index(T) for T in fwa["T"]]]
                fwa["ratio"] = (np.array(fwa["mean"]) / base).tolist()
                fwa["theory"] = [convergence_ratio(T, max(1, int(f * T)), cfg.theory_c0)
                                 for T in fwa["T"]]
    return summary


def diagnostics(cfg: ConvexConfig, per_seed: list[dict]) -> dict | None:
    """Per dataset and schedule, per seed: SGD's F − F* at T/4 and at T, τ and the length of
    the series τ was measured on; None for runs recorded before these were kept."""
    if any("diagnostics" not in s for s in per_seed):
        return None
    out: dict = {}
    for name in cfg.datasets:
        for schedule in cfg.schedules:
            per = [s["diagnostics"][name][schedule] for s in per_seed]
            out.setdefault(name, {})[schedule] = {
                "quarter": [p["quarter"] for p in per],
                "final": [s[name][schedule]["sgd"]["value"][-1] for s in per_seed],
                "tau": [p["tau"] for p in per], "length": per[0]["length"]}
    return out
