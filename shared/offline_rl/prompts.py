"""Prompts for a prompt-conditioned Decision Transformer: which P steps of which demonstration.

Two modes (`PROMPT_MODES`):

- "window": a uniformly random demonstration and a uniformly random start step, P steps from
  there or to the episode's end (left-padded), drawn anew for every row: a training segment of
  the demonstrations (`SegmentSampler.sample`), under the `prompt_` names.
- "best-tail": Prompt-DT's deterministic prompt (Xu et al., 2022, `stochastic_prompt=False`):
  the demonstration with the highest return (the first on ties) and the P steps that start at
  `max(0, T − P − 1)`, i.e. its last P steps but the final one, as the released `get_prompt`
  slices them (`si = max(0, T - max_len - 1)`). It draws no random numbers. (The released code
  indexes `sorted_inds[-i]` from i = 0, which for the first prompt episode is the *lowest*
  return; we take the highest, as the paper describes.)

Both return left-padded arrays with the DT padding (`shared.offline_rl.segments`): states,
actions, R̂ (from that step to the end of the demonstration, divided by `return_scale`),
timesteps (clipped to `max_ep_len − 1`) and mask.
"""

from __future__ import annotations

import numpy as np
import torch

from shared.offline_rl.episodes import Episode
from shared.offline_rl.segments import Normaliser, SegmentSampler, empty_segment, prompt_keys

PROMPT_MODES = ("window", "best-tail")


def best_tail_start(length: int, steps: int) -> int:
    """Prompt-DT's start of a `steps`-step prompt in a `length`-step demonstration."""
    return max(0, length - steps - 1)


class PromptSelector:
    """P-step prompts cut from one task's demonstrations, in one of `PROMPT_MODES`."""

    def __init__(self, episodes: list[Episode], steps: int, norm: Normaliser,
                 return_scale: float, max_ep_len: int, mode: str = "window") -> None:
        if mode not in PROMPT_MODES:
            raise ValueError(f"prompt mode must be one of {PROMPT_MODES}, got {mode!r}")
        self.mode, self.steps = mode, steps
        self.sampler = SegmentSampler(episodes, steps, norm, return_scale, max_ep_len)
        self.best = int(np.argmax([e.total_return for e in episodes]))

    def sample(self, n: int, rng: np.random.Generator | None = None) -> dict[str, np.ndarray]:
        """n prompts as `prompt_states [n,P,obs]`, `prompt_actions`, `prompt_rtg [n,P,1]`,
        `prompt_timesteps`, `prompt_mask`; `rng` is needed by "window" only."""
        if self.mode == "window":
            if rng is None:
                raise ValueError("the 'window' prompt mode needs a random generator")
            return prompt_keys(self.sampler.sample(n, rng))
        s = self.sampler
        out = empty_segment(n, self.steps, s.states[0].shape[1], s.actions[0].shape[1])
        start = best_tail_start(len(s.states[self.best]), self.steps)
        for row in range(n):
            s.fill(out, row, self.best, start)
        return prompt_keys(out)


def group_by_goal(episodes: list[Episode]) -> dict[int, list[Episode]]:
    """Episodes by goal variation (ML1: one prompt source per held-out goal), in data order."""
    out: dict[int, list[Episode]] = {}
    for episode in episodes:
        out.setdefault(int(episode.goal), []).append(episode)
    return out


def stack_prompts(prompts: list[dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
    """Concatenate `PromptSelector.sample` outputs into the [N, P, ·] tensors `DTPolicy`
    indexes (one row per task, or per episode)."""
    return {k: torch.as_tensor(np.concatenate([p[k] for p in prompts])) for k in prompts[0]}
