"""Offline Continual World task sequences and the sentences behind the task embeddings.

CW10 is Continual World's sequence (Wołczyk et al., 2021) in the paper's order, on Meta-World
v3 (`shared.offline_rl.tasks.TASK_SETS["CW10"]`). The paper also runs three shuffled orders of
it; their permutations are not in the brief, so ours are fixed draws **[recon]**
(`SHUFFLE_SEEDS`). CW20 is CW10 twice (the second pass is a new stage with a new head: the
same environment, learned again). OCW5 is CW10's first five tasks, the small-scale sequence.
"""

from __future__ import annotations

import numpy as np

from shared.offline_rl import task_set

SHUFFLE_SEEDS = {"CW10-order1": 1, "CW10-order2": 2, "CW10-order3": 3}

# One sentence per task, written for this reproduction (the paper's are for v2 and not in the
# brief except hammer's); they describe what the v3 task asks of the arm.
SENTENCES = {
    "hammer-v3": "Swing a hammer to drive a nail into the wall.",
    "push-wall-v3": "Push a puck around a wall to the goal position.",
    "faucet-close-v3": "Turn the faucet handle to close the tap.",
    "push-back-v3": "Push a puck backwards across the table to the goal.",
    "stick-pull-v3": "Grab a stick and use it to pull a box to the goal.",
    "handle-press-side-v3": "Press a handle down from the side.",
    "push-v3": "Push a puck across the table to the goal position.",
    "shelf-place-v3": "Pick up a puck and place it on a shelf.",
    "window-close-v3": "Slide a window horizontally to close it.",
    "peg-unplug-side-v3": "Pull a peg sideways out of its hole.",
}


def sequence(name: str, stages: int = 0) -> list[str]:
    """The v3 task names of a sequence, one per stage (CW20 repeats CW10); `stages` > 0
    keeps only the first that many."""
    tasks = _sequence(name)
    return tasks[:stages] if stages else tasks


def _sequence(name: str) -> list[str]:
    cw10 = task_set("CW10")
    if name == "CW10":
        return cw10
    if name == "OCW5":
        return cw10[:5]
    if name == "CW20":
        return cw10 + cw10
    if name in SHUFFLE_SEEDS:
        order = np.random.default_rng(SHUFFLE_SEEDS[name]).permutation(len(cw10))
        return [cw10[i] for i in order]
    raise ValueError(f"unknown sequence {name!r}")


def short(task: str) -> str:
    return task.removesuffix("-v3")
