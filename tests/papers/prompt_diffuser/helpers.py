"""Helpers for the Prompt Diffuser tests (imported as tests.papers.prompt_diffuser.helpers)."""

from pathlib import Path

import numpy as np

import papers.prompt_diffuser
from papers.prompt_diffuser.config import PromptDiffuserConfig
from shared.config import load_config
from shared.offline_rl import Episode

PAPER_DIR = Path(papers.prompt_diffuser.__file__).parent


def smoke_config(*extra: str) -> PromptDiffuserConfig:
    return load_config(PromptDiffuserConfig, PAPER_DIR / "configs", "smoke", ["wandb=false", *extra])


def fake_episodes(n: int, steps: int, goal: int, seed: int) -> list[Episode]:
    """Random 39-d / 4-d episodes (no simulator): enough for the tensor-level tests."""
    rng = np.random.default_rng(seed)
    return [Episode(observations=rng.normal(size=(steps, 39)).astype(np.float32),
                    actions=rng.uniform(-1, 1, (steps, 4)).astype(np.float32),
                    rewards=rng.uniform(0, 10, steps).astype(np.float32),
                    terminals=np.zeros(steps, bool), timeouts=np.zeros(steps, bool),
                    success=np.zeros(steps, bool), task="reach-v3", goal=goal, seed=seed + i)
            for i in range(n)]

