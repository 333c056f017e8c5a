"""What a run measures at every horizon T (brief, "Measures", and issue 20):

- argument stability ε = ‖x̄ − x̄′‖ + ‖ȳ − ȳ′‖ between the runs on neighbouring datasets S, S′
  (same initial point, same sample-index sequence), on the consensus averages, and beside it
  the per-client distance (1/m) Σ_i ‖x_i − x′_i‖ + ‖y_i − y′_i‖ (≥ ε by the triangle
  inequality; the consensus error both coupled runs share cancels in ε but not client by client);
- the **weak** primal-dual risk of Lei et al. (2021), with the expectation over the algorithm
  and the sample *inside* the sup and the inf:
      Δʷ(A) = sup_{y′∈Y} E[F(A_x(S), y′)] − inf_{x′∈X} E[F(x′, A_y(S))],
  the expectation taken over the 2·pairs replicas of a grid point (every one is a draw of S
  and of the index stream), on the population (F = F_D, exact from the pool's moments: the
  clients sample the pool uniformly, so D is that uniform distribution) and on the training
  sets (F = F_{S_r}, each replica its own S_r); their difference is the weak PD
  generalization gap. Beside it, labelled `_strong`, the strong form E[sup F − inf F] (per
  replica, then averaged), which is ≥ the weak one (sup of a mean ≤ mean of sups);
- the population primal risk R(x) = sup_{y∈Y} F_D(x, y) (per replica, averaged);
- the problem's task score on the held-out set (test AUC for AUC maximisation);
- the consensus distance sqrt(mean_i ‖x_i − x̄‖² + ‖y_i − ȳ‖²);
- the x-curvature μ_x of the empirical objective at the output: the smallest eigenvalue of
  ∇²ₓF_S(x, y) on the directions the iterates can move in (the range of the Hessian and the
  span of the per-sample x-gradients), where the coupled runs on S and S′ can move apart.
  With η_x·μ_x·T ≫ 1 the curvature has contracted the pair by T, so ε has settled at the
  sensitivity of the empirical solution; with η_x·μ_x·T ≲ 1 (or μ_x ≤ 0) it has not. The
  claims use it as the regime precondition of the growth-in-T and growth-in-η trends.

Which output is evaluated: the consensus average of the last iterate, or its time average
(the brief's output for C-C); `OUTPUTS` names them.
"""

from __future__ import annotations

import torch

from papers.dsgda.algorithm import Replicas

OUTPUTS = {"last": ("x", "y"), "avg": ("x_avg", "y_avg")}


def training_set(reps: Replicas) -> tuple[torch.Tensor, torch.Tensor]:
    """Every replica's pooled training set S (R, m·n_max, dz) with weights 1/N on real rows."""
    R, m, n_max, dz = reps.z.shape
    mask = (torch.arange(n_max)[None, :] < reps.n[:, None]).to(reps.z.dtype)  # (R, n_max)
    w = mask[:, None, :].expand(R, m, n_max).reshape(R, m * n_max)
    return reps.z.reshape(R, m * n_max, dz), w / w.sum(1, keepdim=True)


def pair_distance(trace: dict, output: str = "last") -> torch.Tensor:
    """ε for the pairs (replica 2p, 2p + 1): (R/2, H)."""
    kx, ky = OUTPUTS[output]
    x, y = trace[kx], trace[ky]
    return (x[0::2] - x[1::2]).norm(dim=-1) + (y[0::2] - y[1::2]).norm(dim=-1)


def client_distance(trace: dict, output: str = "last") -> torch.Tensor:
    """The per-client distance of the pairs: (R/2, H), ≥ pair_distance."""
    return trace["client_eps" if output == "last" else "client_eps_avg"]


