"""The baselines of the SPIDER comparison, as `Rule`s on the same trainer (see spider.py).

- full fine-tuning: `Rule` itself (nothing);
- L2-SP: the penalty λ‖θ − θ₀‖², applied as its gradient 2λ(θ − θ₀) added before each step
  (so it works identically inside `Trainer`, after gradient clipping);
- MagnitudeMask(0.5): per tensor, the 50 % entries with the largest |θ₀| are reset to θ₀
  after every step (only the small-magnitude half learns);
- RandomMask(0.5): a fixed random 50 % of each tensor's entries reset to θ₀ every step;
- Half FT: in every epoch a new random half of each kind of weight matrix (per layer:
  attention, MLP, norms; the projector) is frozen (reset to θ₀ every step);
- DARE: after training, each entry of the task vector θ − θ₀ is dropped with probability p
  and the kept ones are rescaled by 1/(1 − p);
- Grafting: after training, per tensor only the top s % entries by |θ − θ₀| keep their
  fine-tuned value, the rest return to θ₀.
"""

from __future__ import annotations

import torch

from papers.spider.spider import SPIDER, Rule


class L2SP(Rule):
    name = "l2sp"

    def __init__(self, weight: float = 0.01):
        self.weight = weight

    @torch.no_grad()
    def before_step(self) -> None:
        for name, p in self.params:
            if p.grad is not None:
                p.grad.add_((2 * self.weight * (p.detach().float() - self.theta0[name])).to(p.grad.dtype))

    def penalty(self) -> torch.Tensor:
        """λ‖θ − θ₀‖² (for logging; its gradient is what `before_step` adds)."""
        return self.weight * sum(((p.float() - self.theta0[n]) ** 2).sum() for n, p in self.params)


class _ResetMask(Rule):
    """Entries where `self.frozen[name]` is True return to θ₀ after every step."""

    @torch.no_grad()
    def after_step(self) -> None:
        for name, p in self.params:
            frozen = self.frozen[name]
            p.copy_(torch.where(frozen, self.theta0[name].to(p.dtype), p.detach()))


class MagnitudeMask(_ResetMask):
    name = "magnitude"

    def __init__(self, ratio: float = 0.5):
        self.ratio = ratio

    def start(self, params) -> None:
        super().start(params)
        self.frozen = {}
        for name, t in self.theta0.items():
            k = int(round(self.ratio * t.numel()))
            flat = torch.zeros(t.numel(), dtype=torch.bool)
            if k:
                flat[t.abs().flatten().topk(k).indices] = True
            self.frozen[name] = flat.view_as(t)


class RandomMask(_ResetMask):
    name = "random"

    def __init__(self, ratio: float = 0.5, seed: int = 0):
        self.ratio, self.seed = ratio, seed

    def start(self, params) -> None:
        super().start(params)
        gen = torch.Generator().manual_seed(self.seed)
        self.frozen = {}
        for name, t in self.theta0.items():
            k = int(round(self.ratio * t.numel()))
            flat = torch.zeros(t.numel(), dtype=torch.bool)
            flat[torch.randperm(t.numel(), generator=gen)[:k]] = True
            self.frozen[name] = flat.view_as(t)


def half_group(name: str) -> str:
    """The kind of weight matrix Half FT halves within: one layer's attention projections,
    its MLP projections or its norms; any other module (the projector) is one group."""
    parts = name.split(".")
    for block in ("self_attn", "mlp"):
        if block in parts:
            return ".".join(parts[: parts.index(block) + 1])
    if len(parts) >= 2 and "norm" in parts[-2]:
        return ".".join(parts[:-2] + ["norms"])
    return ".".join(parts[:-2]) or "all"


