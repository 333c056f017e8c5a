"""Experiment 2 (design ours; brief "What a reproduction measures" 2): algorithmic stability.

For each pair, S has n samples from a pool and S^(i) replaces sample i by a fresh one; both
runs start from the same weights and draw the same index sequence (coupled sampling, Hardt
et al. 2016). We measure ‖w̄_T^k − w̄'_T^k‖ for SGD (k = 1) and FWA windows against T, n
and k, for a constant step and α_t = c/t, on a convex (logistic) and a non-convex (tanh MLP)
model, plus the real train–test gap of each output. At T we also record the mean of δ_t
over each window, which bounds FWA's distance by the triangle inequality.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn.functional import softplus

from papers.fwa.config import StabilityConfig
from papers.fwa.data import binary_dataset
from papers.fwa.problems import LogisticProblem, MLPProblem
from papers.fwa.theory import logistic_constants
from papers.fwa.trajectory import horizons, run_trajectory, schedule_tensors
from shared.seeding import torch_generator
from shared.tracking import Tracker, progress


def pool(cfg: StabilityConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(X_pool, y_pool, X_test, y_test) from one fixed make_classification draw."""
    X, y = binary_dataset("synthetic", cfg.pool_samples + cfg.test_samples, cfg.features,
                          cfg.data_seed)
    X, y = torch.tensor(X), torch.tensor(y)
    return X[: cfg.pool_samples], y[: cfg.pool_samples], X[cfg.pool_samples:], y[cfg.pool_samples:]


def bound_constants(data: tuple) -> dict:
    """L and β of the logistic loss over the pool every S and S^(i) is drawn from."""
    return logistic_constants(data[0].numpy())


