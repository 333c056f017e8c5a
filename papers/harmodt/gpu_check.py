"""The prepared GPU check of HarmoDT's paper path (configs/paper.yaml: MT50, Prompt-DT trunk
h 256, 6 layers, 8 heads, context 20 + 5 prompt steps, batch 8 per task iteration), through
`train.Trainer.step` itself, the same call `train` makes every iteration:

- HarmoDT-F: the masked inner step on one task (θ ⊙ M_i, forward, backward, clip, masked
  AdamW, restore), plus a mask update (a dense gradient of every task at θ ⊙ M_i, the harmony
  gradient, prune/revive) every `harmo.mask_interval` iterations, here every 50 so that the
  measured steps include a few;
- Prompt-DT: the dense step, the baseline's cost of one iteration.

The episodes are random arrays of Meta-World's shapes (39-d observations, 4-d actions,
500 steps), 2 per task, so no environment is built and nothing is generated or read; the
segment and prompt sampling on the host are part of the step, as in training. FLOPs per
step are counted once with FlopCounterMode over one inner step (the mask updates come on
top), MFU against the fp32 peak (the paper path trains in fp32).

    python -m papers.harmodt.gpu_check --size paper --steps 300   # one GPU, about a minute
    python -m papers.harmodt.gpu_check --size tiny --steps 3      # CPU, smoke sizes (the test)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from papers.harmodt.config import HarmoDTConfig
from shared.config import load_config
from shared.offline_rl.batches import TaskData
from shared.offline_rl.episodes import Episode

CONFIGS = Path(__file__).parent / "configs"
SIZES = {"paper": ("paper", 50, 500, ["harmo.mask_interval=50"]),
         "tiny": ("smoke", 2, 20, [])}  # config, tasks, episode length, overrides
EPISODES_PER_TASK = 2


def random_tasks(n_tasks: int, length: int, seed: int = 0) -> list[TaskData]:
    rng = np.random.default_rng(seed)

    def episode(task: str) -> Episode:
        done = np.zeros(length, bool)
        done[-1] = True
        return Episode(rng.standard_normal((length, 39), dtype=np.float32),
                       rng.uniform(-1, 1, (length, 4)).astype(np.float32),
                       rng.uniform(0, 10, length).astype(np.float32), np.zeros(length, bool), done,
                       np.zeros(length, bool), task)

    names = [f"task{i}" for i in range(n_tasks)]
    return [TaskData(t, [episode(t) for _ in range(EPISODES_PER_TASK)], [episode(t)]) for t in names]


def run(size: str, steps: int, device: torch.device) -> list[dict]:
    from torch.utils.flop_counter import FlopCounterMode

    from papers.harmodt.train import Trainer
    from shared.gpu_check import measure

    name, n_tasks, length, overrides = SIZES[size]
    tasks = random_tasks(n_tasks, length)
    rows = []
    for method in ("harmodt-f", "prompt-dt"):
        cfg = load_config(HarmoDTConfig, CONFIGS, name, [f"device={device}", "wandb=false",
                                                         f"data.max_steps={length}", *overrides])
        trainer = Trainer(cfg, method, tasks, seed=0)
        counter = FlopCounterMode(display=False)
        with counter:
            trainer.step()
        m, tc = cfg.model, cfg.train
        rows.append(measure(trainer.step, steps=steps, device=device, warmup=min(10, steps),
                            flops_per_step=float(counter.get_total_flops()), dtype="fp32",
                            name=f"{method} iteration (h {m.hidden}, {m.layers} layers, context "
                                 f"{m.context} + {m.prompt_steps} prompt steps, batch {tc.batch_size}, "
                                 f"{n_tasks} tasks)",
                            config=name, parameters=sum(p.numel() for p in trainer.model.parameters()),
                            samples_per_step=tc.batch_size))
        rows[-1]["mask_interval"] = cfg.harmo.mask_interval if method == "harmodt-f" else None
    return rows


def main(argv: list[str] | None = None) -> int:
    from shared.gpu_check import paper_main

    return paper_main("harmodt", run, argv)


if __name__ == "__main__":
    sys.exit(main())
