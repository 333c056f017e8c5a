"""The prepared GPU check of neuron's paper path (configs/paper.yaml: NTU-60, 55/5 split): the
two things `reproduce --config paper` trains, at their real sizes, on one device.

- encoder pre-training: Shift-GCN width 256 (6 blocks), 64-frame crops, batch 64, 55 seen
  classes, SGD with Nesterov momentum: forward, cross-entropy, backward, step;
- Neuron head: features 256 × 16 × 25, 80 spatial / 80 temporal prototypes (60/40/20 active,
  prefixes 5/10/16), hidden 256, 55 seen classes × 6 levels × 10 descriptions of 384-d text,
  batch 64: forward, deep-supervision loss, backward, step.

Random-init weights and random inputs of the real shapes (nothing is read or downloaded; the
CPU-side crop/rotation of the real input pipeline is left out, so this is the device's
training throughput). FLOPs per step are counted once with FlopCounterMode (matmuls and
convolutions; the shifts are index gathers and count nothing), MFU against the fp32 peak
(precision=no, the paper path's; TF32 stays off).

    python -m papers.neuron.gpu_check --size paper --steps 200   # one GPU, well under a minute
    python -m papers.neuron.gpu_check --size tiny --steps 3      # CPU, smoke sizes (the test)
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from papers.neuron.config import NeuronExperimentConfig
from papers.neuron.encoder import build_encoder
from papers.neuron.model import build_head
from shared.config import load_config

CONFIGS = Path(__file__).parent / "configs"
SIZES = {"paper": ("paper", 60, 5), "tiny": ("smoke", 48, 5)}  # config, classes, unseen
TEXT_DIM = 384  # MiniLM


def _flops(step) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        step()
    return float(counter.get_total_flops())


def run(size: str, steps: int, device: torch.device) -> list[dict]:
    from shared.gpu_check import measure

    name, classes, unseen = SIZES[size]
    cfg = load_config(NeuronExperimentConfig, CONFIGS, name, ["wandb=false"])
    seen = classes - unseen
    gen = torch.Generator().manual_seed(0)
    rows = []

    enc = cfg.encoder
    torch.manual_seed(0)
    encoder = build_encoder(enc, seen, tuple(enc.blocks)).to(device)
    optimizer = torch.optim.SGD(encoder.parameters(), lr=enc.lr, momentum=0.9, nesterov=True,
                                weight_decay=enc.weight_decay)
    x = torch.randn(enc.batch_size, 3, enc.in_frames, 25, 2, generator=gen).to(device)
    y = torch.randint(0, seen, (enc.batch_size,), generator=gen).to(device)
    encoder.train()

    def encoder_step() -> None:
        loss = F.cross_entropy(encoder(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    params = sum(p.numel() for p in encoder.parameters())
    rows.append(measure(encoder_step, steps=steps, device=device, warmup=min(10, steps),
                        flops_per_step=_flops(encoder_step), dtype="fp32",
                        name=f"encoder pre-training ({enc.arch} width {enc.width}, batch "
                             f"{enc.batch_size}, {enc.in_frames} frames)",
                        config=name, parameters=params,
                        samples_per_step=enc.batch_size))

    t = cfg.train
    head = build_head("neuron", cfg, enc.width, TEXT_DIM).to(device)
    head_opt = torch.optim.SGD(head.parameters(), lr=t.lr, momentum=t.momentum,
                               nesterov=t.nesterov, weight_decay=t.weight_decay)
    feats = torch.randn(t.batch_size, enc.width, enc.out_frames, 25, generator=gen).to(device)
    text = F.normalize(torch.randn(seen, 6, cfg.text.per_level, TEXT_DIM, generator=gen), dim=-1).to(device)
    labels = torch.randint(0, seen, (t.batch_size,), generator=gen).to(device)
    head.train()

    def head_step() -> None:
        loss = head.loss(head(feats, text), labels)
        head_opt.zero_grad(set_to_none=True)
        loss.backward()
        head_opt.step()

    n = cfg.neuron
    rows.append(measure(head_step, steps=steps, device=device, warmup=min(10, steps),
                        flops_per_step=_flops(head_step), dtype="fp32",
                        name=f"Neuron head ({n.prototypes} prototypes, hidden {n.hidden}, "
                             f"features {enc.width}×{enc.out_frames}×25, batch {t.batch_size})",
                        config=name, parameters=sum(p.numel() for p in head.parameters()),
                        samples_per_step=t.batch_size))
    for row in rows:
        row["samples_per_s"] = row["steps_per_s"] * row["samples_per_step"]
    return rows


def main(argv: list[str] | None = None) -> int:
    from shared.gpu_check import paper_main

    return paper_main("neuron", run, argv)


if __name__ == "__main__":
    sys.exit(main())
