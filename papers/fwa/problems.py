"""Vectorised populations of small models trained side by side with single-sample SGD.

A population holds M independent models as tensors with a leading axis M (seeds, step-size
schedules, or the two members of a neighbouring-dataset pair). Each model has its own
dataset (M, n, d) — shared data are expanded, not copied — and at every step draws its own
sample index, so one vectorised step is M ordinary SGD steps.

Labels are ±1 and the per-sample loss is the logistic loss log(1 + exp(−y·f(x))) plus
(λ/2)‖w‖², for a linear f (convex) or a one-hidden-layer tanh network (non-convex).
"""

from __future__ import annotations

import numpy as np
import scipy.optimize
import torch
from torch import nn
from torch.nn.functional import softplus

from shared import UserError


def squared_norm(params: list[torch.Tensor]) -> torch.Tensor:
    """‖w‖² per model over all of a model's tensors: (M,)."""
    return sum((p.reshape(len(p), -1) ** 2).sum(-1) for p in params)


class Population(nn.Module):
    """M models' parameters, each tensor shaped (M, ...)."""

    def __init__(self, tensors: list[torch.Tensor]) -> None:
        super().__init__()
        self.params = nn.ParameterList([nn.Parameter(t, requires_grad=False) for t in tensors])

    def tensors(self) -> list[torch.Tensor]:
        return list(self.params)


