"""python -m papers.spagent.benchmark: the speed figures the README quotes (CPU, one thread).

- procedural tools: outputs per second, per kind;
- metrics: videos scored per second (all six video dimensions, a fresh encoder);
- planning: plans per second (intent given);
- intent features: requests per second, hashed and (with --minilm) MiniLM.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from papers.spagent import capabilities, metrics, scenes
from papers.spagent.agent import Agent
from papers.spagent.encoder import Encoder
from papers.spagent.intent_model import Intent, TextFeatures
from papers.spagent.intents import build
from papers.spagent.tools import Video, incumbents


def _rate(fn, n: int) -> float:
    fn()
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - t)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m papers.spagent.benchmark")
    parser.add_argument("--n", type=int, default=20, help="repetitions per figure")
    parser.add_argument("--minilm", action="store_true", help="also time MiniLM word features")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    w = Video(32, 8)
    img = scenes.render(scenes.Scene("parrot", "red", "beach"), 32, 1)[0]
    vid = scenes.render(scenes.Scene("cat", "red", "forest", "fly"), 32, 8)
    print("| figure | per second |\n|---|---|")
    seen = set()
    for tool in incumbents():
        if tool.kind in seen:
            continue
        seen.add(tool.kind)
        r = _rate(lambda t=tool: t("a green parrot, flying", image=img, video=vid, world=w), args.n)
        print(f"| {tool.kind} tool ({tool.name}) outputs | {r:.0f} |")
    enc = Encoder(16, 64)
    print(f"| videos scored (6 dimensions, 8 × 32 × 32) | {_rate(lambda: metrics.score_video(vid, 'red', 'cat', enc, 2.0), args.n):.1f} |")
    table = capabilities.measure(incumbents(), enc, 1, 0, w, 2.0)
    agent = Agent(incumbents(), table, enc, w)
    intent = Intent("edit", "image", False, "green", "parrot", "calm", None, "fly")
    print(f"| plans (edit + animate, intent given) | {_rate(lambda: agent.plan(intent, img), args.n):.0f} |")
    texts = [r.text for r in build("train", 200, 0)]
    for kind in ("hashed", "minilm") if args.minilm else ("hashed",):
        t = time.perf_counter()
        TextFeatures(kind)(texts)
        print(f"| request texts featurised ({kind}, incl. load) | {len(texts) / (time.perf_counter() - t):.0f} |")
    print(f"| (numpy {np.__version__}, torch {torch.__version__}, 1 thread) | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
