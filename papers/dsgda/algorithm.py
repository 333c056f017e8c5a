"""The unified Local-(D)SGDA iteration, shared by both backends.

Every client i, every step t, draws b local samples and takes a simultaneous step
    x_i ← x_i − η_x ∇_x f(x_i, y_i; z),   y_i ← Π_Y(y_i + η_y ∇_y f(x_i, y_i; z)),
and every K steps every client mixes x_i ← Σ_l W_il x_l (the same for y). W = 11ᵀ/m is
Local-SGDA (server averaging), a sparse W is Local-DSGDA; K = 1 with the full W is minibatch
SGDA.

A run holds R replicas (neighbouring datasets, seeds, step sizes, K and W may differ per
replica; m is shared) so that a sweep is one vectorised loop. The simulation keeps all m
clients on an axis; the distributed backend (distributed.py) keeps one client per process
and calls the same `local_step`, `draw` and `Recorder` so that both produce the same iterates.

Randomness: one generator per run. At every step it draws u ~ U[0,1) of shape
(streams, m, b); replica r's client i uses sample ⌊u[stream_r, i, :] · n_r⌋. Replicas that
share a stream (the two members of a neighbouring pair) see identical index sequences.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from shared.tracking import progress


@dataclass
class Replicas:
    """R runs that share m (clients) and the problem; everything else may vary per replica."""

    z: torch.Tensor  # (R, m, n_max, dz) client datasets (padded beyond n_r)
    n: torch.Tensor  # (R,) samples per client
    stream: torch.Tensor  # (R,) random stream; pairs share one
    lr_x: torch.Tensor  # (R,)
    lr_y: torch.Tensor  # (R,)
    K: torch.Tensor  # (R,) local steps between mixings
    W: torch.Tensor  # (R, m, m)
    x0: torch.Tensor  # (R, dx), identical on every client
    y0: torch.Tensor  # (R, dy)
    num_streams: int
    meta: list[dict] = field(default_factory=list)  # per replica: grid point, seed, pair, member

    @property
    def size(self) -> int:
        return len(self.n)

    @property
    def clients(self) -> int:
        return self.z.shape[1]


def horizons(steps: int, points: int) -> list[int]:
    """Log-spaced evaluation steps ending at T (distinct, ≥ 1)."""
    first = max(1, min(10, steps // 10))
    grid = np.unique(np.round(np.geomspace(first, steps, max(points, 1))).astype(int))
    return [int(t) for t in grid if 1 <= t <= steps]


def draw(gen: torch.Generator, streams: int, m: int, batch_size: int, dtype: torch.dtype) -> torch.Tensor:
    """u for one step: (streams, m, b); every backend draws the full tensor."""
    return torch.rand((streams, m, batch_size), generator=gen, dtype=dtype)


def sample(z: torch.Tensor, n: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """z (R, c, n_max, dz), n (R,), u (R, c, b) -> minibatches (R, c, b, dz)."""
    idx = (u * n.to(u.dtype)[:, None, None]).long().clamp_max(z.shape[2] - 1)
    idx = torch.minimum(idx, (n - 1)[:, None, None])
    return torch.gather(z, 2, idx[..., None].expand(*idx.shape, z.shape[-1]))


def local_step(problem, x: torch.Tensor, y: torch.Tensor, batch: torch.Tensor,
               lr_x: torch.Tensor, lr_y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One simultaneous descent/ascent step on every (replica, client): x, y (R, c, d)."""
    gx, gy = problem.grads(x, y, batch)
    return problem.project_x(x - lr_x[:, None, None] * gx), problem.project_y(y + lr_y[:, None, None] * gy)