class HalfFT(_ResetMask):
    """Half Fine-Tuning (Hui et al., 2024): in every round (here: every epoch) a new random
    half of each kind of weight matrix (`half_group`) is frozen at θ₀ and the other half
    trains. A group with an odd number n of tensors freezes n // 2 or n // 2 + 1 of them,
    each with probability 1/2. The draw of epoch e is a function of (seed, e) alone, so a
    resumed run draws the same halves."""

    name = "half_ft"

    def __init__(self, seed: int = 0, steps_per_epoch: int = 0):
        if steps_per_epoch < 0:
            raise ValueError(f"Half FT steps_per_epoch must be ≥ 0 (0 = one draw), got {steps_per_epoch}")
        self.seed, self.steps_per_epoch = seed, steps_per_epoch

    def start(self, params) -> None:
        super().start(params)
        self.steps = 0
        self.draw(0)

    def draw(self, epoch: int) -> None:
        """Freeze a fresh random half of every group for `epoch`."""
        gen = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        groups: dict[str, list[str]] = {}
        for n in self.theta0:
            groups.setdefault(half_group(n), []).append(n)
        frozen_names: set[str] = set()
        for key in sorted(groups):
            names = groups[key]
            k = len(names) // 2
            if len(names) % 2 and torch.rand((), generator=gen).item() < 0.5:
                k += 1
            frozen_names.update(names[i] for i in torch.randperm(len(names), generator=gen)[:k].tolist())
        self.epoch = epoch
        self.frozen = {n: torch.full_like(t, n in frozen_names, dtype=torch.bool) for n, t in self.theta0.items()}

    def frozen_names(self) -> list[str]:
        return [n for n, f in self.frozen.items() if bool(f.all()) and f.numel()]

    def after_step(self) -> None:
        super().after_step()
        self.steps += 1
        if self.steps_per_epoch and self.steps % self.steps_per_epoch == 0:
            self.draw(self.steps // self.steps_per_epoch)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {**super().state_dict(), "steps": torch.tensor(self.steps)}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        super().load_state_dict(state)
        self.steps = int(state["steps"])
        self.draw(self.steps // self.steps_per_epoch if self.steps_per_epoch else 0)


class DARE(Rule):
    name = "dare"

    def __init__(self, drop: float = 0.9, seed: int = 0):
        if not 0 <= drop < 1:
            raise ValueError(f"DARE drop rate must be in [0, 1), got {drop}")
        self.drop, self.seed = drop, seed

    @torch.no_grad()
    def finish(self) -> None:
        gen = torch.Generator().manual_seed(self.seed)
        for name, p in self.params:
            delta = p.detach().float() - self.theta0[name]
            keep = torch.rand(delta.shape, generator=gen) >= self.drop
            p.copy_((self.theta0[name] + delta * keep / (1 - self.drop)).to(p.dtype))


class Grafting(Rule):
    name = "grafting"

    def __init__(self, keep: float = 0.1):
        self.keep = keep

    @torch.no_grad()
    def finish(self) -> None:
        for name, p in self.params:
            delta = p.detach().float() - self.theta0[name]
            k = int(round(self.keep * delta.numel()))
            flat = torch.zeros(delta.numel(), dtype=torch.bool)
            if k:
                flat[delta.abs().flatten().topk(k).indices] = True
            p.copy_((self.theta0[name] + delta * flat.view_as(delta)).to(p.dtype))


METHODS = ("full_ft", "spider", "spider_hard", "l2sp", "magnitude", "random", "half_ft", "dare", "grafting")


def build_rule(method: str, seed: int = 0, l2sp_weight: float = 0.01, mask_ratio: float = 0.5,
               dare_drop: float = 0.9, graft_keep: float = 0.1, steps_per_epoch: int = 0) -> Rule:
    """A fresh rule for `method` (one of METHODS); `steps_per_epoch`: Half FT's re-draw period."""
    rules = {
        "full_ft": lambda: Rule(),
        "spider": lambda: SPIDER("soft"),
        "spider_hard": lambda: SPIDER("hard"),
        "l2sp": lambda: L2SP(l2sp_weight),
        "magnitude": lambda: MagnitudeMask(mask_ratio),
        "random": lambda: RandomMask(mask_ratio, seed),
        "half_ft": lambda: HalfFT(seed, steps_per_epoch),
        "dare": lambda: DARE(dare_drop, seed),
        "grafting": lambda: Grafting(graft_keep),
    }
    if method not in rules:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    return rules[method]()
