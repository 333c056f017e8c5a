"""Toy episodes, batches and Decision Transformers shared by the DT substrate tests."""

import numpy as np
import torch

from shared.offline_rl import Episode
from shared.offline_rl.dt import DecisionTransformer

OBS, ACT = 3, 2
SIZE = {"hidden": 16, "layers": 2, "heads": 2, "context": 4, "prompt_steps": 2, "dropout": 0.0}


def episode(length: int, offset: float = 0.0, task: str = "toy") -> Episode:
    """Observations (t + offset, −t, 1), actions (t/10, −t/10), rewards t + 1."""
    t = np.arange(length, dtype=np.float32)
    return Episode(observations=np.stack([t + offset, -t, t * 0 + 1], 1).astype(np.float32),
                   actions=np.stack([t / 10, -t / 10], 1).astype(np.float32),
                   rewards=(t + 1).astype(np.float32), terminals=np.zeros(length, bool),
                   timeouts=np.eye(length, dtype=bool)[-1], success=np.zeros(length, bool), task=task)


def batch(b=3, seed=0, prompt=True, context=SIZE["context"], prompt_steps=SIZE["prompt_steps"]):
    g = torch.Generator().manual_seed(seed)
    k, p = context, prompt_steps
    out = {"states": torch.randn(b, k, OBS, generator=g), "actions": torch.randn(b, k, ACT, generator=g),
           "rtg": torch.randn(b, k, 1, generator=g), "timesteps": torch.randint(0, 50, (b, k), generator=g),
           "mask": torch.ones(b, k), "task": torch.zeros(b, dtype=torch.long)}
    if prompt:
        out.update({"prompt_states": torch.randn(b, p, OBS, generator=g),
                    "prompt_actions": torch.randn(b, p, ACT, generator=g),
                    "prompt_rtg": torch.randn(b, p, 1, generator=g),
                    "prompt_timesteps": torch.randint(0, 50, (b, p), generator=g),
                    "prompt_mask": torch.ones(b, p)})
    return out


def dt(conditioning="prompt", **extra):
    torch.manual_seed(0)
    return DecisionTransformer(OBS, ACT, max_ep_len=64, conditioning=conditioning, n_tasks=3,
                               **{**SIZE, **extra}).eval()
