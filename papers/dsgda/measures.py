"""What a run measures at every horizon T, per replica (brief, "Measures"):

- argument stability ε = ‖x̄ − x̄′‖ + ‖ȳ − ȳ′‖ between the runs on neighbouring datasets S, S′
  (same initial point, same sample-index sequence);
- the weak primal-dual risk Δʷ(x, y) = sup_{y′∈Y} F(x, y′) − inf_{x′} F(x′, y) on the training
  set (empirical) and on the held-out set (the population proxy), and their difference, the
  weak primal-dual generalization gap;
- the primal risk R(x) = sup_{y∈Y} F(x, y) on the held-out set;
- the problem's task score (test AUC for AUC maximisation);
- the consensus distance sqrt(mean_i ‖x_i − x̄‖² + ‖y_i − ȳ‖²).

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


def risks(problem, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor, w: torch.Tensor) -> dict:
    """Weak PD risk, primal risk and task scores of outputs (R, d) on a weighted set."""
    primal = problem.primal(x, z, w)
    out = {"pd": primal - problem.dual(y, z, w), "primal": primal}
    out.update(problem.score(x, z, w))
    return out


def evaluate(problem, reps: Replicas, trace: dict, z_test: torch.Tensor, output: str) -> dict:
    """{metric: (R, H)} for one output kind: train/test weak PD risk, their gap, primal risks,
    test scores and the consensus distance."""
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
        for key, value in values.items():
            per_h.setdefault(key, []).append(value)
    out = {k: torch.stack(v, 1) for k, v in per_h.items()}
    out["consensus"] = trace["consensus"]
    return out