def x_curvature(problem, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor, w: torch.Tensor,
                rtol: float = 1e-10) -> torch.Tensor:
    """μ_x (R,): the smallest eigenvalue of H = ∇²ₓF(x, y), F = Σ_j w_j f(x, y; z_j), on the
    subspace the iterates can move in: the range of H plus the span of the per-sample gradients
    ∇ₓf(x, y; z_j) (a drift along a flat direction counts, a direction no sample ever pushes
    does not). Directions with energy ≤ rtol·max are left out. x (R, dx), y (R, dy),
    z (R, n, dz), w (R, n)."""
    R, n, _ = z.shape
    gx, _ = problem.grads(x[:, None].expand(R, n, -1), y[:, None].expand(R, n, -1), z[:, :, None])
    H = problem.x_hessian(x, y, z, w)
    H = 0.5 * (H + H.transpose(1, 2))
    tiny = torch.finfo(H.dtype).tiny
    grads = torch.einsum("rn,rni,rnj->rij", w, gx, gx)  # Σ_j w_j g_j g_jᵀ
    curv = H @ H
    energy = grads / torch.linalg.matrix_norm(grads, ord=2).clamp_min(tiny)[:, None, None] \
        + curv / torch.linalg.matrix_norm(curv, ord=2).clamp_min(tiny)[:, None, None]
    evals, evecs = torch.linalg.eigh(energy)
    keep = (evals > rtol * evals[:, -1:].clamp_min(tiny)).to(x.dtype)
    P = evecs @ (keep[:, :, None] * evecs.transpose(1, 2))  # projector onto the subspace
    shift = 1.0 + 2 * torch.linalg.matrix_norm(H, ord=2)  # above every eigenvalue of H
    eye = torch.eye(H.shape[-1], dtype=H.dtype)
    restricted = P @ H @ P + shift[:, None, None] * (eye - P)
    return torch.linalg.eigvalsh(restricted)[:, 0]


def evaluate(problem, reps: Replicas, trace: dict, population: tuple, z_test: torch.Tensor,
             output: str, groups: torch.Tensor, count: int) -> tuple[dict, dict]:
    """Per replica {metric: (R, H)}: strong train/population PD risks and their gap, train and
    population primal risks, test scores, μ_x and the consensus distance; and per group of
    replicas (`groups` (R,) in 0..count−1, one group per grid point) {metric: (count, H)}: the
    weak train/population PD risks and their gap."""
    kx, ky = OUTPUTS[output]
    z_train, w_train = training_set(reps)
    train_st = problem.stats(z_train, w_train)  # per replica, once
    z_te = z_test[None].to(reps.z.dtype)
    w_te = torch.full((1, len(z_test)), 1.0 / len(z_test), dtype=reps.z.dtype)
    population = tuple(t.to(reps.z.dtype) for t in population)
    per_h: dict[str, list] = {}
    weak_h: dict[str, list] = {}
    for h in range(len(trace["T"])):
        x, y = trace[kx][:, h], trace[ky][:, h]
        train_primal, pop_primal = problem.primal_st(x, train_st), problem.primal_st(x, population)
        train_pd = train_primal - problem.dual_st(y, train_st)
        pop_pd = pop_primal - problem.dual_st(y, population)
        values = {"train_pd_strong": train_pd, "pop_pd_strong": pop_pd, "gap_strong": pop_pd - train_pd,
                  "train_primal": train_primal, "pop_primal": pop_primal}
        values.update({f"test_{k}": v for k, v in problem.score(x, z_te, w_te).items()})
        values["mu_x"] = x_curvature(problem, x, y, z_train, w_train)
        for key, value in values.items():
            per_h.setdefault(key, []).append(value)
        weak_train = problem.weak_primal(x, train_st, groups, count) - problem.weak_dual(y, train_st, groups, count)
        weak_pop = problem.weak_primal(x, population, groups, count) - problem.weak_dual(y, population, groups, count)
        for key, value in (("train_pd", weak_train), ("pop_pd", weak_pop), ("gap", weak_pop - weak_train)):
            weak_h.setdefault(key, []).append(value)
    out = {k: torch.stack(v, 1) for k, v in per_h.items()}
    out["consensus"] = trace["consensus"]
    return out, {k: torch.stack(v, 1) for k, v in weak_h.items()}