def neighbouring_pairs(
    X: torch.Tensor, y: torch.Tensor, n: int, pairs: int, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Data for 2·pairs models laid out [S_1, S_1^(i), S_2, S_2^(i), ...]: (2P, n, d), (2P, n)."""
    xs, ys = [], []
    for _ in range(pairs):
        order = torch.randperm(len(X), generator=gen)
        members, fresh = order[:n], order[n]
        i = int(torch.randint(n, (1,), generator=gen))
        neighbour = members.clone()
        neighbour[i] = fresh
        xs += [X[members], X[neighbour]]
        ys += [y[members], y[neighbour]]
    return torch.stack(xs), torch.stack(ys)


def pair_distance(weights: list[torch.Tensor]) -> torch.Tensor:
    """‖w − w'‖ for every consecutive (S, S^(i)) pair of models: (M/2,)."""
    flat = torch.cat([w.reshape(len(w), -1) for w in weights], dim=1)
    return (flat[0::2] - flat[1::2]).norm(dim=1)


def data_loss(problem: LogisticProblem, weights: list[torch.Tensor], X, y) -> torch.Tensor:
    return softplus(-problem.margins(weights, X, y)).mean(-1)


def run_case(cfg: StabilityConfig, model: str, n: int, seed: int, data: tuple) -> dict:
    """One (model, n) case, every schedule at once: distances per T, and at T the gaps and
    the mean of δ_t = ‖w_t − w′_t‖ over each window."""
    X_pool, y_pool, X_test, y_test = data
    gen = torch_generator(seed * 104729 + n + (0 if model == "convex" else 1))
    X_pairs, y_pairs = neighbouring_pairs(X_pool, y_pool, n, cfg.pairs, gen)
    S = len(cfg.schedules)
    X_all, y_all = X_pairs.repeat(S, 1, 1), y_pairs.repeat(S, 1)  # schedule-major layout
    if model == "convex":
        problem = LogisticProblem(X_all, y_all, cfg.l2)
    else:
        problem = MLPProblem(X_all, y_all, cfg.l2, cfg.hidden)
    M = len(X_all)
    groups = torch.arange(M) // 2  # both members of a pair share the index stream
    init = problem.init(M // 2, gen)
    params = [p.repeat_interleave(2, dim=0) for p in init]  # ...and the initial weights
    c, power = schedule_tensors(cfg.schedules, cfg.lr, 2 * cfg.pairs)
    Xt, yt = X_test.expand(M, *X_test.shape), y_test.expand(M, *y_test.shape)
    dist: dict = {s: {} for s in cfg.schedules}
    gap: dict = {s: {} for s in cfg.schedules}
    window_delta: dict = {s: {} for s in cfg.schedules}

    def on_eval(T, averagers, pop):
        for method in averagers.methods:
            if not averagers.ready(method):
                continue
            weights = averagers.weights(method, pop)
            d = pair_distance(weights).view(S, cfg.pairs).mean(1)
            for s, schedule in enumerate(cfg.schedules):
                curve = dist[schedule].setdefault(method, {"T": [], "value": []})
                curve["T"].append(T)
                curve["value"].append(float(d[s]))
            if T == cfg.steps:
                g = (data_loss(problem, weights, Xt, yt) - data_loss(problem, weights, X_all, y_all))
                g = g[0::2].view(S, cfg.pairs).mean(1)  # the S member of each pair
                k = int(method[3:]) if method.startswith("fwa") else 1
                deltas = (torch.stack([pair_distance(w) for w in averagers.steps.snapshots(k)])
                          if k > 1 else pair_distance(weights)[None])
                mean_delta = deltas.mean(0).view(S, cfg.pairs).mean(1)
                for s, schedule in enumerate(cfg.schedules):
                    gap[schedule][method] = float(g[s])
                    window_delta[schedule][method] = float(mean_delta[s])

    run_trajectory(problem, params, steps=cfg.steps, c=c, power=power, windows=cfg.windows,
                   eval_at=horizons(cfg.eval_first, cfg.steps, cfg.eval_points),
                   generator=gen, groups=groups, on_eval=on_eval, swa=False)
    return {"dist": dist, "gap": gap, "window_delta": window_delta}


def run_seed(cfg: StabilityConfig, seed: int, tracker: Tracker, data: tuple) -> dict:
    """out[model][str(n)] = {dist: {schedule: {method: {"T", "value"}}}, gap: {schedule: {method}}}."""
    out: dict = {}
    cases = [(m, n) for m in cfg.models for n in cfg.sizes]
    for step, (model, n) in enumerate(progress(cases, desc=f"stability seed {seed}", leave=False)):
        case = run_case(cfg, model, n, seed, data)
        out.setdefault(model, {})[str(n)] = case
        tracker.log({f"stability/{model}/n{n}/{s}/{m}/final_dist": v["value"][-1]
                     for s, per in case["dist"].items() for m, v in per.items()}, step=step)
    return out


def aggregate(cfg: StabilityConfig, per_seed: list[dict]) -> dict:
    """Across seeds: distance curves (mean/std and per seed), final distances, gaps and
    window means of δ_t, per model, n, schedule, method (window_delta is None for runs
    recorded before it was kept)."""
    out: dict = {}
    for model in cfg.models:
        for n in cfg.sizes:
            for schedule in cfg.schedules:
                curves = per_seed[0][model][str(n)]["dist"][schedule]
                entry = out.setdefault(model, {}).setdefault(n, {}).setdefault(schedule, {})
                for method, curve in curves.items():
                    Ts = curve["T"]
                    vals = np.array([s[model][str(n)]["dist"][schedule][method]["value"]
                                     for s in per_seed])
                    gaps = [s[model][str(n)]["gap"][schedule][method] for s in per_seed]
                    cases = [s[model][str(n)] for s in per_seed]
                    deltas = ([c["window_delta"][schedule][method] for c in cases]
                              if all("window_delta" in c for c in cases) else None)
                    entry[method] = {"T": Ts, "mean": vals.mean(0).tolist(),
                                     "std": vals.std(0, ddof=1 if len(vals) > 1 else 0).tolist(),
                                     "values": vals.tolist(), "final": vals[:, -1].tolist(),
                                     "gap": gaps, "window_delta": deltas}
    return out


def growth_exponent(T: list[int], dist: list[float]) -> float:
    """Least-squares slope of log ‖w − w'‖ against log T (1 = linear growth), over the
    horizons where the distance is positive (before the replaced sample is first drawn
    the two runs coincide exactly)."""
    T, dist = np.asarray(T, float), np.asarray(dist, float)
    keep = dist > 0
    return float(np.polyfit(np.log(T[keep]), np.log(dist[keep]), 1)[0])
