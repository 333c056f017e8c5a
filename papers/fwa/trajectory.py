"""Run single-sample SGD for a population of models and read every averaged output off
the one trajectory at chosen horizons T."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from papers.fwa.averaging import Averagers, HorizonWindows
from papers.fwa.config import SCHEDULE_POWERS
from papers.fwa.problems import LogisticProblem, Population, step_sizes


def horizons(first: int, last: int, points: int) -> list[int]:
    """Log-spaced integer horizons from `first` to `last` (both included)."""
    return sorted({int(round(t)) for t in np.geomspace(first, last, points)})


def schedule_tensors(schedules: list[str], lrs: dict[str, float], repeat: int,
                     shifts: dict[str, float] | None = None) -> tuple:
    """(c, power[, shift]) per model for models laid out schedule-major, `repeat` per
    schedule; the shift s of α_t = c·(t + s)^(−p) is returned only when `shifts` is given."""
    c = torch.tensor([lrs[s] for s in schedules for _ in range(repeat)], dtype=torch.float64)
    p = torch.tensor([SCHEDULE_POWERS[s] for s in schedules for _ in range(repeat)],
                     dtype=torch.float64)
    if shifts is None:
        return c, p
    shift = torch.tensor([float(shifts.get(s, 0.0)) for s in schedules for _ in range(repeat)],
                         dtype=torch.float64)
    return c, p, shift


def run_trajectory(
    problem: LogisticProblem,
    params: list[torch.Tensor],
    *,
    steps: int,
    c: torch.Tensor,
    power: torch.Tensor,
    windows: list[int],
    eval_at: list[int],
    generator: torch.Generator,
    groups: torch.Tensor,
    on_eval: Callable[[int, Averagers, Population], None],
    on_step: Callable[[int, Population], None] | None = None,
    swa: bool = True,
    ema_decay: float | None = None,
    progress=None,
    fractions: list[float] = (),
    shift: torch.Tensor | None = None,
) -> None:
    """w_t = w_{t−1} − α_t ∇f(w_{t−1}; z_{i_t}) for t = 1..steps, every model at once.

    Models with the same `groups` id draw the same index i_t (the coupling of a
    neighbouring pair); `on_eval(T, averagers, population)` runs after step T ∈ `eval_at`,
    `on_step(t, population)` (if given) after every step. Neither may draw random numbers
    from `generator`. `fractions` adds FWA windows k = f·T at every horizon T of `eval_at`
    (methods `fwaT<f>`, running sums over the last k steps before each horizon); `shift`
    (per model) makes the step α_t = c·(t + s)^(−p).
    """
    pop = Population(params)
    horizon = (HorizonWindows(eval_at, pop.tensors(), fractions=fractions)
               if fractions else None)
    averagers = Averagers(pop, step_windows=windows, swa_every="step" if swa else None,
                          ema_decay=ema_decay, horizon_windows=horizon)
    n = problem.X.shape[1]
    num_groups = int(groups.max()) + 1
    targets = set(eval_at)
    with torch.no_grad():
        for t in range(1, steps + 1):
            idx = torch.randint(n, (num_groups,), generator=generator)[groups]
            grads = problem.sample_grads(pop.tensors(), idx)
            alpha = step_sizes(t, c, power, shift)
            for p, g in zip(pop.tensors(), grads):
                p.sub_(alpha.view(-1, *[1] * (p.dim() - 1)) * g)
            averagers.on_step(pop)
            if on_step is not None:
                on_step(t, pop)
            if t in targets:
                on_eval(t, averagers, pop)
                if horizon is not None:
                    horizon.forget(t)
            if progress is not None:
                progress.update(1)
