"""The prepared GPU check: a few hundred training steps of every paper's `paper`-config path
at its real model sizes, with steps/s, peak memory and (where the FLOPs are known) MFU, in one
JSON. Run it once on any GPU you are handed (≤ 10 minutes on one GPU):

    python -m shared.gpu_check [--size paper|tiny] [--steps 200] [--out runs/gpu_check.json]
    make gpu-check

Each paper that has one provides `papers/<slug>/gpu_check.py`, run here as its own process
(`python -m papers.<slug>.gpu_check --size S --steps N --out FILE`), so a paper that fails or
runs out of memory is recorded and the others still run. A paper's module builds its model at
the `paper` sizes (`--size paper`) or at a tiny size for CPU tests (`--size tiny`) and calls
`measure` on its training step.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import torch

from shared.runs import REPO_ROOT, git_commit, package_versions

# Dense peak throughput (FLOP/s) for MFU, by a substring of torch.cuda.get_device_name().
PEAK_FLOPS = {
    "bf16": {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10": 125e12},
    "fp32": {"H200": 67e12, "H100": 67e12, "A100": 19.5e12, "L40S": 91.6e12, "A10": 31.2e12},
}


def device_peak_flops(device: torch.device, dtype: str = "bf16") -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, flops in PEAK_FLOPS[dtype].items():
        if key in name:
            return flops
    return None


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(step: Callable[[], object], *, steps: int, device: torch.device, warmup: int = 10,
            flops_per_step: float | None = None, dtype: str = "bf16", **extra) -> dict:
    """Time `steps` calls of `step` after `warmup`; steps/s, peak memory, MFU (or None)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for _ in range(warmup):
        step()
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    seconds = time.perf_counter() - start
    rate = steps / seconds
    if device.type == "cuda":
        peak = int(torch.cuda.max_memory_allocated(device))
        memory_kind = "cuda max_memory_allocated"
    else:
        peak = int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
        memory_kind = "process max RSS"
    peak_flops = device_peak_flops(device, dtype)
    mfu = flops_per_step * rate / peak_flops if flops_per_step and peak_flops else None
    return {"steps": steps, "seconds": seconds, "steps_per_s": rate, "peak_memory_bytes": peak,
            "memory_kind": memory_kind, "flops_per_step": flops_per_step, "mfu": mfu,
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            **extra}


def paper_main(slug: str, run: Callable[[str, int, torch.device], list[dict]],
               argv: list[str] | None = None) -> int:
    """The command line of a paper's gpu_check module: `run(size, steps, device)` returns one
    dict per measured path (each from `measure`)."""
    from shared.device import resolve_device

    parser = argparse.ArgumentParser(prog=f"python -m papers.{slug}.gpu_check")
    parser.add_argument("--size", choices=["paper", "tiny"], default="paper")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error("--steps must be ≥ 1")
    device = resolve_device(args.device)
    rows = run(args.size, args.steps, device)
    text = json.dumps({"paper": slug, "size": args.size, "results": rows}, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text)
    return 0


def papers_with_check(papers_dir: Path = REPO_ROOT / "papers") -> list[str]:
    return sorted(p.parent.name for p in papers_dir.glob("*/gpu_check.py"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.gpu_check", description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=["paper", "tiny"], default="paper")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--papers", nargs="*", default=None)
    parser.add_argument("--timeout", type=float, default=150.0, help="seconds per paper")
    parser.add_argument("--out", default="runs/gpu_check.json")
    args = parser.parse_args(argv)
    slugs = args.papers if args.papers else papers_with_check()
    out = {"created": datetime.now(UTC).isoformat(), "git": git_commit(),
           "versions": package_versions(), "size": args.size, "steps": args.steps,
           "cuda": torch.cuda.is_available(), "papers": {}}
    for slug in slugs:
        with tempfile.TemporaryDirectory() as tmp:
            part = Path(tmp) / "out.json"
            cmd = [sys.executable, "-m", f"papers.{slug}.gpu_check", "--size", args.size,
                   "--steps", str(args.steps), "--out", str(part)]
            start = time.perf_counter()
            try:
                proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True,
                                      timeout=args.timeout, env={**os.environ, "HF_HUB_OFFLINE": "1"})
                ok = proc.returncode == 0 and part.exists()
                entry = json.loads(part.read_text()) if ok else {
                    "error": (proc.stderr.strip().splitlines() or ["no output"])[-1]}
            except subprocess.TimeoutExpired:
                entry = {"error": f"timed out after {args.timeout:.0f} s"}
            entry["wall_s"] = time.perf_counter() - start
        out["papers"][slug] = entry
        print(f"{slug}: " + ("; ".join(f"{r.get('name', '?')} {r['steps_per_s']:.2f} steps/s, "
                                       f"{r['peak_memory_bytes'] / 2**30:.2f} GiB"
                                       + (f", MFU {r['mfu']:.1%}" if r.get("mfu") else "")
                                       for r in entry["results"])
                             if "results" in entry else f"FAILED: {entry['error']}"), flush=True)
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path}")
    return 0 if all("results" in e for e in out["papers"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
