"""The per-stage data stream: a stage reads its own task's data and nothing else.

`StageStream.open(stage, at)` returns the episodes of `stage` and records the read as
(at, stage). The trainer opens only the current stage (`at == stage`); methods defined by a
replay buffer (Perfect Memory, A-GEM) keep the episodes they are allowed to keep in their own
memory at the end of a stage, and on resume rebuild that memory with `open(j, at,
memory=True)`, recorded separately. MTL opens every task in its single stage.
"""

from __future__ import annotations

from collections.abc import Callable

from shared.offline_rl import Episode


class StageStream:
    def __init__(self, loader: Callable[[int], list[Episode]], n_stages: int) -> None:
        self.loader, self.n_stages = loader, n_stages
        self.reads: list[tuple[int, int]] = []
        self.memory_reads: list[tuple[int, int]] = []

    def open(self, stage: int, at: int, memory: bool = False) -> list[Episode]:
        if not 0 <= stage < self.n_stages:
            raise IndexError(f"stage {stage} out of 0..{self.n_stages - 1}")
        (self.memory_reads if memory else self.reads).append((at, stage))
        return self.loader(stage)
