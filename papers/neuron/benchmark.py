"""Speed of the skeleton encoder and the Neuron head (not a test; numbers go to the README).

Encoder training samples/s (forward + backward + SGD step on 64-frame crops, augmentation
included) and evaluation samples/s (feature extraction), for Shift-GCN and ST-GCN at a
few widths; Neuron head training samples/s on frozen features.

    python -m papers.neuron.benchmark [--threads 1] [--batches 4]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from papers.neuron.classes import all_classes
from papers.neuron.config import EncoderConfig, NeuronExperimentConfig
from papers.neuron.encoder import build_encoder, preprocess
from papers.neuron.heads import fit_head
from papers.neuron.synth import generate


def encoder_rates(arch: str, width: int, data: dict, batches: int, batch_size: int = 64) -> tuple[float, float]:
    cfg = EncoderConfig(arch=arch, width=width)
    model = build_encoder(cfg, 48)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    gen = torch.Generator().manual_seed(0)
    x, length, y = torch.from_numpy(data["x"]), torch.from_numpy(data["length"]), torch.from_numpy(data["y"])
    batch = slice(0, batch_size)

    def step():
        inp = preprocess(x[batch], length[batch], cfg.in_frames, True, gen)
        loss = F.cross_entropy(model(inp), y[batch])
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()  # warm-up
    start = time.perf_counter()
    for _ in range(batches):
        step()
    train = batches * batch_size / (time.perf_counter() - start)
    model.eval()
    with torch.no_grad():
        model.features(preprocess(x[batch], length[batch], cfg.in_frames, False))
        start = time.perf_counter()
        for _ in range(batches):
            model.features(preprocess(x[batch], length[batch], cfg.in_frames, False))
    return train, batches * batch_size / (time.perf_counter() - start)


def head_rate(width: int, prototypes: int, hidden: int, samples: int = 512) -> float:
    cfg = NeuronExperimentConfig()
    cfg.train.steps, cfg.train.milestones = samples // cfg.train.batch_size, []
    cfg.neuron.prototypes = cfg.neuron.memory_prototypes = prototypes
    cfg.neuron.active = [prototypes * 3 // 4, prototypes // 2, prototypes // 4]
    cfg.neuron.hidden = hidden
    feats = torch.randn(samples, width, 16, 25).half()
    text = F.normalize(torch.randn(48, 6, 10, 384), dim=-1)
    start = time.perf_counter()
    fit_head(cfg, "neuron", "", feats, torch.arange(samples) % 40, list(range(40)), text, 0)
    return samples / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batches", type=int, default=4)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = generate(NeuronExperimentConfig().data, all_classes(), 2, seed=0)
    print(f"encoder (batch 64, 64 frames, {args.threads} thread(s)): train / eval samples/s")
    for arch in ("shiftgcn", "stgcn"):
        for width in (32, 64, 256):
            train, evaluate = encoder_rates(arch, width, data, args.batches)
            print(f"  {arch:8s} width {width:3d}: {train:7.1f} / {evaluate:7.1f}")
    print("Neuron head training samples/s (features C×16×25)")
    for width, prototypes, hidden in ((32, 80, 64), (256, 80, 256)):
        print(f"  width {width}, {prototypes} prototypes, hidden {hidden}: {head_rate(width, prototypes, hidden):.1f}")


if __name__ == "__main__":
    main()
