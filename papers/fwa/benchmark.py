"""FWA's bookkeeping overhead against plain SGD (goal ≤ 5 %).

    python -m papers.fwa.benchmark [--periods 10] [--repeats 7] [--device cpu] [--out f.json]

Times SGD training steps (forward, backward, SGD update) over whole evaluation periods,
alone and with each way of keeping FWA's step windows k = 5, 10:
- `ring`: a ring buffer of the last max(k) snapshots, one copy per parameter tensor every
  step (`WindowBuffer`, what `train` used before);
- `horizon`: running sums over the last k steps before each evaluation horizon only
  (`HorizonWindows`, what `train` uses now): memory O(P) per window, and the amortised cost
  is (Σ k)/(steps per period) in-place adds of the weights per step.
The period is the small config's evaluation spacing for the MNIST-1D MLP (one epoch = 32
steps) and one CIFAR epoch at batch 32 rounded down to 100 steps for the ResNet-18 (a
shorter spacing than any real run's, so an upper bound on its amortised overhead). Minima
over repeats (load only adds time), the variants interleaved so that drifts in machine load
hit all alike.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from torch.nn.functional import cross_entropy

from papers.fwa.averaging import HorizonWindows, WindowBuffer
from papers.fwa.model import MLP, CifarResNet
from shared.device import resolve_device


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_steps(model, x, y, steps: int, keep, device) -> float:
    """Seconds per step over `steps` steps; `keep(params)` runs after each (None: plain SGD)."""
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    params = list(model.parameters())
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        loss = cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if keep is not None:
            keep(params)
    _sync(device)
    return (time.perf_counter() - start) / steps


def time_keep(params, steps: int, keep, device) -> float:
    """Seconds per step of the bookkeeping alone (no training step): a second estimate of the
    overhead, as keep time / SGD step time, less sensitive to a loaded machine than the
    difference of two noisy step times."""
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        keep(params)
    _sync(device)
    return (time.perf_counter() - start) / steps


def bench(name, make_model, x, y, windows, period, periods, repeats, device) -> dict:
    model = make_model().to(device)
    x, y = x.to(device), y.to(device)
    steps = period * periods
    params = list(model.parameters())

    def variants():
        ring = WindowBuffer(max(windows), params)
        horizon = HorizonWindows(range(period, 10**9, period)[: 10 * periods * (repeats + 2)],
                                 params, windows=windows)

        def keep_horizon(p):
            horizon.push(p)
            if horizon.t % period == 0:
                horizon.forget(horizon.t)

        return {"sgd": None, "ring": ring.push, "horizon": keep_horizon}

    keeps = variants()
    for keep in keeps.values():  # warm-up
        time_steps(model, x, y, max(2, period // 4), keep, device)
    keeps = variants()  # fresh state, so every timed run starts at a period boundary
    times = {name: [] for name in keeps}
    for _ in range(repeats):
        for variant, keep in keeps.items():
            times[variant].append(time_steps(model, x, y, steps, keep, device))
    alone = {name: [] for name in ("ring", "horizon")}
    for _ in range(repeats):
        fresh = variants()
        for variant in alone:
            alone[variant].append(time_keep(params, steps, fresh[variant], device))
    # the minimum over repeats (as timeit advises): another process's load only ever adds
    # time, so the fastest repeat is the least disturbed estimate of each variant's own cost
    med = {k: min(v) for k, v in times.items()}
    keep_alone = {k: min(v) for k, v in alone.items()}
    return {"model": name, "params": sum(t.numel() for t in params), "batch": len(x),
            "windows": windows, "period_steps": period, "steps_timed": steps,
            "sgd_ms": 1e3 * med["sgd"], "ring_ms": 1e3 * med["ring"],
            "horizon_ms": 1e3 * med["horizon"],
            "ring_overhead_pct": 100 * (med["ring"] / med["sgd"] - 1),
            "horizon_overhead_pct": 100 * (med["horizon"] / med["sgd"] - 1),
            "ring_alone_ms": 1e3 * keep_alone["ring"],
            "horizon_alone_ms": 1e3 * keep_alone["horizon"],
            "ring_alone_pct": 100 * keep_alone["ring"] / med["sgd"],
            "horizon_alone_pct": 100 * keep_alone["horizon"] / med["sgd"],
            "amortised_adds_per_step": sum(windows) / period}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m papers.fwa.benchmark")
    parser.add_argument("--periods", type=int, default=10, help="evaluation periods timed (MLP)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--resnet-width", type=int, default=16)
    parser.add_argument("--resnet-period", type=int, default=100,
                        help="ResNet steps per evaluation period (one period timed per repeat)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    if min(args.periods, args.repeats, args.resnet_width) < 1 or args.resnet_period < 20:
        parser.error("--periods, --repeats, --resnet-width must be ≥ 1 and --resnet-period ≥ 20 "
                     "(twice the largest window)")
    device = resolve_device(args.device)
    torch.manual_seed(0)
    rows = [
        bench("MLP 40-256-256-10 (small config, MNIST-1D)", lambda: MLP(40, 256, 10),
              torch.randn(128, 40), torch.randint(10, (128,)), [5, 10], 32, args.periods,
              args.repeats, device),
        bench(f"CIFAR ResNet-18 width {args.resnet_width}",
              lambda: CifarResNet(10, args.resnet_width),
              torch.randn(32, 3, 32, 32), torch.randint(10, (32,)), [5, 10], args.resnet_period,
              1, max(3, args.repeats // 2), device),
    ]
    print(f"device: {device}, torch threads: {torch.get_num_threads()}")
    print("| model | params | batch | steps per evaluation | SGD step (ms) | + ring buffer | "
          "+ horizon sums (ours) | ring alone / SGD step | horizon sums alone / SGD step |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['params']:,} | {r['batch']} | {r['period_steps']} | "
              f"{r['sgd_ms']:.3f} | {r['ring_ms']:.3f} ({r['ring_overhead_pct']:+.1f} %) | "
              f"{r['horizon_ms']:.3f} ({r['horizon_overhead_pct']:+.1f} %) | "
              f"{r['ring_alone_pct']:.1f} % | {r['horizon_alone_pct']:.2f} % |")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"device": str(device), "threads": torch.get_num_threads(), "rows": rows},
                      fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
