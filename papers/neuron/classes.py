"""The synthetic action vocabulary: every class is body part × motion primitive × phase
pattern, so an unseen class is a new combination of parts, primitives and patterns that the
seen classes contain separately. The synthesiser (synth.py) and the side information
(descriptions.py) are both generated from these records, never from each other.

6 parts × 4 primitives × 2 patterns = 48 classes (NTU-60's 55/5 and 48/12 become 43/5 and
36/12 here). Every class has exactly three temporal phases, which the cumulative temporal
descriptions follow (phase 1; 1+2; 1+2+3).
"""

from __future__ import annotations

from dataclasses import dataclass

# body part -> (the joints that move, in the NTU 25-joint numbering, 0-based; a phrase)
PARTS: dict[str, tuple[tuple[int, ...], str]] = {
    "left_arm": ((4, 5, 6, 7, 21, 22), "left arm"),
    "right_arm": ((8, 9, 10, 11, 23, 24), "right arm"),
    "both_arms": ((4, 5, 6, 7, 8, 9, 10, 11, 21, 22, 23, 24), "both arms"),
    "left_leg": ((12, 13, 14, 15), "left leg"),
    "right_leg": ((16, 17, 18, 19), "right leg"),
    "torso": ((0, 1, 2, 3, 20), "upper body"),
}


@dataclass(frozen=True)
class Primitive:
    """A motion primitive: which rotation, how far, and how it reads in words."""

    name: str
    verb: str  # coarse wording, e.g. "raises"
    rotation: str  # the joint rotation the synthesiser applies (see synth.py)
    angle_deg: float  # peak rotation of the main joint
    secondary_deg: float  # peak rotation of the distal joint (elbow/knee), 0 = none


PRIMITIVES: dict[str, Primitive] = {
    "raise": Primitive("raise", "raises", "flex_forward", 120.0, 10.0),
    "swing": Primitive("swing", "swings out to the side", "abduct", 80.0, 0.0),
    "bend": Primitive("bend", "bends", "flex_distal", 20.0, 110.0),
    "twist": Primitive("twist", "twists", "axial", 60.0, 30.0),
}

# pattern -> the three phases as fractions of the peak angle reached at each phase's end
PATTERNS: dict[str, tuple[tuple[str, float], ...]] = {
    "once": (("move", 1.0), ("hold", 1.0), ("return", 0.0)),
    "repeat": (("move", 1.0), ("return", 0.0), ("move", 1.0)),
}


@dataclass(frozen=True)
class ActionClass:
    index: int
    part: str
    primitive: str
    pattern: str

    @property
    def name(self) -> str:
        return f"{self.pattern} {self.primitive} {PARTS[self.part][1]}"

    @property
    def joints(self) -> tuple[int, ...]:
        return PARTS[self.part][0]

    @property
    def phases(self) -> tuple[tuple[str, float], ...]:
        return PATTERNS[self.pattern]


def all_classes() -> list[ActionClass]:
    """The 48 classes in a fixed order (part-major)."""
    out = []
    for part in PARTS:
        for primitive in PRIMITIVES:
            for pattern in PATTERNS:
                out.append(ActionClass(len(out), part, primitive, pattern))
    return out


NUM_CLASSES = len(PARTS) * len(PRIMITIVES) * len(PATTERNS)


def unseen_split(size: int, index: int) -> list[int]:
    """Unseen class indices of split `index` at `size` unseen classes (fixed, seeded by both).
    Every unseen class's part, primitive and pattern also occur among the seen classes."""
    import numpy as np

    classes = all_classes()
    rng = np.random.default_rng(7919 * size + index)
    while True:
        unseen = sorted(int(i) for i in rng.choice(len(classes), size, replace=False))
        seen = [c for c in classes if c.index not in unseen]
        if all(any(getattr(s, a) == getattr(classes[u], a) for s in seen)
               for u in unseen for a in ("part", "primitive", "pattern")):
            return unseen