class Recorder:
    """Consensus averages x̄_t, ȳ_t and their time averages (1/t) Σ_{s≤t} x̄_s at the horizons.

    It also records, per neighbouring pair (2p, 2p + 1), the per-client distance of the last
    iterates (1/m) Σ_i ‖x_i − x′_i‖ + ‖y_i − y′_i‖ ≥ ‖x̄ − x̄′‖ + ‖ȳ − ȳ′‖: the consensus error
    that both coupled runs share cancels in the averages but not client by client.

    Each client keeps the running sum of its own iterates; since averaging is linear, the
    time average of x̄ is the client mean of those sums, so the only reductions happen at the
    horizons. `mean` maps a per-client tensor (R, c, d) to the mean over all m clients (R, d):
    a plain mean in the simulation, an all-reduce in the distributed backend."""

    def __init__(self, hs: list[int], mean: Callable[[torch.Tensor], torch.Tensor]):
        self.hs, self.mean = set(hs), mean
        self.sum_x = self.sum_y = None
        self.out: dict[str, list] = {k: [] for k in ("x", "y", "x_avg", "y_avg", "consensus", "client_eps", "client_eps_avg")}
        self.steps: list[int] = []

    def update(self, t: int, x: torch.Tensor, y: torch.Tensor) -> None:
        self.sum_x = x.clone() if self.sum_x is None else self.sum_x.add_(x)
        self.sum_y = y.clone() if self.sum_y is None else self.sum_y.add_(y)
        if t not in self.hs:
            return
        xb, yb = self.mean(x), self.mean(y)
        spread = ((x - xb[:, None]) ** 2).sum(-1, keepdim=True) + ((y - yb[:, None]) ** 2).sum(-1, keepdim=True)
        self.steps.append(t)
        self.out["x"].append(xb)
        self.out["y"].append(yb)
        self.out["x_avg"].append(self.mean(self.sum_x) / t)
        self.out["y_avg"].append(self.mean(self.sum_y) / t)
        self.out["consensus"].append(self.mean(spread)[:, 0].sqrt())
        if x.shape[0] % 2 == 0:  # replicas (2p, 2p + 1) are neighbouring pairs: per-client distance
            per_client = (x[0::2] - x[1::2]).norm(dim=-1) + (y[0::2] - y[1::2]).norm(dim=-1)
            self.out["client_eps"].append(self.mean(per_client[..., None])[:, 0])
            sx, sy = self.sum_x / t, self.sum_y / t  # every client's own time average
            per_client = (sx[0::2] - sx[1::2]).norm(dim=-1) + (sy[0::2] - sy[1::2]).norm(dim=-1)
            self.out["client_eps_avg"].append(self.mean(per_client[..., None])[:, 0])

    def trace(self) -> dict:
        """{"T": [H], "x": (R, H, dx), "y", "x_avg", "y_avg": likewise, "consensus": (R, H),
        "client_eps": (R/2, H), the per-client distance (1/m) Σ_i ‖x_i − x′_i‖ + ‖y_i − y′_i‖ of the
        pairs (2p, 2p + 1) of last iterates, "client_eps_avg" the same of the clients' time averages
        (both absent for an odd R)}."""
        out = {k: torch.stack(v, 1) for k, v in self.out.items() if v}
        out["T"] = list(self.steps)
        return out


def simulate(problem, reps: Replicas, steps: int, batch_size: int, hs: list[int], seed: int,
             show_progress: bool = False, desc: str = "sgda") -> dict:
    """All replicas and clients in one process; returns the Recorder's trace."""
    m = reps.clients
    gen = torch.Generator().manual_seed(seed)
    dtype = reps.z.dtype
    x = reps.x0[:, None].expand(-1, m, -1).clone()
    y = reps.y0[:, None].expand(-1, m, -1).clone()
    rec = Recorder(hs, lambda v: v.mean(1))
    bar = progress(total=steps, desc=desc, leave=False, **({} if show_progress else {"disable": True}))
    mixes = {int(k) for k in reps.K.unique()}
    for t in range(1, steps + 1):
        u = draw(gen, reps.num_streams, m, batch_size, dtype)[reps.stream]
        x, y = local_step(problem, x, y, sample(reps.z, reps.n, u), reps.lr_x, reps.lr_y)
        if any(t % k == 0 for k in mixes):
            due = (t % reps.K == 0)[:, None, None]
            x = torch.where(due, torch.bmm(reps.W, x), x)
            y = torch.where(due, torch.bmm(reps.W, y), y)
        rec.update(t, x, y)
        bar.update(1)
    bar.close()
    return rec.trace()
