"""FWA's bookkeeping overhead per SGD step (goal ≤ 5 %).

    python -m papers.fwa.benchmark [--steps 300] [--repeats 7] [--device cpu]

Times a training step (forward, backward, SGD update) alone and followed by the FWA window
push (`Averagers.on_step` with step windows, nothing else), on the small config's MNIST-1D
MLP and on a CIFAR ResNet-18. Reports the median over repeats; writes JSON with --out.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from torch.nn.functional import cross_entropy

from papers.fwa.averaging import Averagers
from papers.fwa.model import MLP, CifarResNet
from shared.device import resolve_device


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_steps(model, x, y, steps: int, averagers: Averagers | None, device) -> float:
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        loss = cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if averagers is not None:
            averagers.on_step(model)
    _sync(device)
    return (time.perf_counter() - start) / steps


def bench(name, make_model, x, y, windows, steps, repeats, device) -> dict:
    model = make_model().to(device)
    x, y = x.to(device), y.to(device)
    averagers = Averagers(model, step_windows=windows, swa_every=None)
    time_steps(model, x, y, max(5, steps // 10), averagers, device)  # warm-up
    plain, fwa = [], []
    for _ in range(repeats):  # interleaved, so drifts in machine load hit both alike
        plain.append(time_steps(model, x, y, steps, None, device))
        fwa.append(time_steps(model, x, y, steps, averagers, device))
    p, f = statistics.median(plain), statistics.median(fwa)
    params = sum(t.numel() for t in model.parameters())
    return {"model": name, "params": params, "batch": len(x), "windows": windows,
            "sgd_ms": 1e3 * p, "sgd_plus_fwa_ms": 1e3 * f, "overhead_pct": 100 * (f - p) / p}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m papers.fwa.benchmark")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--resnet-width", type=int, default=16)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    torch.manual_seed(0)
    rows = [
        bench("mlp-256 (small config, MNIST-1D)", lambda: MLP(40, 256, 10),
              torch.randn(128, 40), torch.randint(10, (128,)), [5, 10], args.steps,
              args.repeats, device),
        bench(f"resnet18 width {args.resnet_width} (CIFAR shape)",
              lambda: CifarResNet(10, args.resnet_width),
              torch.randn(32, 3, 32, 32), torch.randint(10, (32,)), [5, 10],
              max(10, args.steps // 20), max(3, args.repeats // 2), device),
    ]
    print(f"device: {device}, torch threads: {torch.get_num_threads()}")
    print("| model | params | batch | SGD step (ms) | SGD + FWA push (ms) | overhead |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['params']:,} | {r['batch']} | {r['sgd_ms']:.3f} | "
              f"{r['sgd_plus_fwa_ms']:.3f} | {r['overhead_pct']:+.1f} % |")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"device": str(device), "rows": rows}, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
