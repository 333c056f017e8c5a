"""Finite weight averaging and the baselines it is compared with.

FWA (brief, "Method"): the output after T SGD steps is the mean of the last k iterates,
    w̄_T^k = (1/k) Σ_{i=T−k+1..T} w_i,      1 ≤ k ≤ T/2,
so k = 1 is SGD's last iterate. LAWA (Kaddour 2022) is the same window over epoch-end
checkpoints. `WindowBuffer` keeps the last `capacity` snapshots in a ring, and any window
k ≤ capacity is read from it, so FWA-2 ... FWA-50 all come from one buffer and one
trajectory. SWA (uniform average since the start) and EMA (an infinite geometric window)
are `torch.optim.swa_utils.AveragedModel` baselines; neither is FWA.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from shared.checkpoint import prefixed, unprefixed


class WindowBuffer:
    """Ring buffer of the last `capacity` snapshots of a list of tensors.

    All tensors live in one flat (capacity, P) buffer; each slot's per-tensor views are
    made once, so a push is one plain copy per tensor (measured faster than one `cat`
    into the slot inside a training loop) and a window mean is one pass over k rows.
    """

    def __init__(self, capacity: int, like: Iterable[torch.Tensor]) -> None:
        if capacity < 1:
            raise ValueError("window capacity must be ≥ 1")
        like = [t.detach() for t in like]
        if len({(t.dtype, t.device) for t in like}) != 1:
            raise ValueError("a window buffer needs tensors of one dtype and device")
        self.capacity = capacity
        self.shapes = [t.shape for t in like]
        self.sizes = [t.numel() for t in like]
        self.buffer = torch.zeros(capacity, sum(self.sizes), dtype=like[0].dtype,
                                  device=like[0].device)
        self.slots = [[part.view(shape) for part, shape in zip(row.split(self.sizes), self.shapes)]
                      for row in self.buffer]
        self.count = 0  # snapshots pushed so far

    def push(self, tensors: Iterable[torch.Tensor]) -> None:
        with torch.no_grad():
            for dst, src in zip(self.slots[self.count % self.capacity], tensors):
                dst.copy_(src)
        self.count += 1

    def available(self) -> int:
        return min(self.count, self.capacity)

    def indices(self, k: int) -> list[int]:
        """Ring positions of the last k snapshots, newest first."""
        if not 1 <= k <= self.available():
            raise ValueError(f"window k={k} needs 1 ≤ k ≤ {self.available()} stored snapshots")
        return [(self.count - 1 - j) % self.capacity for j in range(k)]

    def snapshots(self, k: int) -> list[list[torch.Tensor]]:
        """The last k snapshots, newest first, each as views in the tensors' shapes."""
        return [self.slots[j] for j in self.indices(k)]

    def mean(self, k: int) -> list[torch.Tensor]:
        """w̄^k: the mean of the last k snapshots, split back into the tensors' shapes.

        Summed one snapshot at a time, so every entry is rounded the same way wherever it
        sits in memory (a vectorised reduction is not): models on identical data get
        bit-identical averages.
        """
        idx = self.indices(k)
        with torch.no_grad():
            total = self.buffer[idx[0]].clone()
            for j in idx[1:]:
                total.add_(self.buffer[j])
            total.div_(k)
        return [part.view(shape) for part, shape in zip(total.split(self.sizes), self.shapes)]

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {"buffer": self.buffer}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor], count: int) -> None:
        with torch.no_grad():
            self.buffer.copy_(tensors["buffer"])
        self.count = count


