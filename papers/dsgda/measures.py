"""What a run measures at every horizon T, per replica (brief, "Measures"):

- argument stability ε = ‖x̄ − x̄′‖ + ‖ȳ − ȳ′‖ between the runs on neighbouring datasets S, S′
  (same initial point, same sample-index sequence);
- the weak primal-dual risk Δʷ(x, y) = sup_{y′∈Y} F(x, y′) − inf_{x′} F(x′, y) on the training
  set (empirical) and on the held-out set (the population proxy), and their difference, the
  weak primal-dual generalization gap;
- the primal risk R(x) = sup_{y∈Y} F(x, y) on the held-out set;
- the problem's task score (test AUC for AUC maximisation);
- the consensus distance sqrt(mean_i ‖x_i − x̄‖² + ‖y_i − ȳ‖²);
- the x-curvature μ_x of the empirical objective at the output: the smallest eigenvalue of
  ∇²ₓF_S(x, y) on the directions the iterates can move in (the range of the Hessian and the
  span of the per-sample x-gradients), where the coupled runs on S and S′ can move apart.
  With η_x·μ_x·T ≫ 1 the curvature has contracted the pair by T, so ε has settled at the
  sensitivity of the empirical solution; with η_x·μ_x·T ≲ 1 (or μ_x ≤ 0) it has not. The claims use it as the regime precondition of the growth-in-T and
  growth-in-η trends (every problem here is strongly concave in y).

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


def risks(problem, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor, w: torch.Tensor) -> dict:
    """Weak PD risk, primal risk and task scores of outputs (R, d) on a weighted set."""
    primal = problem.primal(x, z, w)
    out = {"pd": primal - problem.dual(y, z, w), "primal": primal}
    out.update(problem.score(x, z, w))
    return out


def evaluate(problem, reps: Replicas, trace: dict, z_test: torch.Tensor, output: str) -> dict:
    """{metric: (R, H)} for one output kind: train/test weak PD risk, their gap, primal risks,
    test scores, the x-curvature μ_x on the training set and the consensus distance."""
    kx, ky = OUTPUTS[output]
    z_train, w_train = training_set(reps)
    z_te = z_test[None].to(reps.z.dtype)
    w_te = torch.full((1, len(z_test)), 1.0 / len(z_test), dtype=reps.z.dtype)
    per_h: dict[str, list] = {}
    for h in range(len(trace["T"])):
        x, y = trace[kx][:, h], trace[ky][:, h]
        train = risks(problem, x, y, z_train, w_train)
        test = risks(problem, x, y, z_te, w_te)
        values = {"train_pd": train["pd"], "test_pd": test["pd"], "gap": test["pd"] - train["pd"],
                  "train_primal": train["primal"], "test_primal": test["primal"]}
        values.update({f"test_{k}": v for k, v in test.items() if k not in ("pd", "primal")})
        values["mu_x"] = x_curvature(problem, x, y, z_train, w_train)
        for key, value in values.items():
            per_h.setdefault(key, []).append(value)
    out = {k: torch.stack(v, 1) for k, v in per_h.items()}
    out["consensus"] = trace["consensus"]
    return out
