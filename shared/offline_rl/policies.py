"""Batched reference policies for the Evaluator: Meta-World's scripted experts (optionally
noisy) and uniform random actions. Both are deterministic per `run` (reseeded at reset)."""

from __future__ import annotations

import warnings

import numpy as np

from shared.offline_rl.tasks import ACT_DIM, scripted_policy


class ScriptedBatchPolicy:
    """The scripted expert of each episode's task, plus N(0, noise_std^2) action noise."""

    def __init__(self, tasks: list[str], noise_std: float = 0.0, seed: int = 0):
        self.experts = [scripted_policy(task) for task in tasks]
        self.noise_std, self.seed = noise_std, seed
        self.task_index = np.zeros(0, dtype=int)
        self.rng = np.random.default_rng(seed)

    def reset(self, task_index: np.ndarray) -> None:
        self.task_index = np.asarray(task_index)
        self.rng = np.random.default_rng(self.seed)

    def act(self, obs: np.ndarray, last_reward: np.ndarray, active: np.ndarray) -> np.ndarray:
        actions = np.zeros((len(obs), ACT_DIM), dtype=np.float32)
        noise = self.noise_std * self.rng.standard_normal((len(obs), ACT_DIM))
        with warnings.catch_warnings():
            # Scripted policies warn whenever a gain saturates; the action is clipped anyway.
            warnings.filterwarnings("ignore", message="Constant\\(s\\) may be too high")
            for i in np.flatnonzero(active):
                expert = self.experts[self.task_index[i]]
                actions[i] = expert.get_action(obs[i].astype(np.float64)) + noise[i]
        return np.clip(actions, -1.0, 1.0)


class RandomBatchPolicy:
    """Uniformly random actions in [-1, 1]."""

    def __init__(self, seed: int = 0):
        self.seed = seed
        self.rng = np.random.default_rng(seed)

    def reset(self, task_index: np.ndarray) -> None:
        self.rng = np.random.default_rng(self.seed)

    def act(self, obs: np.ndarray, last_reward: np.ndarray, active: np.ndarray) -> np.ndarray:
        return self.rng.uniform(-1.0, 1.0, (len(obs), ACT_DIM)).astype(np.float32)
