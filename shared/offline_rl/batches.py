"""Multi-task Decision-Transformer batches: one task's segments plus that task's prompts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shared.offline_rl.episodes import Episode
from shared.offline_rl.prompts import PromptSelector
from shared.offline_rl.segments import Normaliser, SegmentSampler


@dataclass
class TaskData:
    """One task's training episodes and the demonstrations its prompts are cut from."""

    task: str
    episodes: list[Episode]
    prompts: list[Episode]


class MultiTaskBatches:
    """Per-task segment samplers and prompt selectors behind one `batch(task, n, rng)` call.

    A batch holds n segments of one task, n prompts of that task (drawn after the segments,
    from the same generator) and `task [n]`. `norm` may be per task (then task i uses row i).
    `prompt_mode` is a `PromptSelector` mode ("window" or "best-tail")."""

    def __init__(self, tasks: list[TaskData], context: int, prompt_steps: int,
                 norm: Normaliser, return_scale: float, max_ep_len: int,
                 prompt_mode: str = "window") -> None:
        self.names = [t.task for t in tasks]
        self.segments = [SegmentSampler(t.episodes, context, norm.for_task(i), return_scale,
                                        max_ep_len) for i, t in enumerate(tasks)]
        self.prompts = [PromptSelector(t.prompts, prompt_steps, norm.for_task(i), return_scale,
                                       max_ep_len, mode=prompt_mode) for i, t in enumerate(tasks)]

    def batch(self, task: int, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        out = self.segments[task].sample(n, rng)
        out.update(self.prompts[task].sample(n, rng))
        out["task"] = np.full(n, task, np.int64)
        return out
