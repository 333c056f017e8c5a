"""Decision-Transformer training data: state normalisation, K-step segments, multi-task batches.

Padding convention (the DT recipe, also used by `DTPolicy.window` at test time): a segment of
fewer than K real steps is padded on the *left* with s = 0, a = `PAD_ACTION` (−10), r = 0,
R̂ = 0, t = 0 and mask 0. Returns-to-go R̂_t = Σ_{t' ≥ t} r_t' (undiscounted, to the end of
the episode) are divided by `return_scale`; timesteps are clipped to `max_ep_len − 1`.

Normalisation: one mean/std over all training tasks (`Normaliser.fit`, so no method gets the
task identity from it), or one per task (`Normaliser.fit_per_task`, as Prompt-DT's and
HarmoDT's released code do); a per-task normaliser is called with the task index.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from shared.offline_rl.episodes import Episode

PAD_ACTION = -10.0
STD_EPS = 1e-6  # added to every std, so constant features stay finite


@dataclass
class Normaliser:
    """(s − mean) / std; `mean`/`std` are [obs] (shared) or [n_tasks, obs] (per task)."""

    mean: np.ndarray
    std: np.ndarray

    @property
    def per_task(self) -> bool:
        return self.mean.ndim == 2

    @property
    def obs_dim(self) -> int:
        return int(self.mean.shape[-1])

    def __call__(self, states: np.ndarray, task: int | np.ndarray | None = None) -> np.ndarray:
        """Normalised float32 states. A per-task normaliser needs `task`: an int for a
        [T, obs] array of one task, or one index per row of a [B, obs] array."""
        if not self.per_task:
            return ((states - self.mean) / self.std).astype(np.float32)
        if task is None:
            raise ValueError("a per-task normaliser needs the task index")
        return ((states - self.mean[task]) / self.std[task]).astype(np.float32)

    def for_task(self, task: int) -> Normaliser:
        """The [obs] normaliser of one task (the shared one itself when not per task)."""
        return Normaliser(self.mean[task], self.std[task]) if self.per_task else self

    @classmethod
    def fit(cls, episodes: list[Episode]) -> Normaliser:
        """One mean/std over every step of `episodes`."""
        states = np.concatenate([e.observations for e in episodes])
        return cls(states.mean(0).astype(np.float32), (states.std(0) + STD_EPS).astype(np.float32))

    @classmethod
    def fit_per_task(cls, episodes_by_task: list[list[Episode]]) -> Normaliser:
        """One mean/std per task, in the order given."""
        fitted = [cls.fit(episodes) for episodes in episodes_by_task]
        return cls(np.stack([f.mean for f in fitted]), np.stack([f.std for f in fitted]))


def returns_to_go(rewards: np.ndarray) -> np.ndarray:
    """R̂_t = Σ_{t' ≥ t} r_t' (float32)."""
    return np.cumsum(rewards[::-1])[::-1].astype(np.float32)


def empty_segment(n: int, steps: int, obs_dim: int, act_dim: int) -> dict[str, np.ndarray]:
    """n all-padding segments of `steps` steps."""
    return {"states": np.zeros((n, steps, obs_dim), np.float32),
            "actions": np.full((n, steps, act_dim), PAD_ACTION, np.float32),
            "rewards": np.zeros((n, steps), np.float32),
            "rtg": np.zeros((n, steps, 1), np.float32), "timesteps": np.zeros((n, steps), np.int64),
            "mask": np.zeros((n, steps), np.float32)}


class SegmentSampler:
    """Random K-step segments of one task's episodes, as left-padded numpy arrays.

    `sample` draws, per row, a uniform episode and a uniform start step; the segment runs
    `steps` steps from there, or to the episode's end (then it is padded)."""

    def __init__(self, episodes: list[Episode], steps: int, norm: Normaliser,
                 return_scale: float, max_ep_len: int) -> None:
        if not episodes:
            raise ValueError("SegmentSampler needs at least one episode")
        self.steps, self.max_ep_len = steps, max_ep_len
        self.states = [norm(e.observations) for e in episodes]
        self.actions = [e.actions.astype(np.float32) for e in episodes]
        self.rewards = [e.rewards.astype(np.float32) for e in episodes]
        self.rtg = [returns_to_go(e.rewards) / return_scale for e in episodes]

    def fill(self, out: dict[str, np.ndarray], row: int, episode: int, start: int) -> None:
        """Write the segment of `episode` from `start` into row `row` of `out`, left-padded."""
        k = out["mask"].shape[1]
        stop = min(start + k, len(self.states[episode]))
        width = stop - start
        out["states"][row, k - width:] = self.states[episode][start:stop]
        out["actions"][row, k - width:] = self.actions[episode][start:stop]
        out["rewards"][row, k - width:] = self.rewards[episode][start:stop]
        out["rtg"][row, k - width:, 0] = self.rtg[episode][start:stop]
        out["timesteps"][row, k - width:] = np.minimum(np.arange(start, stop), self.max_ep_len - 1)
        out["mask"][row, k - width:] = 1.0

    def sample(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        out = empty_segment(n, self.steps, self.states[0].shape[1], self.actions[0].shape[1])
        for row in range(n):
            e = int(rng.integers(len(self.states)))
            start = int(rng.integers(len(self.states[e])))
            self.fill(out, row, e, start)
        return out


def prompt_keys(segment: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A segment's arrays under the `prompt_` names the prompt-conditioned DT reads."""
    return {f"prompt_{k}": v for k, v in segment.items() if k != "rewards"}


def to_torch(batch: dict[str, np.ndarray], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: torch.as_tensor(v, device=device) for k, v in batch.items()}