class HorizonWindows:
    """FWA at horizons known in advance, by running sums: memory O(P) per open window.

    For every (horizon T_h, window k) pair the sum Σ_{t=T_h−k+1..T_h} w_t is accumulated
    only over those k steps; at t = T_h it is divided by k and kept as that horizon's output
    (read with `mean`), and its running sum is freed. Windows are given as absolute sizes
    (`windows`) or as fractions of the horizon (`fractions`: k = max(1, ⌊f·T_h⌋), so
    f ≤ 1/2 keeps k ≤ T/2). A step outside every window costs one comparison; a step inside
    j open windows costs j in-place adds (one `_foreach_add_` each), so the amortised cost
    per step is (Σ_h k_h)/T additions of P numbers. A window k > T_h/2 is skipped (FWA's
    definition), as `ready` says.
    """

    def __init__(self, horizons: Iterable[int], like: Iterable[torch.Tensor], *,
                 windows: Iterable[int] = (), fractions: Iterable[float] = ()) -> None:
        self.horizons = sorted(set(int(h) for h in horizons))
        self.windows = sorted(set(int(k) for k in windows))
        self.fractions = sorted(set(float(f) for f in fractions))
        if any(k < 1 for k in self.windows) or any(not 0 < f <= 0.5 for f in self.fractions):
            raise ValueError("windows must be ≥ 1 and fractions in (0, 1/2]")
        self.like = [t.detach() for t in like]
        self.t = 0  # steps seen
        # (name, T_h) -> k, for every pair with 2k ≤ T_h, opened at step T_h − k + 1
        self.pairs: dict[tuple[str, int], int] = {}
        for h in self.horizons:
            for name in self.names:
                k = self.window(name, h)
                if 2 * k <= h:
                    self.pairs[(name, h)] = k
        self.open: dict[tuple[str, int], list[torch.Tensor]] = {}
        self.done: dict[tuple[str, int], list[torch.Tensor]] = {}
        self._starts: dict[int, list[tuple[str, int]]] = {}
        for key, k in self.pairs.items():
            self._starts.setdefault(key[1] - k + 1, []).append(key)

    @property
    def names(self) -> list[str]:
        return ([f"fwa{k}" for k in self.windows]
                + [f"fwaT{fraction_label(f)}" for f in self.fractions])

    def window(self, name: str, horizon: int) -> int:
        """k of method `name` at horizon T_h."""
        if name.startswith("fwaT"):
            return max(1, int(float(name[4:]) * horizon))
        return int(name[3:])

    def push(self, tensors: list[torch.Tensor]) -> None:
        self.t += 1
        t = self.t
        for key in self._starts.get(t, ()):
            self.open[key] = [torch.zeros_like(x) for x in self.like]
        if not self.open:
            return
        with torch.no_grad():
            closing = []
            for key, sums in self.open.items():
                torch._foreach_add_(sums, tensors)
                if key[1] == t:
                    closing.append(key)
            for key in closing:
                sums = self.open.pop(key)
                torch._foreach_div_(sums, float(self.pairs[key]))
                self.done[key] = sums

    def ready(self, name: str, horizon: int | None = None) -> bool:
        return (name, self.t if horizon is None else horizon) in self.done

    def mean(self, name: str, horizon: int | None = None) -> list[torch.Tensor]:
        """w̄_{T_h}^k of `name` (at the current step by default, which must be a horizon)."""
        key = (name, self.t if horizon is None else horizon)
        if key not in self.done:
            raise ValueError(f"{name} has no output at T = {key[1]} (not a horizon, not "
                             "reached yet, or k > T/2)")
        return self.done[key]

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Open running sums and unread outputs, keyed `open|done/<name>/<T_h>/<i>`."""
        out = {}
        for kind, store in (("open", self.open), ("done", self.done)):
            for (name, h), tensors in store.items():
                for i, x in enumerate(tensors):
                    out[f"{kind}/{name}/{h}/{i}"] = x
        return out

    def load_state_tensors(self, tensors: dict[str, torch.Tensor], t: int) -> None:
        self.t, self.open, self.done = t, {}, {}
        for key, x in sorted(tensors.items(), key=lambda kv: int(kv[0].rsplit("/", 1)[1])):
            kind, name, h, _ = key.split("/")
            store = self.open if kind == "open" else self.done
            store.setdefault((name, int(h)), []).append(x.clone())

    def forget(self, horizon: int) -> None:
        """Free the outputs of one horizon once they are read."""
        for key in [key for key in self.done if key[1] == horizon]:
            del self.done[key]


def fraction_label(f: float) -> str:
    return f"{f:g}"


class Averagers:
    """SGD's last iterate and every averaged output, tracked along one SGD trajectory.

    Methods: `sgd`; `fwa<k>` (window over SGD steps); `lawa<k>` (window over epoch ends);
    `fwaT<f>` (windows k = f·T at known horizons, `HorizonWindows`); `swa` (uniform average
    of the iterates after `swa_start` epochs or steps, updated per step or per epoch, as SWA
    is used: 0 = since the start); `ema` (per step).
    """

    def __init__(
        self, module: nn.Module, *, step_windows: list[int] = (), epoch_windows: list[int] = (),
        swa_every: str | None = "epoch", ema_decay: float | None = None,
        horizon_windows: HorizonWindows | None = None, swa_start: int = 0,
    ) -> None:
        self.module = module
        self.horizon = horizon_windows  # FWA by running sums at known horizons (optional)
        self.params = list(module.parameters())  # walking the module tree per step is slow
        self.step_windows, self.epoch_windows = sorted(step_windows), sorted(epoch_windows)
        self.steps = WindowBuffer(max(self.step_windows), self.params) if self.step_windows else None
        self.epochs = (WindowBuffer(max(self.epoch_windows), self.params)
                       if self.epoch_windows else None)
        self.swa_every = swa_every
        self.swa_start = swa_start  # SWA averages from the first update after this many epochs / steps
        self.seen = {"step": 0, "epoch": 0}  # updates seen, for swa_start
        self.swa = AveragedModel(module, use_buffers=False) if swa_every else None
        self.ema = (
            AveragedModel(module, multi_avg_fn=get_ema_multi_avg_fn(ema_decay), use_buffers=False)
            if ema_decay is not None else None
        )

    @property
    def methods(self) -> list[str]:
        names = ["sgd"] + [f"fwa{k}" for k in self.step_windows]
        names += self.horizon.names if self.horizon is not None else []
        names += [f"lawa{k}" for k in self.epoch_windows]
        return names + (["swa"] if self.swa else []) + (["ema"] if self.ema else [])

    def _check(self, module: nn.Module) -> None:
        if module is not self.module:
            raise ValueError("Averagers track the module they were built with")

    def on_step(self, module: nn.Module) -> None:
        self._check(module)
        if self.steps is not None:
            self.steps.push(self.params)
        if self.horizon is not None:
            self.horizon.push(self.params)
        self.seen["step"] += 1
        if self.swa is not None and self.swa_every == "step" and self.seen["step"] > self.swa_start:
            self.swa.update_parameters(module)
        if self.ema is not None:
            self.ema.update_parameters(module)

    def on_epoch(self, module: nn.Module) -> None:
        self._check(module)
        if self.epochs is not None:
            self.epochs.push(self.params)
        self.seen["epoch"] += 1
        if self.swa is not None and self.swa_every == "epoch" and self.seen["epoch"] > self.swa_start:
            self.swa.update_parameters(module)

    def ready(self, method: str) -> bool:
        """Whether `method` has an output yet (a window needs k snapshots; FWA needs k ≤ T/2)."""
        if self.horizon is not None and method in self.horizon.names:
            return self.horizon.ready(method)
        if method.startswith("fwa"):
            k = int(method[3:])
            return self.steps.available() >= k and 2 * k <= self.steps.count
        if method.startswith("lawa"):
            return self.epochs.available() >= 1
        if method == "swa":
            return int(self.swa.n_averaged) > 0
        if method == "ema":
            return int(self.ema.n_averaged) > 0
        return True

    def weights(self, method: str, module: nn.Module) -> list[torch.Tensor]:
        """The parameters `method` outputs (LAWA uses all epochs so far until it has k)."""
        if method == "sgd":
            return [p.detach() for p in module.parameters()]
        if self.horizon is not None and method in self.horizon.names:
            return self.horizon.mean(method)
        if method.startswith("fwa"):
            return self.steps.mean(int(method[3:]))
        if method.startswith("lawa"):
            return self.epochs.mean(min(int(method[4:]), self.epochs.available()))
        averaged = {"swa": self.swa, "ema": self.ema}[method]
        return [p.detach() for p in averaged.module.parameters()]

    def state(self) -> tuple[dict[str, torch.Tensor], dict]:
        tensors, counts = {}, {}
        for name, buf in (("steps", self.steps), ("epochs", self.epochs)):
            if buf is not None:
                tensors.update(prefixed(name, buf.state_tensors()))
                counts[name] = buf.count
        counts["seen"] = dict(self.seen)
        if self.horizon is not None:
            tensors.update(prefixed("horizon", self.horizon.state_tensors()))
            counts["horizon"] = self.horizon.t
        for name, avg in (("swa", self.swa), ("ema", self.ema)):
            if avg is not None:
                tensors.update(prefixed(name, avg.state_dict()))
        return tensors, counts

    def load_state(self, tensors: dict[str, torch.Tensor], counts: dict) -> None:
        self.seen = dict(counts.get("seen", self.seen))
        if self.horizon is not None:
            self.horizon.load_state_tensors(unprefixed("horizon", tensors), counts["horizon"])
        for name, buf in (("steps", self.steps), ("epochs", self.epochs)):
            if buf is not None:
                buf.load_state_tensors(unprefixed(name, tensors), counts[name])
        for name, avg in (("swa", self.swa), ("ema", self.ema)):
            if avg is not None:
                avg.load_state_dict(unprefixed(name, tensors))


def load_weights(module: nn.Module, weights: list[torch.Tensor]) -> nn.Module:
    with torch.no_grad():
        for p, w in zip(module.parameters(), weights):
            p.copy_(w)
    return module