class LogisticProblem:
    """Convex: f(x) = x·w (a bias column is part of x)."""

    convex = True

    def __init__(self, X: torch.Tensor, y: torch.Tensor, l2: float) -> None:
        self.X, self.y, self.l2 = X, y, l2  # X: (M, n, d), y: (M, n)

    def init(self, M: int, generator: torch.Generator) -> list[torch.Tensor]:
        return [torch.zeros(M, self.X.shape[-1], dtype=self.X.dtype)]

    def margins(self, params: list[torch.Tensor], X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return y * torch.einsum("m...d,md->m...", X, params[0])

    def sample_grads(self, params: list[torch.Tensor], idx: torch.Tensor) -> list[torch.Tensor]:
        """Closed-form ∇f(w; z_i) per model: −y σ(−y x·w) x + λw."""
        rows = torch.arange(len(idx))
        x, y = self.X[rows, idx], self.y[rows, idx]
        w = params[0]
        coef = -y * torch.sigmoid(-y * (x * w).sum(-1))
        return [coef[:, None] * x + self.l2 * w]

    def objective(self, params: list[torch.Tensor], X=None, y=None) -> torch.Tensor:
        """F(w) = mean_i log(1 + exp(−y_i x_i·w)) + (λ/2)‖w‖², per model: (M,)."""
        X = self.X if X is None else X
        y = self.y if y is None else y
        data = softplus(-self.margins(params, X, y)).mean(-1)
        return data + 0.5 * self.l2 * squared_norm(params)


class MLPProblem(LogisticProblem):
    """Non-convex: f(x) = tanh(x W₁ + b₁)·w₂ + b₂."""

    convex = False

    def __init__(self, X: torch.Tensor, y: torch.Tensor, l2: float, hidden: int) -> None:
        super().__init__(X, y, l2)
        self.hidden = hidden

    def init(self, M: int, generator: torch.Generator) -> list[torch.Tensor]:
        d, h, dtype = self.X.shape[-1], self.hidden, self.X.dtype
        W1 = torch.randn(M, d, h, generator=generator, dtype=dtype) / d**0.5
        w2 = torch.randn(M, h, generator=generator, dtype=dtype) / h**0.5
        return [W1, torch.zeros(M, h, dtype=dtype), w2, torch.zeros(M, dtype=dtype)]

    def margins(self, params: list[torch.Tensor], X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        W1, b1, w2, b2 = params
        squeeze = X.dim() == 2
        X = X[:, None] if squeeze else X
        hidden = torch.tanh(torch.einsum("mnd,mdh->mnh", X, W1) + b1[:, None])
        out = torch.einsum("mnh,mh->mn", hidden, w2) + b2[:, None]
        return y * (out[:, 0] if squeeze else out)

    def sample_grads(self, params: list[torch.Tensor], idx: torch.Tensor) -> list[torch.Tensor]:
        """Backpropagation by hand for one sample per model (checked against autograd)."""
        rows = torch.arange(len(idx))
        x, y = self.X[rows, idx], self.y[rows, idx]
        W1, b1, w2, b2 = params
        hidden = torch.tanh(torch.einsum("md,mdh->mh", x, W1) + b1)
        out = (hidden * w2).sum(-1) + b2
        dout = -y * torch.sigmoid(-y * out)  # d softplus(−y f)/df
        dpre = dout[:, None] * w2 * (1 - hidden**2)
        grads = [x[:, :, None] * dpre[:, None, :], dpre, dout[:, None] * hidden, dout]
        return [g + self.l2 * p for g, p in zip(grads, params)]


def step_sizes(t: int, c: torch.Tensor, power: torch.Tensor,
               shift: torch.Tensor | None = None) -> torch.Tensor:
    """α_t = c·(t + s)^(−p) per model: p = 0 constant, 1/2 for c/√t, 1 for c/t; the shift s
    (default 0) delays the decay (the convex experiment's c/(t + t₀))."""
    if shift is None:
        return c * float(t) ** (-power)
    return c * (float(t) + shift) ** (-power)


OPTIMUM_RTOL = 1e-12  # F* is accepted when its error is below this fraction of F(0) − F*


def optimum(X: np.ndarray, y: np.ndarray, l2: float, maxiter: int = 500) -> tuple[np.ndarray, float]:
    """w*, F* of the L2-regularised logistic objective, to a tolerance relative to the problem.

    The objective is λ-strongly convex with an exact Hessian, so a trust-region Newton solve
    converges quadratically, until F can no longer tell nearby points apart in float64 (the
    solver then stops with ‖∇F‖ around 1e-9 on some problems: `convex.l2=0.01` on the
    synthetic set). An absolute bound on ‖∇F‖ is therefore the wrong test. What matters is
    the error in F*, which the Newton decrement gives: F(ŵ) − F* ≈ ½ ∇F(ŵ)ᵀ H(ŵ)⁻¹ ∇F(ŵ)
    (exact to second order; ≤ ‖∇F(ŵ)‖²/(2λ) by strong convexity). The solve is accepted when
    that estimate is at most `OPTIMUM_RTOL` × (F(0) − F(ŵ)), the scale of every suboptimality
    the experiment measures; otherwise it is refused in one line.
    """
    n = len(y)

    def fun(w):
        m = y * (X @ w)
        return np.logaddexp(0.0, -m).mean() + 0.5 * l2 * w @ w

    def jac(w):
        s = 1.0 / (1.0 + np.exp(y * (X @ w)))  # σ(−m)
        return -(X.T @ (y * s)) / n + l2 * w

    def hess(w):
        p = 1.0 / (1.0 + np.exp(-y * (X @ w)))
        return (X.T * (p * (1 - p))) @ X / n + l2 * np.eye(X.shape[1])

    w0 = np.zeros(X.shape[1])
    res = scipy.optimize.minimize(fun, w0, jac=jac, hess=hess, method="trust-exact",
                                  options={"gtol": 1e-12, "maxiter": maxiter})
    error, scale = optimum_error(res.x, jac(res.x), hess(res.x)), fun(w0) - fun(res.x)
    if not error <= OPTIMUM_RTOL * scale:
        raise UserError(f"F* solve did not converge: estimated F(ŵ) − F* = {error:.2e} "
                        f"(‖∇F‖ = {np.linalg.norm(jac(res.x)):.2e}) is above {OPTIMUM_RTOL:g} × "
                        f"(F(0) − F*) = {OPTIMUM_RTOL * scale:.2e}")
    return res.x, float(fun(res.x))


def optimum_error(w: np.ndarray, grad: np.ndarray, hess: np.ndarray) -> float:
    """½ gᵀH⁻¹g, the Newton-decrement estimate of F(w) − F* (inf if H is not positive definite)."""
    try:
        chol = np.linalg.cholesky(hess)
    except np.linalg.LinAlgError:
        return float("inf")
    z = np.linalg.solve(chol, grad)
    return 0.5 * float(z @ z)
