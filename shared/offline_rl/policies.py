"""Batched reference policies for the Evaluator: Meta-World's scripted experts (optionally
noisy) and uniform random actions. Both are deterministic per `run` (reseeded at reset).

The scripted experts read the goal from the observation's last 3 entries; in ML1 those are
zeros, so `ScriptedBatchPolicy` takes the goal positions the evaluator hands to
`observe_goals` and writes them in (in MT1 this changes nothing: the entries already hold
the goal). `reveal_goal=False` turns that off (the expert then acts on the hidden goal)."""

from __future__ import annotations

import warnings

import numpy as np

from shared.offline_rl.tasks import ACT_DIM, GOAL_SLICE, scripted_policy


class ScriptedBatchPolicy:
    """The scripted expert of each episode's task, plus N(0, noise_std^2) action noise."""

    def __init__(self, tasks: list[str], noise_std: float = 0.0, seed: int = 0,
                 reveal_goal: bool = True):
        self.experts = [scripted_policy(task) for task in tasks]
        self.noise_std, self.seed, self.reveal_goal = noise_std, seed, reveal_goal
        self.task_index = np.zeros(0, dtype=int)
        self.rng = np.random.default_rng(seed)
        self.goals: np.ndarray | None = None

    def reset(self, task_index: np.ndarray) -> None:
        self.task_index = np.asarray(task_index)
        self.rng = np.random.default_rng(self.seed)
        self.goals = None

    def observe_goals(self, goals: np.ndarray) -> None:
        """Each episode's goal position ([B, 3]), from the evaluator after reset; kept in
        float32 like the evaluator's observations, so in MT1 it equals the observed goal."""
        if self.reveal_goal:
            self.goals = np.asarray(goals, dtype=np.float32)

    def act(self, obs: np.ndarray, last_reward: np.ndarray, active: np.ndarray) -> np.ndarray:
        actions = np.zeros((len(obs), ACT_DIM), dtype=np.float32)
        noise = self.noise_std * self.rng.standard_normal((len(obs), ACT_DIM))
        with warnings.catch_warnings():
            # Scripted policies warn whenever a gain saturates; the action is clipped anyway.
            warnings.filterwarnings("ignore", message="Constant\\(s\\) may be too high")
            for i in np.flatnonzero(active):
                expert = self.experts[self.task_index[i]]
                seen = obs[i].astype(np.float64)
                if self.goals is not None:
                    seen[GOAL_SLICE] = self.goals[i]
                actions[i] = expert.get_action(seen) + noise[i]
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
