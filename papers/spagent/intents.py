"""The annotated request dataset we build [recon]: requests from templates in paraphrase
families, each labelled with the intent (E_T, E_V, A, S, the role of every colour word, the
style) and the gold routes. Some families of every (E_T, E_V) group are held out: they never
occur in training data and are the test set of intent and route accuracy.

E_T (the kind of text): describe (a scene to generate), animate (move what the visual input
shows), edit (change an attribute of the visual input, then show it moving), new_content (new
motion or scene from a video's subject). E_V: none / image / video. A: the text and the visual
input agree (a text that names a colour or subject other than the input's disagrees). S: the
subject to show, (colour, subject).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

import numpy as np

from papers.spagent import lexicon, scenes

E_T = ("describe", "animate", "edit", "new_content")
E_V = ("none", "image", "video")

# (E_T, E_V) -> families; {c} target colour, {c0} the input's colour, {s} subject word,
# {cs}/{c0s}: "{c} {s}" / "{c0} {s}" or just "{s}", {cn}: " {c}" or "", motion forms {m}
# (participle) {mi} (infinitive) {m3} (third person), {bg} background phrase, {st} style
# adverb (" slowly" ... or "")
FAMILIES = {
    ("describe", "none"): [
        "a {c} {s} {m}{st} {bg}", "show me a {c} {s} that {m3}{st} {bg}",
        "generate a video of a {c} {s} {m}{st} {bg}", "i want a clip where a {c} {s} {m3}{st} {bg}",
        "create a short film: a {c} {s}, {m}{st}, {bg}",
        "film a {c} {s} as it {m3}{st} {bg}", "imagine a {c} {s} {bg} that {m3}{st}, and render it"],
    ("describe", "image"): [
        "a {c} {s} {m}{st} {bg}, based on this picture", "using the image, make a video of a {c} {s} that {m3}{st}",
        "here is my photo; i want a {c} {s} {m}{st}",
        "from this reference, a clip of a {c} {s} {m}{st}"],
    ("animate", "image"): [
        "animate this picture: the {cs} {m3}{st}", "let the {cs} in the image {mi}{st}",
        "bring this image to life, the {cs} should {mi}{st}", "make the {cs} {mi}{st}",
        "put this {cs} in motion so that it {m3}{st}", "could the {cs} in my picture {mi}{st}"],
    ("edit", "image"): [
        "make the {c0s} {c} and let it {mi}{st}", "change the colour of the {s} to {c}, then it {m3}{st}",
        "turn the {c0s} {c} and animate it {m}{st}", "give the {s} a {c} colour instead of {c0} and let it {mi}{st}",
        "recolour the {s} {c} and make it {mi}{st}",
        "paint the {c0s} {c}, afterwards it should {mi}{st}", "the {s} should be {c} rather than {c0}, {m}{st}"],
    ("edit", "video"): [
        "make the {c0s} in this video {c}", "change the {s} in the clip to {c}",
        "recolour the {s} {c} throughout the video", "turn the {c0s} {c} in every frame",
        "in this footage, the {s} should become {c}", "repaint the video's {c0s} {c}"],
    ("new_content", "video"): [
        "take the {s} from this clip and show a{cn} {s} {m}{st} {bg}",
        "use the {s} in this video for a new scene: a{cn} {s} {m}{st} {bg}",
        "based on this clip, a new video where the{cn} {s} {m3}{st} {bg}",
        "starting from the video's {s}, create a{cn} {s} that {m3}{st} {bg}",
        "grab the {s} out of this footage and let a{cn} version {mi}{st} {bg}",
        "with this clip's {s}, make something new: the{cn} {s} {m3}{st} {bg}"],
}
HELD_OUT = {("describe", "none"): 2, ("describe", "image"): 1, ("animate", "image"): 2,
            ("edit", "image"): 2, ("edit", "video"): 2, ("new_content", "video"): 2}
GROUPS = list(FAMILIES)


def family_ids(split: str) -> list[tuple[str, str, int]]:
    """(E_T, E_V, index) of every family of a split: train or heldout."""
    out = []
    for group, fams in FAMILIES.items():
        cut = len(fams) - HELD_OUT[group]
        idx = range(cut) if split == "train" else range(cut, len(fams))
        out += [(*group, i) for i in idx]
    return out


@dataclass
class Request:
    """One annotated request."""

    text: str
    e_t: str
    e_v: str
    agree: bool
    colour: str  # S: the colour of the subject to show
    subject: str  # S: the subject
    style: str
    background: str | None  # named in the text (None: keep the input's / any)
    motion: str | None
    family: list  # [E_T, E_V, index]
    roles: list = field(default_factory=list)  # per colour mention: "target" | "source"
    scene: dict | None = None  # the visual input's scene (E_V image / video)

    @property
    def routes(self) -> list[list[str]]:
        return gold_routes(self.e_t, self.e_v, self.agree)

    def input_scene(self) -> scenes.Scene | None:
        return scenes.Scene(**self.scene) if self.scene else None


def gold_routes(e_t: str, e_v: str, agree: bool) -> list[list[str]]:
    """The routes a request of this intent may take (what `planner` must produce)."""
    if e_v == "none":
        return [["t2v"], ["t2i", "i2v"]]
    if e_v == "image":
        return [["edit", "i2v"]] if (e_t == "edit" or not agree) else [["i2v"]]
    if e_t == "edit":
        return [["v2v"]]
    return [["extract", "i2v"]] if agree else [["extract", "edit", "i2v"]]


def _request(rng: np.random.Generator, e_t: str, e_v: str, index: int) -> Request:
    tmpl = FAMILIES[(e_t, e_v)][index]
    scene = scenes.random_scene(rng)
    subject_word = str(rng.choice([w for w, s in lexicon.SUBJECT_WORDS.items() if s == scene.subject]))
    others = [c for c in scenes.COLOURS if c != scene.colour]
    style = str(rng.choice(lexicon.STYLES)) if e_t != "edit" or e_v != "video" else "neutral"
    st = "" if style == "neutral" else " " + str(rng.choice(lexicon.STYLE_WORDS[style]))
    forms = lexicon.MOTION_FORMS[scene.motion]
    names_colour = "{c}" in tmpl or "{cs}" in tmpl and rng.random() < 0.6 or "{cn}" in tmpl and rng.random() < 0.5
    if e_v == "none":
        target, agree = scene.colour, True
    elif e_t == "edit":
        target, agree = str(rng.choice(others)), False
    elif names_colour:
        agree = bool(rng.random() < 0.5)
        target = scene.colour if agree else str(rng.choice(others))
    else:
        target, agree = scene.colour, True
    source_named = "{c0}" in tmpl or ("{c0s}" in tmpl and rng.random() < 0.5)
    text = tmpl.format(
        c=target, c0=scene.colour, s=subject_word, m=forms[1], mi=forms[0], m3=forms[2], st=st,
        bg=lexicon.BACKGROUND_PHRASES[scene.background],
        cs=f"{target} {subject_word}" if names_colour else subject_word,
        c0s=f"{scene.colour} {subject_word}" if source_named else subject_word,
        cn=f" {target}" if names_colour else "")
    roles = []
    for _, word in lexicon.colour_mentions(text):
        roles.append("target" if word == target else "source")
    visual = None if e_v == "none" else asdict(scene)
    bg = scene.background if "{bg}" in tmpl else None
    motion = scene.motion if "{m" in tmpl else None
    return Request(text=text, e_t=e_t, e_v=e_v, agree=agree, colour=target, subject=scene.subject,
                   style=style, background=bg, motion=motion, family=[e_t, e_v, index], roles=roles,
                   scene=visual)


def build(split: str, n: int, seed: int) -> list[Request]:
    """n requests of `split` (train: the training families; heldout: the held-out ones),
    spread evenly over the (E_T, E_V) groups and their families."""
    rng = np.random.default_rng([seed, 0 if split == "train" else 1])
    fams = family_ids(split)
    return [_request(rng, *fams[i % len(fams)]) for i in range(n)]


def digest(requests: list[Request]) -> str:
    return hashlib.sha256(json.dumps([asdict(r) for r in requests], sort_keys=True).encode()).hexdigest()[:12]
