"""The prepared GPU check of FWA's paper path: the `paper` config's CIFAR ResNet-18 training
step at its real size (width 64, 11.2 M parameters, batch 128 of 3×32×32, bf16 autocast, SGD
with momentum 0.9 and weight decay 5e-4, cosine schedule, random crop + flip) with the
averaging it runs every step (EMA, and the FWA step windows), through `train.Trainer` itself:
the same `train_step` that `train` calls. The images are random CIFAR-shaped tensors (nothing
is downloaded, no CIFAR files are read).

    python -m papers.fwa.gpu_check --size paper --steps 200   # one GPU, well under a minute
    python -m papers.fwa.gpu_check --size tiny --steps 3      # CPU (the test)

Two rows: the paper config as it is (LAWA k = 5, 10 over epoch ends, so per step only EMA),
and the same with FWA step windows k = 5, 10 (running sums over the last k steps before
each evaluation horizon, `averaging.HorizonWindows`: the measured steps lie outside every
window unless a horizon falls among them, which is the amortised cost of a real run). FLOPs per step are counted once with torch.utils.flop_counter.FlopCounterMode
(forward and backward of the network; the averaging's element-wise work is not counted), so
MFU is against bf16 dense peak. Per-epoch work (LAWA push, BatchNorm re-estimation and
evaluation) is not in the step.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

SIZES = {
    "paper": {"overrides": [], "pool": 1024, "warmup": 10},
    "tiny": {"overrides": ["train.resnet_width=4", "train.batch_size=8", "precision=no"],
             "pool": 32, "warmup": 1},
}
FWA_WINDOWS = [5, 10]


def build(size: str, device: torch.device, fwa_windows: list[int]):
    """(config, Trainer) of the paper config at `size`, on random CIFAR-shaped data."""
    from papers.fwa.config import FWAConfig
    from papers.fwa.data import Split
    from papers.fwa.train import Trainer
    from shared.config import load_config

    spec = SIZES[size]
    cfg = load_config(FWAConfig, Path(__file__).parent / "configs", "paper", [
        f"device={device}", "wandb=false", *spec["overrides"],
        f"train.fwa_windows=[{','.join(map(str, fwa_windows))}]"])
    gen = torch.Generator().manual_seed(0)
    n = spec["pool"]
    split = Split(torch.randn(n, 3, 32, 32, generator=gen), torch.randint(0, 10, (n,), generator=gen),
                  torch.randn(8, 3, 32, 32, generator=gen), torch.randint(0, 10, (8,), generator=gen), 10)
    return cfg, Trainer(cfg, split, seed=0)


def step_fn(cfg, trainer):
    """One iteration of Trainer.train_epoch's loop: the next batch of a seeded permutation,
    crops and flips on the host (as `train` does), then `train_step` and its averaging."""
    from papers.fwa.train import augment

    tc, split = cfg.train, trainer.split
    gen = torch.Generator().manual_seed(1)
    state = {"order": torch.randperm(len(split.x_train), generator=gen), "start": 0}

    def step() -> float:
        if state["start"] + tc.batch_size > len(state["order"]):
            state["order"], state["start"] = torch.randperm(len(split.x_train), generator=gen), 0
        idx = state["order"][state["start"]:state["start"] + tc.batch_size]
        state["start"] += tc.batch_size
        x, y = split.x_train[idx], split.y_train[idx]
        if tc.augment:
            x = augment(x, gen)
        return float(trainer.train_step(x, y, len(idx)))

    return step


def measure_row(size: str, steps: int, device: torch.device, fwa: list[int]) -> dict:
    from torch.utils.flop_counter import FlopCounterMode

    from shared.gpu_check import measure

    cfg, trainer = build(size, device, fwa)
    tc = cfg.train
    trainer.model.train()
    step = step_fn(cfg, trainer)
    counter = FlopCounterMode(display=False)
    with counter:
        step()
    flops = float(counter.get_total_flops())
    params = sum(p.numel() for p in trainer.net.parameters())
    horizon = trainer.averagers.horizon
    averaging = "EMA per step, LAWA k=5,10 per epoch" + (
        f", FWA k={','.join(map(str, fwa))} per step" if fwa else "")
    row = measure(step, steps=steps, device=trainer.device, warmup=SIZES[size]["warmup"],
                  flops_per_step=flops, dtype="bf16" if cfg.precision == "bf16" else "fp32",
                  name=f"fwa {size}: CIFAR ResNet-18 width {tc.resnet_width}, {averaging}",
                  params=params, batch=tc.batch_size, precision=cfg.precision, fwa_windows=fwa,
                  fwa_state_bytes=(len(horizon.windows) * sum(
                      p.numel() * p.element_size() for p in trainer.net.parameters())
                      if horizon else 0))
    row["images_per_s"] = tc.batch_size * row["steps_per_s"]
    return row


def run(size: str, steps: int, device: torch.device) -> list[dict]:
    rows = [measure_row(size, steps, device, fwa) for fwa in ([], FWA_WINDOWS)]
    rows[1]["fwa_overhead"] = rows[0]["steps_per_s"] / rows[1]["steps_per_s"] - 1.0
    return rows


def main(argv: list[str] | None = None) -> int:
    from shared.gpu_check import paper_main

    return paper_main("fwa", run, argv)


if __name__ == "__main__":
    sys.exit(main())
