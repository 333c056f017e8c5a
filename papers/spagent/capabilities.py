"""Capability-based model selection [recon]: a tool × quality-dimension table measured by
running a fixed probe suite through each tool and scoring the outputs with the metrics; per
step, the tool maximising the request-weighted sum of its row. A new tool joins by running the
same probes (`assess`), with no person involved."""

from __future__ import annotations

import numpy as np

from papers.spagent import lexicon, metrics, scenes
from papers.spagent.tools import KINDS, Tool, Video

# request weights per style [recon]: what a calm or a lively request cares about
STYLE_WEIGHTS = {
    "neutral": {"flicker": 1, "subject": 1, "background": 1, "dynamic": 1, "smoothness": 1,
                "alignment": 2, "preservation": 1},
    "calm": {"flicker": 2, "subject": 2, "background": 1, "dynamic": 0.25, "smoothness": 3,
             "alignment": 2, "preservation": 1},
    "lively": {"flicker": 0.5, "subject": 1, "background": 1, "dynamic": 3, "smoothness": 0.5,
               "alignment": 2, "preservation": 1},
}


def dims(kind: str) -> tuple[str, ...]:
    return metrics.IMAGE_DIMS.get(kind, metrics.VIDEO_DIMS)


def probe_inputs(kind: str, n: int, seed: int, world: Video) -> list[dict]:
    """The fixed probe suite of a kind: n inputs with their targets."""
    rng = np.random.default_rng([seed, 4242, list(KINDS).index(kind)])
    out = []
    for _ in range(n):
        sc = scenes.random_scene(rng)
        new = str(rng.choice([c for c in scenes.COLOURS if c != sc.colour]))
        if kind in ("t2i", "t2v"):
            out.append({"text": lexicon.caption(sc.colour, sc.subject, sc.background, sc.motion),
                        "target": (sc.colour, sc.subject)})
        elif kind == "i2v":
            out.append({"text": lexicon.caption(sc.colour, sc.subject, None, sc.motion),
                        "image": scenes.render(sc, world.size, 1)[0], "target": (sc.colour, sc.subject)})
        elif kind == "edit":
            out.append({"text": lexicon.caption(new, sc.subject), "image": scenes.render(sc, world.size, 1)[0],
                        "target": (new, sc.subject)})
        else:
            out.append({"text": lexicon.caption(new, sc.subject),
                        "video": scenes.render(sc, world.size, world.frames), "target": (new, sc.subject)})
    return out


def score_output(kind: str, output, target, encoder, flow_scale: float, before=None) -> dict:
    if kind in metrics.IMAGE_DIMS:
        return metrics.score_image(kind, output, *target, encoder, before=before)
    return metrics.score_video(output, *target, encoder, flow_scale)


def assess(tool: Tool, encoder, probes: int, probe_seed: int, world: Video, flow_scale: float) -> dict:
    """The tool's capability row: the mean score of each dimension over its probe suite."""
    rows = []
    for i, probe in enumerate(probe_inputs(tool.kind, probes, probe_seed, world)):
        out = tool(probe["text"], image=probe.get("image"), video=probe.get("video"), seed=i, world=world)
        rows.append(score_output(tool.kind, out, probe["target"], encoder, flow_scale, before=probe.get("image")))
    return {d: float(np.mean([r[d] for r in rows])) for d in dims(tool.kind)}


def measure(tools: list[Tool], encoder, probes: int, probe_seed: int, world: Video, flow_scale: float) -> dict:
    return {t.name: {"kind": t.kind, "scores": assess(t, encoder, probes, probe_seed, world, flow_scale)}
            for t in tools}


def tool_score(row: dict, weights: dict) -> float:
    return metrics.weighted(row["scores"], weights)


def select(kind: str, weights: dict, table: dict, names: list[str] | None = None) -> tuple[str, dict]:
    """The argmax tool of `kind` by the request-weighted sum (ties: the first in the table)
    and every candidate's score."""
    scores = {n: tool_score(r, weights) for n, r in table.items()
              if r["kind"] == kind and (names is None or n in names)}
    if not scores:
        raise ValueError(f"no tool of kind {kind} in the library")
    return max(scores, key=lambda n: (scores[n], -list(scores).index(n))), scores
