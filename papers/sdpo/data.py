"""SDPO's prompts on the procedural shapes of `shared.t2i.scenes` (one coloured shape on a
plain background, captioned from a small grammar; the base model trains on
`scenes.make_dataset`, which covers every combination).

The RL prompts are the short form "a <colour> <shape>"; a fixed quarter of the colour x shape
combinations is held out of RL training (`HELDOUT`) and is the evaluation prompt set.
"""

from __future__ import annotations

from shared.t2i.scenes import COLOURS, SHAPES, Scene, caption

# Held out of RL training: colour i with shape i mod 4, so 8 of the 32 combinations (one per
# colour, two per shape); every colour keeps 3 shapes and every shape 6 colours in training.
HELDOUT = frozenset((c, SHAPES[i % len(SHAPES)]) for i, c in enumerate(COLOURS))


def rl_prompts(split: str) -> list[str]:
    """Short prompts "a|an <colour> <shape>": split "train" (24) or "heldout" (the 8 of HELDOUT)."""
    if split not in ("train", "heldout"):
        raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")
    want_heldout = split == "heldout"
    return [caption(Scene(s, c, "", "", ""), False, False, False)
            for c in COLOURS for s in SHAPES if ((c, s) in HELDOUT) == want_heldout]
