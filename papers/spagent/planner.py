"""Principle-guided route planning [recon: the principles are the paper's; their form as rules
is ours]. A route is a chain of steps, each a tool kind (or the frame extraction `extract`),
that turns the request's inputs into a video. The principles, each a testable function of a
route and an intent:

P0 respect the request: a route starts from the visual input when there is one; a new
   content request (new motion from a video) does not end in a video edit, and an edit of a
   video keeps its motion (ends in v2v).
P1 make the visual input consistent with the text before animating: when the text disagrees
   with the input (A false) or asks for an edit, an edit comes before any animation; when it
   agrees, nothing is edited.
P2 the fewest steps: candidates are the valid routes at most `extra_steps` longer than the
   shortest valid one, never repeating a step kind; a shorter route wins ties.
P3 prefer the route whose weakest tool is strongest: each model step is scored by the best
   tool of its kind for the request's weights; a route's strength is its weakest step, and a
   longer candidate is chosen only when it is stronger by more than `margin`.
"""

from __future__ import annotations

from collections.abc import Callable

# step -> (the visual it consumes: None = text only, the visual it makes)
STEPS = {"t2i": (None, "image"), "t2v": (None, "video"), "i2v": ("image", "video"),
         "edit": ("image", "image"), "v2v": ("video", "video"), "extract": ("video", "image")}
EDITS = ("edit", "v2v")


def chains(e_v: str, max_len: int = 3) -> list[list[str]]:
    """Every chain of steps of length ≤ max_len ending in a video, each step consuming what
    the previous one made (a text-only step may start a chain whatever is attached)."""
    out = []

    def grow(route: list[str], have: str | None) -> None:
        if route and have == "video":
            out.append(list(route))
        if len(route) == max_len:
            return
        for step, (needs, makes) in STEPS.items():
            if (needs is None and not route) or (needs is not None and needs == have):
                grow([*route, step], makes)

    grow([], None if e_v == "none" else e_v)
    return out


def needs_edit(intent) -> bool:
    return intent.e_v != "none" and (intent.e_t == "edit" or not intent.agree)


def p0_respects_request(route: list[str], intent) -> bool:
    if intent.e_v != "none" and STEPS[route[0]][0] is None:
        return False
    if intent.e_v == "video" and intent.e_t == "new_content" and route[-1] == "v2v":
        return False
    return not (intent.e_v == "video" and intent.e_t == "edit" and route[-1] != "v2v")


def p1_consistent_before_animating(route: list[str], intent) -> bool:
    edits = [i for i, s in enumerate(route) if s in EDITS]
    if not needs_edit(intent):
        return not edits
    animations = [i for i, s in enumerate(route) if s in ("i2v", "t2v")]
    return bool(edits) and all(e < a for e in edits for a in animations if route[e] == "edit") \
        and not any(route[e] == "v2v" and animations for e in edits)


PRINCIPLES: dict[str, Callable] = {"P0 respect the request": p0_respects_request,
                                   "P1 consistent before animating": p1_consistent_before_animating}


def candidates(intent, extra_steps: int = 1, max_len: int = 3) -> list[list[str]]:
    """P0, P1 then P2: the valid routes at most extra_steps longer than the shortest."""
    valid = [r for r in chains(intent.e_v, max_len) if all(p(r, intent) for p in PRINCIPLES.values())]
    if not valid:
        return []
    shortest = min(map(len, valid))
    return sorted([r for r in valid if len(r) <= shortest + extra_steps and len(set(r)) == len(r)], key=len)


def route_strength(route: list[str], step_score: Callable[[str], float]) -> float:
    """P3: the weakest model step's score (extraction is not a model and scores 1)."""
    return min(step_score(s) if s != "extract" else 1.0 for s in route)


def choose(routes: list[list[str]], step_score: Callable[[str], float], margin: float) -> tuple[int, list[float]]:
    """P3 with P2's tie-break: (index of the chosen route, every route's strength). Routes come
    sorted by length; a longer one replaces the best so far only when stronger by > margin."""
    strengths = [route_strength(r, step_score) for r in routes]
    best = 0
    for i in range(1, len(routes)):
        longer = len(routes[i]) > len(routes[best])
        if strengths[i] > strengths[best] + (margin if longer else 0.0):
            best = i
    return best, strengths
