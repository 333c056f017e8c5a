"""Multimodal corpora over `scenes.py` images, in our own templates.

An example is a dict
    {"image": (S, S, 3) uint8, "prompt": str, "answer": str, "task": str,
     "choices": list[str] | None, "references": list[str], "scene": scenes.Scene}
`references` holds every acceptable reference for scoring: the caption references for the
captioning tasks (CIDEr), `[answer]` otherwise. `scene` is the generating scene (for checks
and per-question analyses; `render(scene, image_size)` gives `image` back).

Upstream (the pre-training mixture and the generalization benchmark), plain images:
- "caption": "describe the image." -> a templated list, objects in reading order
  ("there are 2 objects: a large red circle at the top left, a small blue square at the
  center."), one reference;
- "color":    "what color is the circle?" (the shape is unique in the scene) -> "red";
- "count":    "how many squares are there?" -> "0".."3", answers balanced (`_count_example`);
- "position": "where is the red triangle?" -> one of the nine `scenes.POSITIONS`
  ("top left", "top", ..., "center", ..., "bottom right");
- "exists":   "is there a blue square?" -> "yes"/"no" (half and half).
Chance: color 1/6, count 1/4, position 1/9, exists 1/2 (`majority_baseline` measures the
majority-answer accuracy of a task).

Downstream (specialization), mirroring the paper's Flickr30k/COCO and ScienceQA/IconQA:
- "caption_textured": the "textured" image domain and a Flickr-style sentence caption with
  other words (ball/box/wedge..., the background texture named); five references per image
  from varied templates, the training answer one of them; scored with CIDEr-D;
- "mcqa": multiple-choice questions in the ScienceQA/IconQA format on "dark" images (a new
  domain too): spatial relations ("which object is to the left of the green circle?"),
  extremes ("which object is closest to the top?"), comparisons ("which are there more
  of?") and totals; 3-4 lettered options; the answer is the letter; scored by accuracy.

Splits: an image goes to "train" or "test" by a hash of its pixels (`image_split`), and the
two splits draw from different rng streams, so train and test never share an image.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from .scenes import COLORS, IMAGE_SIZE, POSITIONS, SHAPES, Obj, Scene, render, sample_scene

UPSTREAM_TASKS = ("caption", "color", "count", "position", "exists")
# Pre-training only: the colour/count/position questions as lettered multiple choice, so the
# model knows the format before a downstream task uses it (LLaVA-1.5's mixture has MC data).
CHOICE_TASK = "choice"
# Pre-training only: one-sentence descriptions in everyday words (ball, box, striped, "and",
# "on", ...), in templates of their own. A released MLLM's language model knows the words of
# a downstream captioning set; without this task the tiny model never sees 39 of the 63
# caption target token types (issue 23).
DESCRIBE_TASK = "describe"
PRETRAIN_TASKS = UPSTREAM_TASKS + (CHOICE_TASK, DESCRIBE_TASK)
DOWNSTREAM_TASKS = ("caption_textured", "mcqa")
CAPTION_TASKS = ("caption", "caption_textured")
SPLITS = ("train", "test")
LETTERS = "ABCDEFGH"  # option letters, here and on the paper path (local.py)
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

_TASK_IDS = {t: i for i, t in enumerate(UPSTREAM_TASKS + DOWNSTREAM_TASKS + (CHOICE_TASK, DESCRIBE_TASK))}
_DEFAULT_STYLE = {"caption_textured": "textured", "mcqa": "dark"}


def image_split(image: np.ndarray) -> str:
    """'train' or 'test' from a hash of the pixels: an image belongs to one split only."""
    h = hashlib.blake2b(np.ascontiguousarray(image).tobytes(), digest_size=8).digest()
    return "test" if h[0] % 2 else "train"


def _stream(seed: int, split: str, task: str) -> np.random.Generator:
    return np.random.default_rng([int(seed), SPLITS.index(split), _TASK_IDS[task], 7919])


def _scene_for_split(rng, split, image_size, **scene_kwargs) -> tuple[Scene, np.ndarray]:
    while True:
        scene = sample_scene(rng, **scene_kwargs)
        image = render(scene, image_size)
        if image_split(image) == split:
            return scene, image


def _example(image, prompt, answer, task, choices=None, references=None, scene=None) -> dict:
    return {
        "image": image,
        "prompt": prompt,
        "answer": answer,
        "task": task,
        "choices": choices,
        "references": list(references) if references is not None else [answer],
        "scene": scene,
    }


# ---------------------------------------------------------------------------- upstream


def _plural(shape: str) -> str:
    return shape + ("es" if shape.endswith("s") else "s")


def upstream_caption(scene: Scene) -> str:
    n = len(scene.objects)
    head = "there is 1 object: " if n == 1 else f"there are {n} objects: "
    parts = [f"a {o.size} {o.color} {o.shape} at the {o.position}" for o in scene.objects]
    return head + ", ".join(parts) + "."


def _upstream_qa(task: str, scene: Scene, rng: np.random.Generator) -> tuple[str, str] | None:
    """(prompt, answer) for a VQA task, or None when the scene does not fit the question."""
    objs = scene.objects
    if task == "color":
        unique = [o for o in objs if scene.count(o.shape) == 1]
        if not unique:
            return None
        o = unique[int(rng.integers(len(unique)))]
        return f"what color is the {o.shape}?", o.color
    if task == "position":
        o = objs[int(rng.integers(len(objs)))]
        return f"where is the {o.name}?", o.position
    if task == "exists":
        if rng.random() < 0.5:
            o = objs[int(rng.integers(len(objs)))]
            return f"is there a {o.name}?", "yes"
        while True:
            color = COLORS[int(rng.integers(len(COLORS)))]
            shape = SHAPES[int(rng.integers(len(SHAPES)))]
            if scene.find(color, shape) is None:
                return f"is there a {color} {shape}?", "no"
    raise ValueError(f"unknown upstream task {task!r}")


def _pick_style(rng, styles: Sequence[str]) -> str:
    """One of `styles` (drawing from `rng` only when there is a choice, so a plain-only corpus
    is the same with or without this option)."""
    return styles[0] if len(styles) == 1 else styles[int(rng.integers(len(styles)))]


def _count_example(rng, split: str, image_size: int, max_objects: int, styles: Sequence[str] = ("plain",)) -> dict:
    """A balanced count question: the answer k is drawn uniformly from 0..min(3, max_objects)
    first, then scenes are sampled until some shape occurs exactly k times (a shape is
    rarely repeated in an unconditioned scene, so "1" would otherwise be the answer ~70% of
    the time)."""
    k = int(rng.integers(0, min(3, max_objects) + 1))
    while True:
        scene = sample_scene(rng, max_objects=max_objects, style=_pick_style(rng, styles))
        fits = [s for s in SHAPES if scene.count(s) == k]
        if not fits:
            continue
        shape = fits[int(rng.integers(len(fits)))]
        image = render(scene, image_size)
        if image_split(image) == split:
            return _example(image, f"how many {_plural(shape)} are there?", str(k), "count", scene=scene)


def _wrong_options(vocabulary: Sequence[str], correct: str, n: int, rng) -> list[str]:
    """`n` distinct options from `vocabulary` other than `correct`."""
    pool = [x for x in vocabulary if x != correct]
    return [pool[int(i)] for i in rng.choice(len(pool), size=n, replace=False)]


_CHOICE_POOLS = {"color": COLORS, "count": ("0", "1", "2", "3"), "position": tuple(POSITIONS.values())}


def _choice_example(rng, split: str, image_size: int, max_objects: int, mc_answer: str,
                   styles: Sequence[str] = ("plain",)) -> dict | None:
    """A colour, count or position question as 3-4 lettered options (the answer among them,
    the others drawn from the question's answer vocabulary); None when the scene does not fit."""
    sub = tuple(_CHOICE_POOLS)[int(rng.integers(len(_CHOICE_POOLS)))]
    if sub == "count":
        e = _count_example(rng, split, image_size, max_objects, styles)
        image, scene, question, answer = e["image"], e["scene"], e["prompt"], e["answer"]
    else:
        scene, image = _scene_for_split(rng, split, image_size, max_objects=max_objects,
                                        style=_pick_style(rng, styles))
        qa = _upstream_qa(sub, scene, rng)
        if qa is None:
            return None
        question, answer = qa
    k = int(rng.integers(3, 5))
    choices = [answer] + _wrong_options(_CHOICE_POOLS[sub], answer, k - 1, rng)
    choices = [choices[int(i)] for i in rng.permutation(k)]
    return _mc_example(image, question, choices, choices.index(answer), CHOICE_TASK, mc_answer, scene)


def upstream_task_examples(
    task: str, n: int, seed: int, split: str = "train", image_size: int = IMAGE_SIZE, max_objects: int = 4,
    mc_answer: str = "letter", styles: Sequence[str] = ("plain",),
) -> list[dict]:
    """`n` examples of one upstream task (or of the pre-training-only "choice" task), each on
    its own image in one of `styles` (the image domains; plain only by default)."""
    if task not in PRETRAIN_TASKS:
        raise ValueError(f"unknown upstream task {task!r}; expected one of {PRETRAIN_TASKS}")
    rng = _stream(seed, split, task)
    out = []
    while len(out) < n:
        if task == CHOICE_TASK:
            e = _choice_example(rng, split, image_size, max_objects, mc_answer, styles)
            if e is not None:
                out.append(e)
            continue
        if task == "count":
            out.append(_count_example(rng, split, image_size, max_objects, styles))
            continue
        scene, image = _scene_for_split(rng, split, image_size, max_objects=max_objects,
                                        style=_pick_style(rng, styles))
        if task == "caption":
            out.append(_example(image, "describe the image.", upstream_caption(scene), task, scene=scene))
            continue
        if task == DESCRIBE_TASK:
            out.append(_example(image, "describe the image in one sentence.", describe_sentence(scene, rng),
                                task, scene=scene))
            continue
        qa = _upstream_qa(task, scene, rng)
        if qa is not None:
            out.append(_example(image, qa[0], qa[1], task, scene=scene))
    return out


def upstream_examples(
    n: int,
    seed: int,
    tasks: Sequence[str] = UPSTREAM_TASKS,
    split: str = "train",
    image_size: int = IMAGE_SIZE,
    max_objects: int = 4,
    mc_answer: str = "letter",
    styles: Sequence[str] = ("plain",),
) -> list[dict]:
    """The pre-training mixture: `n` examples, tasks in equal shares (the first `n % len(tasks)`
    tasks get one more), shuffled deterministically. `mc_answer`: the "choice" task's target
    (the letter or the option's text); `styles`: the image domains drawn from."""
    tasks = list(tasks)
    out: list[dict] = []
    for i, task in enumerate(tasks):
        k = n // len(tasks) + (1 if i < n % len(tasks) else 0)
        out.extend(upstream_task_examples(task, k, seed, split, image_size, max_objects, mc_answer, styles))
    order = np.random.default_rng([int(seed), SPLITS.index(split), 104729]).permutation(len(out))
    return [out[i] for i in order]


def upstream_eval_sets(
    n_per_task: int, seed: int = 0, tasks: Sequence[str] = UPSTREAM_TASKS, image_size: int = IMAGE_SIZE
) -> dict[str, list[dict]]:
    """Held-out upstream evaluation sets (test split), one per task."""
    return {t: upstream_task_examples(t, n_per_task, seed, "test", image_size) for t in tasks}


# -------------------------------------------------------------------------- downstream

_NOUNS = {
    "circle": ("ball", "disc", "circle"),
    "square": ("box", "block", "square"),
    "triangle": ("wedge", "triangle", "pyramid"),
    "diamond": ("diamond", "gem", "rhombus"),
    "cross": ("plus sign", "cross", "plus"),
}
_TEXTURE_WORDS = {"stripes": "striped", "checks": "checkered", "dots": "dotted"}
_WHERE = {
    "top left": "in the upper left corner",
    "top": "near the top",
    "top right": "in the upper right corner",
    "left": "on the left side",
    "center": "in the middle",
    "right": "on the right side",
    "bottom left": "in the lower left corner",
    "bottom": "near the bottom",
    "bottom right": "in the lower right corner",
}


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _phrase(o: Obj, rng: np.random.Generator, with_size: bool, with_where: bool) -> str:
    noun = _NOUNS[o.shape][int(rng.integers(len(_NOUNS[o.shape])))]
    words = ([("big" if o.size == "large" else "little")] if with_size else []) + [o.color, noun]
    text = _article(words[0]) + " " + " ".join(words)
    return text + (" " + _WHERE[o.position] if with_where else "")


def _join(parts: list[str]) -> str:
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def textured_captions(scene: Scene, rng: np.random.Generator, k: int = 5) -> list[str]:
    """`k` Flickr-style reference sentences for a textured scene (varied templates/words)."""
    tex = _TEXTURE_WORDS.get(scene.texture, "plain")
    n = len(scene.objects)
    refs = []
    for i in range(k):
        kind = (i + int(rng.integers(4))) % 4
        where = kind in (1, 3)
        size = bool(rng.random() < 0.5)
        objs = _join([_phrase(o, rng, size, where) for o in scene.objects])
        if kind == 0:
            s = f"{objs} on a {tex} background."
        elif kind == 1:
            s = f"a {tex} background with {objs}."
        elif kind == 2:
            count = NUMBER_WORDS[n] + (" shape" if n == 1 else " shapes")
            s = f"{count} drawn over a {tex} pattern: {objs}."
        else:
            s = f"a picture of {objs} against {tex} wallpaper."
        refs.append(s[0].upper() + s[1:])
    return refs


def describe_sentence(scene: Scene, rng: np.random.Generator) -> str:
    """The pre-training "describe" task's sentence: the downstream captions' words (object
    phrases, texture words, number words, "and", "on", ...) in other templates than
    `textured_captions`, plus the phrase "the same number" of the multiple-choice answers.
    Any image style (a plain or dark background is called "plain")."""
    tex = _TEXTURE_WORDS.get(scene.texture, "plain")
    n = len(scene.objects)
    kind = int(rng.integers(5))
    objs = _join([_phrase(o, rng, bool(rng.random() < 0.5), kind in (1, 3)) for o in scene.objects])
    count = NUMBER_WORDS[n] + (" shape" if n == 1 else " shapes")
    if kind == 0:
        s = f"{count} on {_article(tex)} {tex} background, {objs}."
    elif kind == 1:
        s = f"{objs}, drawn over {tex} wallpaper."
    elif kind == 2:
        s = f"a picture with {tex} pattern and {count}: {objs}."
    elif kind == 3:
        s = f"{objs} against a {tex} background."
    else:
        shapes = sorted({o.shape for o in scene.objects})
        counts = {scene.count(x) for x in shapes}
        tail = ("the same number of each shape" if len(counts) == 1 else
                "a different number of each shape")
        s = f"{objs}, with {tail}."
    return s[0].upper() + s[1:]


MC_ANSWERS = ("text", "letter")


def _mc_prompt(question: str, choices: list[str], answer: str = "letter") -> str:
    opts = " ".join(f"({LETTERS[i]}) {c}" for i, c in enumerate(choices))
    tail = "answer with the letter." if answer == "letter" else "answer with one of the options."
    return f"{question}\noptions: {opts}\n{tail}"


def _mc_example(image, question: str, choices: list[str], correct: int, task: str, answer: str, scene) -> dict:
    """A lettered multiple-choice example; the target is the letter or the option's text."""
    if answer not in MC_ANSWERS:
        raise ValueError(f"unknown multiple-choice answer form {answer!r}; expected one of {MC_ANSWERS}")
    target = LETTERS[correct] if answer == "letter" else choices[correct]
    return _example(image, _mc_prompt(question, choices, answer), target, task, choices=choices, scene=scene)


def _distractor_names(scene: Scene, exclude: set[str], rng, k: int) -> list[str]:
    """Up to k object names, first from the scene, then absent (colour, shape) pairs."""
    inside = [o.name for o in scene.objects if o.name not in exclude]
    rng.shuffle(inside)
    out = inside[:k]
    while len(out) < k:
        name = f"{COLORS[int(rng.integers(len(COLORS)))]} {SHAPES[int(rng.integers(len(SHAPES)))]}"
        if name not in exclude and name not in out:
            out.append(name)
    return out


_RELATIONS = {
    "to the left of": lambda a, b: a.col < b.col,
    "to the right of": lambda a, b: a.col > b.col,
    "above": lambda a, b: a.row < b.row,
    "below": lambda a, b: a.row > b.row,
}
_EXTREMES = {
    "closest to the left edge": lambda o: o.col,
    "closest to the right edge": lambda o: -o.col,
    "closest to the top": lambda o: o.row,
    "closest to the bottom": lambda o: -o.row,
}


MCQA_KINDS = ("shape", "color_at", "total", "compare", "relation", "extreme")


def _mcqa_item(scene: Scene, rng: np.random.Generator, kinds: Sequence[str] = MCQA_KINDS
               ) -> tuple[str, list[str], int] | None:
    """(question, choices, index of the correct choice) or None when the scene does not fit.
    Kinds: "shape" (what shape is the <colour> object?), "color_at" (what colour is the object
    at the <position>?), "total" (how many objects?), "compare" (which shape is more
    frequent?), "relation" (which object is left of / above ... X?), "extreme" (which object
    is closest to an edge?)."""
    kind = kinds[int(rng.integers(len(kinds)))]
    objs = scene.objects
    if kind == "shape":
        colors = [o.color for o in objs]
        unique = [o for o in objs if colors.count(o.color) == 1]
        if not unique:
            return None
        o = unique[int(rng.integers(len(unique)))]
        question = f"what shape is the {o.color} object?"
        correct = o.shape
        wrong = _wrong_options(SHAPES, correct, int(rng.integers(2, 4)), rng)
    elif kind == "color_at":
        o = objs[int(rng.integers(len(objs)))]
        question = f"what color is the object at the {o.position}?"
        correct = o.color
        wrong = _wrong_options(COLORS, correct, int(rng.integers(2, 4)), rng)
    elif kind == "relation":
        rel = list(_RELATIONS)[int(rng.integers(len(_RELATIONS)))]
        anchor = objs[int(rng.integers(len(objs)))]
        hits = [o for o in objs if o is not anchor and _RELATIONS[rel](o, anchor)]
        if len(hits) != 1:
            return None
        question = f"which object is {rel} the {anchor.name}?"
        correct = hits[0].name
        wrong = _distractor_names(scene, {correct, anchor.name}, rng, 3)
    elif kind == "extreme":
        ext = list(_EXTREMES)[int(rng.integers(len(_EXTREMES)))]
        keys = [_EXTREMES[ext](o) for o in objs]
        best = min(keys)
        if len(objs) < 2 or keys.count(best) != 1:
            return None
        question = f"which object is {ext}?"
        correct = objs[keys.index(best)].name
        wrong = _distractor_names(scene, {correct}, rng, 3)
    elif kind == "compare":
        a, b = rng.choice(len(SHAPES), size=2, replace=False)
        sa, sb = SHAPES[int(a)], SHAPES[int(b)]
        ca, cb = scene.count(sa), scene.count(sb)
        if ca == cb == 0:
            return None
        question = f"which are there more of, {_plural(sa)} or {_plural(sb)}?"
        options = [_plural(sa), _plural(sb), "the same number"]
        correct = options[0 if ca > cb else 1 if cb > ca else 2]
        wrong = [c for c in options if c != correct]
    else:
        n = len(objs)
        question = "how many objects are in the picture?"
        pool = [str(v) for v in range(1, 7) if v != n]
        correct = str(n)
        wrong = [pool[int(i)] for i in rng.choice(len(pool), size=3, replace=False)]
    choices = [correct] + list(wrong)
    order = rng.permutation(len(choices))
    choices = [choices[int(i)] for i in order]
    return question, choices, choices.index(correct)


def downstream_examples(
    task: str,
    n: int,
    seed: int,
    split: str = "train",
    image_size: int = IMAGE_SIZE,
    style: str | None = None,
    max_objects: int = 4,
    mcqa_kinds: Sequence[str] = MCQA_KINDS,
    mc_answer: str = "letter",
) -> list[dict]:
    """`n` examples of a downstream task ("caption_textured" or "mcqa"). `style` overrides the
    task's image domain (default: textured for captioning, dark for multiple choice);
    `mcqa_kinds` picks the multiple-choice question kinds (`_mcqa_item`) and `mc_answer` the
    target (the letter, as ScienceQA, or the option's text)."""
    if task not in DOWNSTREAM_TASKS:
        raise ValueError(f"unknown downstream task {task!r}; expected one of {DOWNSTREAM_TASKS}")
    style = style or _DEFAULT_STYLE[task]
    rng = _stream(seed, split, task)
    out = []
    while len(out) < n:
        if task == "caption_textured":
            scene, image = _scene_for_split(rng, split, image_size, max_objects=max_objects, style=style)
            refs = textured_captions(scene, rng)
            answer = refs[int(rng.integers(len(refs)))]
            out.append(_example(image, "write a short caption.", answer, task, references=refs, scene=scene))
            continue
        scene, image = _scene_for_split(
            rng, split, image_size, max_objects=max(2, max_objects), min_objects=2, style=style
        )
        item = _mcqa_item(scene, rng, mcqa_kinds)
        if item is None:
            continue
        question, choices, idx = item
        out.append(
            _mc_example(image, question, choices, idx, task, mc_answer, scene)
        )
    return out


# ------------------------------------------------------------------------------ scoring


def normalize_answer(text: str) -> str:
    text = text.lower().strip()
    text = re.sub(r"[^a-z0-9 ]+", " ", text)
    return " ".join(text.split())


def mc_letter(text: str) -> str | None:
    """The option letter in a generated answer ('B', '(B)', 'B) circles' -> 'B'). Upper case
    only: a lower-case 'a' is the article ('a dog'), not option A."""
    m = re.match(rf"\s*\(?([{LETTERS}])\b", text)
    return m.group(1) if m else None


def majority_baseline(train: Sequence[dict], test: Sequence[dict]) -> float:
    """Accuracy on `test` of always answering the most frequent answer in `train`."""
    from collections import Counter

    top = Counter(e["answer"] for e in train).most_common(1)[0][0]
    return float(np.mean([e["answer"] == top for e in test])) if test else 0.0


def task_metric(task: str) -> str:
    return "cider" if task in CAPTION_TASKS else "accuracy"


def score(examples: Sequence[dict], predictions: Sequence[str]) -> float:
    """Scores predictions for examples of one task: CIDEr-D for captioning (the COCO
    scale, ~1 for good captions, at most 10), exact-match accuracy in [0, 1] for VQA (normalised text) and multiple choice (the
    letter). Use `score_percent` for a common 0-100 scale."""
    if len(examples) != len(predictions):
        raise ValueError("examples and predictions differ in length")
    tasks = {e["task"] for e in examples}
    if len(tasks) != 1:
        raise ValueError(f"score one task at a time, got {sorted(tasks)}")
    task = tasks.pop()
    if task in CAPTION_TASKS:
        from .cider import cider_d

        return cider_d(list(predictions), [e["references"] for e in examples])[0]
    if task in ("mcqa", CHOICE_TASK) and all(e["answer"] in tuple(LETTERS) for e in examples):
        hits = [mc_letter(p) == e["answer"] for e, p in zip(examples, predictions)]
    else:
        hits = [normalize_answer(p) == normalize_answer(e["answer"]) for e, p in zip(examples, predictions)]
    return float(np.mean(hits)) if hits else 0.0


def score_percent(examples: Sequence[dict], predictions: Sequence[str]) -> float:
    """`score` x 100: accuracy in percent, CIDEr-D as papers report it (COCO's 1.05 -> 105)."""
    return 100.0 * score(examples, predictions)
