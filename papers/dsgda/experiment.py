"""From a configuration to measured trends: grid points, the replicas that realise them, one
vectorised run per (setting, seed, m, n), and per-point summaries.

Common random numbers: for one seed, every grid point with the same (m, n, split) trains on
the same neighbouring pairs of datasets, and every point starts from the same initial point
and sees the same sample-index stream, so a sweep over η, K or topology changes only the
swept quantity.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from papers.dsgda import data as client_data
from papers.dsgda import measures
from papers.dsgda.algorithm import Replicas, horizons, simulate
from papers.dsgda.config import DSGDAConfig
from papers.dsgda.problems import Pool, make_problem
from papers.dsgda.topology import as_tensor, describe, mixing_matrix
from shared import UserError

# The brief's output for C-C is the time average (cc). For the bilinear game it is the last
# iterate: SGDA rotates around the saddle, so the time average of the coupled runs' difference
# averages out and stays bounded, while the last iterates drift apart (both are measured).
OUTPUT_OF_SETTING = {"cc": "avg", "scsc": "last", "plsc": "last", "ncnc": "last",
                     "bilinear": "last", "nonpl": "last"}


@dataclass(frozen=True)
class Point:
    """One configuration of the algorithm: η_x = eta, η_y = eta · sgda.lr_y / sgda.lr_x."""

    m: int
    n: int
    K: int
    eta: float
    topology: str
    split: str

    @property
    def key(self) -> str:
        return f"m{self.m}-n{self.n}-K{self.K}-eta{self.eta:g}-{self.topology}-{self.split}"


def base_point(cfg: DSGDAConfig) -> Point:
    s = cfg.sgda
    return Point(s.clients, s.samples_per_client, s.local_steps, s.lr_x, s.topology, cfg.data.split)


def grid(cfg: DSGDAConfig) -> dict[str, list[tuple[object, Point]]]:
    """{sweep: [(swept value, point)]}; "T" is the base point, read at every horizon."""
    base, sw = base_point(cfg), cfg.sweep
    N = base.m * base.n
    out: dict[str, list] = {"T": [(cfg.sgda.steps, base)]}
    if "eta" in sw.sweeps:
        out["eta"] = [(e, _replace(base, eta=e)) for e in sw.etas]
    if "K" in sw.sweeps:
        out["K"] = [((topo, k), _replace(base, K=k, topology=topo))
                    for topo in ("full", "ring") for k in sw.local_steps]
    if "topology" in sw.sweeps:
        m = max(sw.clients)
        out["topology"] = [(t, _replace(base, m=m, n=_per_client(N, m, "topology"), topology=t))
                           for t in sw.topologies]
    if "m" in sw.sweeps:
        out["m"] = [(m, _replace(base, m=m, n=_per_client(N, m, "m"))) for m in sw.clients]
    if "N" in sw.sweeps:
        out["N"] = [(total, _replace(base, n=_per_client(total, base.m, "N"))) for total in sw.total_samples]
    if "split" in sw.sweeps:
        out["split"] = [(s, _replace(base, split=s)) for s in ("iid", "label_skew")]
    if "K_skew" in sw.sweeps:  # the ring K sweep on label-skewed clients
        out["K_skew"] = [(("ring", k), _replace(base, K=k, topology="ring", split="label_skew"))
                         for k in sw.local_steps]
    if "topology_skew" in sw.sweeps:
        m = max(sw.clients)
        out["topology_skew"] = [(t, _replace(base, m=m, n=_per_client(N, m, "topology_skew"), topology=t,
                                             split="label_skew")) for t in sw.topologies]
    return out


def _replace(point: Point, **changes) -> Point:
    return Point(**{**asdict(point), **changes})


def _per_client(total: int, m: int, sweep: str) -> int:
    if total % m:
        raise UserError(f"sweep {sweep}: N = {total} is not divisible by m = {m}")
    return total // m


def shapes(points: list[Point]) -> dict[tuple[int, int], list[Point]]:
    """Distinct points grouped by (m, n): one vectorised run each."""
    out: dict[tuple[int, int], list[Point]] = {}
    for p in dict.fromkeys(points):
        out.setdefault((p.m, p.n), []).append(p)
    return out


def _data_seed(seed: int, m: int, n: int, split: str) -> int:
    return (seed * 1_000_003 + m * 10_007 + n * 101 + (split == "label_skew")) % 2**62


def build_replicas(cfg: DSGDAConfig, problem, pool: Pool, points: list[Point], seed: int,
                   pairs: int) -> Replicas:
    """2·pairs replicas per point, laid out [S_1, S_1′, S_2, S_2′, ...] point after point."""
    m, n = points[0].m, points[0].n
    assert all((p.m, p.n) == (m, n) for p in points)
    dtype = getattr(torch, cfg.sgda.dtype)
    datasets = {}
    for split in dict.fromkeys(p.split for p in points):
        gen = torch.Generator().manual_seed(_data_seed(seed, m, n, split))
        zs = []
        for _ in range(pairs):
            idx, unused = client_data.client_split(pool.label, pool.num_labels, m, n, split,
                                                   cfg.data.skew_alpha, gen)
            other, _ = client_data.neighbour(idx, unused, gen)
            zs += [pool.z[idx], pool.z[other]]
        datasets[split] = torch.stack(zs).to(dtype)  # (2P, m, n, dz)
    x0, y0 = problem.init(pairs, torch.Generator().manual_seed(seed), cfg.problem.init_scale, dtype)
    x0, y0 = x0.repeat_interleave(2, 0), y0.repeat_interleave(2, 0)
    Ws = {t: as_tensor(mixing_matrix(t, m, cfg.sgda.graph, cfg.sgda.matrix_path), dtype)
          for t in dict.fromkeys(p.topology for p in points)}
    R = 2 * pairs * len(points)

    def per_replica(values) -> torch.Tensor:
        return torch.tensor(values).repeat_interleave(2 * pairs)

    return Replicas(
        z=torch.cat([datasets[p.split] for p in points]),
        n=torch.full((R,), n, dtype=torch.long),
        stream=torch.arange(pairs).repeat_interleave(2).repeat(len(points)),
        lr_x=per_replica([p.eta for p in points]).to(dtype),
        lr_y=per_replica([p.eta * cfg.sgda.lr_y / cfg.sgda.lr_x for p in points]).to(dtype),  # η_y/η_x as configured
        K=per_replica([p.K for p in points]).long(),
        W=torch.stack([Ws[p.topology] for p in points]).repeat_interleave(2 * pairs, 0),
        x0=x0.repeat(len(points), 1), y0=y0.repeat(len(points), 1),
        num_streams=pairs,
        meta=[{"point": p.key, "pair": k // 2, "member": k % 2}
              for p in points for k in range(2 * pairs)],
    )


def run_points(cfg: DSGDAConfig, setting: str, seed: int, points: list[Point],
               show_progress: bool = False, trace_fn=None, keep_trace: bool = False,
               measure: bool = True) -> dict:
    """Simulate (or, with `trace_fn`, run another backend on) the points of one (m, n) shape
    and summarise every point: {"T": [...], "output": ..., "points": {key: {metric: [per
    horizon]}}} (+ "trace", the raw iterates, with `keep_trace`). With measure=False only
    the trace is returned (a distributed rank that writes nothing)."""
    problem, pool = problem_for(cfg, setting)
    reps = build_replicas(cfg, problem, pool, points, seed, cfg.sweep.pairs)
    hs = horizons(cfg.sgda.steps, cfg.sgda.eval_points)
    if trace_fn is None:
        trace = simulate(problem, reps, cfg.sgda.steps, cfg.sgda.batch_size, hs, seed,
                         show_progress=show_progress, desc=f"{setting} m={points[0].m} n={points[0].n}")
    else:
        trace = trace_fn(problem, reps, hs)
    if not measure:
        return {"trace": trace}
    out = summarise(cfg, problem, pool, reps, trace, points, setting)
    if keep_trace:
        out["trace"] = trace
    return out


def problem_for(cfg: DSGDAConfig, setting: str):
    from dataclasses import replace

    return make_problem(replace(cfg.problem, setting=setting), cfg.data)


def summarise(cfg: DSGDAConfig, problem, pool: Pool, reps: Replicas, trace: dict,
              points: list[Point], setting: str) -> dict:
    """Per point: ε, the per-client distance and every measure for both outputs, averaged over
    its replicas/pairs (the weak PD risks: one expectation over the point's replicas), and
    the contraction η_x·μ_x·T at every horizon (see measures.x_curvature)."""
    pairs = cfg.sweep.pairs
    for key in ("x", "y"):
        bad = ~torch.isfinite(trace[key]).all(-1).all(-1)
        if bad.any():
            point = points[int(bad.nonzero()[0]) // (2 * pairs)]
            raise UserError(f"{setting}: the iterates diverged at {point.key} (T ≤ {cfg.sgda.steps}); "
                            "use smaller step sizes (sgda.lr_x/lr_y, sweep.etas)")
    out: dict = {"T": list(trace["T"]), "output": OUTPUT_OF_SETTING[setting], "points": {}}
    population = pool.population(problem)
    groups = torch.arange(len(points)).repeat_interleave(2 * pairs)  # one expectation per grid point
    per_output = {o: measures.evaluate(problem, reps, trace, population, pool.z_test, o, groups, len(points))
                  for o in measures.OUTPUTS}
    eps = {o: measures.pair_distance(trace, o) for o in measures.OUTPUTS}
    client = {o: measures.client_distance(trace, o) for o in measures.OUTPUTS}
    for i, p in enumerate(points):
        rows = slice(2 * pairs * i, 2 * pairs * (i + 1))
        pair_rows = slice(pairs * i, pairs * (i + 1))
        entry = {"W": describe(reps.W[2 * pairs * i].double().numpy())}
        for o in measures.OUTPUTS:
            entry[f"{o}/eps"] = eps[o][pair_rows].mean(0).tolist()
            entry[f"{o}/client_eps"] = client[o][pair_rows].mean(0).tolist()
            per_replica, weak = per_output[o]
            for metric, value in per_replica.items():
                entry[f"{o}/{metric}"] = value[rows].mean(0).tolist()
            for metric, value in weak.items():
                entry[f"{o}/{metric}"] = value[i].tolist()
            entry[f"{o}/contraction"] = [p.eta * mu * T for mu, T in zip(entry[f"{o}/mu_x"], out["T"])]
        out["points"][p.key] = entry
    return out
