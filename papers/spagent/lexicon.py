"""The words the procedural world knows: colours, subjects (with synonyms), motions (in three
forms), backgrounds and the style adverbs. Procedural tools read their prompts through
`parse` (first mention wins), as a text encoder with a tiny vocabulary would."""

from __future__ import annotations

import re

from papers.spagent.scenes import BACKGROUNDS, COLOURS, MOTIONS, SUBJECTS

SUBJECT_WORDS = {s: s for s in SUBJECTS} | {"bird": "parrot", "kitten": "cat", "puppy": "dog",
                                             "ball": "circle", "box": "square"}
# motion: (infinitive, participle, third person)
MOTION_FORMS = {"fly": ("fly", "flying", "flies"), "swim": ("swim", "swimming", "swims"),
                "jump": ("jump", "jumping", "jumps"), "circle": ("spin", "spinning", "spins")}
MOTION_WORDS = {w: m for m, forms in MOTION_FORMS.items() for w in forms}
BACKGROUND_PHRASES = {"beach": "on the beach", "forest": "in the forest", "night": "at night",
                      "snow": "in the snow"}
STYLES = ("neutral", "calm", "lively")
STYLE_WORDS = {"calm": ("slowly", "gently", "smoothly", "calmly"),
               "lively": ("quickly", "wildly", "energetically", "briskly")}
assert set(MOTION_FORMS) == set(MOTIONS) and set(BACKGROUND_PHRASES) == set(BACKGROUNDS)


def words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def parse(text: str) -> dict:
    """{colour, subject, background, motion, style}: the first known word of each (None when
    absent; style defaults to neutral)."""
    found = {"colour": None, "subject": None, "background": None, "motion": None, "style": "neutral"}
    for w in words(text):
        if w in COLOURS and found["colour"] is None:
            found["colour"] = w
        elif w in SUBJECT_WORDS and found["subject"] is None:
            found["subject"] = SUBJECT_WORDS[w]
        elif w in BACKGROUNDS and found["background"] is None:
            found["background"] = w
        elif w in MOTION_WORDS and found["motion"] is None:
            found["motion"] = MOTION_WORDS[w]
        for style, adverbs in STYLE_WORDS.items():
            if w in adverbs:
                found["style"] = style
    return found


def colour_mentions(text: str) -> list[tuple[int, str]]:
    """(word index, colour) of every colour word, in order."""
    return [(i, w) for i, w in enumerate(words(text)) if w in COLOURS]


def caption(colour: str | None, subject: str | None, background: str | None = None,
            motion: str | None = None) -> str:
    """A plain prompt the agent hands a tool: 'a green parrot on the beach, flying'."""
    parts = ["a"] + [p for p in (colour, subject) if p]
    text = " ".join(parts)
    if background:
        text += " " + BACKGROUND_PHRASES[background]
    if motion:
        text += ", " + MOTION_FORMS[motion][1]
    return text
