"""Prompt sets of the RL stage, each split into training and held-out prompts.

- `shapes` (small scale): "a red circle" … from the procedural grammar (data.rl_prompts).
- `animals` (paper scale): simple animal names, the kind of prompt set the paper trains
  SD-Turbo on (~45 animals); every fourth one is held out for evaluation.
- a path to a text file: one prompt per line; lines starting with "#" are skipped and every
  fourth prompt is held out.
"""

from __future__ import annotations

from pathlib import Path

from shared import UserError

ANIMALS = (
    "cat", "dog", "horse", "cow", "pig", "sheep", "goat", "rabbit", "hamster", "mouse",
    "fox", "wolf", "bear", "deer", "moose", "lion", "tiger", "leopard", "cheetah", "zebra",
    "giraffe", "elephant", "rhinoceros", "hippopotamus", "camel", "kangaroo", "koala", "panda",
    "monkey", "gorilla", "squirrel", "raccoon", "otter", "beaver", "hedgehog", "bat", "owl",
    "eagle", "parrot", "penguin", "duck", "swan", "frog", "turtle", "crocodile",
)
HELDOUT_EVERY = 4  # every 4th prompt of a list is held out of training


def _split(prompts: list[str], split: str) -> list[str]:
    held = prompts[HELDOUT_EVERY - 1::HELDOUT_EVERY]
    return held if split == "heldout" else [p for p in prompts if p not in held]


def prompt_set(name: str, split: str) -> list[str]:
    """The `split` ("train" or "heldout") prompts of prompt set `name`."""
    if split not in ("train", "heldout"):
        raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")
    if name == "shapes":
        from papers.sdpo.data import rl_prompts

        return rl_prompts(split)
    if name == "animals":
        return _split(list(ANIMALS), split)
    path = Path(name)
    if not path.is_file():
        raise UserError(f"sample.prompts={name}: not 'shapes', 'animals' or a prompt file")
    prompts = [line.strip() for line in path.read_text().splitlines()
               if line.strip() and not line.lstrip().startswith("#")]
    if len(prompts) < HELDOUT_EVERY:
        raise UserError(f"prompt file {path} needs at least {HELDOUT_EVERY} prompts (one in four is held out)")
    return _split(prompts, split)
