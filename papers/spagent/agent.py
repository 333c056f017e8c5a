"""The Semantic Planning Agent: intent → candidate routes → chosen route → a tool per step →
the video, with the plan explained [recon of the paper's three steps]."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from papers.spagent import capabilities, lexicon, planner
from papers.spagent.intent_model import Intent, target_of
from papers.spagent.tools import Tool, Video, extract_frame


@dataclass
class Plan:
    intent: Intent
    target: tuple[str, str]
    weights: dict
    candidates: list[dict]  # {route, strength}
    route: list[str]
    tools: list[str | None]  # per step (None for extract)
    why: list[str] = field(default_factory=list)
    step_scores: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"intent": self.intent.to_dict(), "target": {"colour": self.target[0], "subject": self.target[1]},
                "weights": self.weights, "candidate_routes": self.candidates, "route": self.route,
                "tools": self.tools, "step_scores": self.step_scores, "why": self.why}

    def paragraph(self) -> str:
        i = self.intent
        article = "an" if i.e_t[0] in "aeiou" else "a"
        visual = "no visual input" if i.e_v == "none" else ("an " if i.e_v == "image" else "a ") + i.e_v
        agree = "" if i.e_v == "none" else f"; the text {'agrees' if i.agree else 'disagrees'} with the visual input"
        text = (f"The request is {article} {i.e_t} request with {visual}{agree}, and the subject to show "
                f"is a {self.target[0]} {self.target[1]} ({i.style} style). ")
        text += "Candidate routes: " + "; ".join(
            f"{' → '.join(c['route'])} (weakest step {c['strength']:.3f})" for c in self.candidates) + ". "
        text += f"Chosen: {' → '.join(self.route)}. " + " ".join(self.why)
        return text


class Agent:
    """`plan` and `run` a request; `selection=False` is the ablation without capability
    selection (the shortest candidate route, the first tool of each kind)."""

    def __init__(self, tools: list[Tool], table: dict, encoder, world: Video, extra_steps: int = 1,
                 margin: float = 0.02, selection: bool = True):
        self.tools = {t.name: t for t in tools}
        self.table = {n: r for n, r in table.items() if n in self.tools}
        self.encoder, self.world = encoder, world
        self.extra_steps, self.margin, self.selection = extra_steps, margin, selection

    def first_of(self, kind: str) -> str:
        return next(n for n, t in self.tools.items() if t.kind == kind)

    def pick(self, kind: str, weights: dict) -> tuple[str, dict]:
        if not self.selection:
            return self.first_of(kind), {}
        return capabilities.select(kind, weights, self.table)

    def plan(self, intent: Intent, image=None, video=None) -> Plan:
        visual = image if video is None else video[0]
        target = target_of(intent, visual, self.encoder)
        weights = capabilities.STYLE_WEIGHTS[intent.style]
        routes = planner.candidates(intent, self.extra_steps)
        if not routes:
            raise ValueError(f"no route satisfies the principles for {intent.e_t} with {intent.e_v}")

        def strength(kind: str) -> float:
            name, scores = self.pick(kind, weights)
            return scores.get(name, 1.0)

        best, strengths = planner.choose(routes, strength, self.margin) if self.selection else (0, [1.0] * len(routes))
        route = routes[best]
        tools, why, step_scores = [], [], []
        for kind in route:
            if kind == "extract":
                tools.append(None)
                step_scores.append({})
                continue
            name, scores = self.pick(kind, weights)
            tools.append(name)
            step_scores.append(scores)
            if scores:
                ranked = sorted(scores.items(), key=lambda kv: -kv[1])
                runner = f", ahead of {ranked[1][0]} ({ranked[1][1]:.3f})" if len(ranked) > 1 else ""
                why.append(f"For {kind}, {name} has the best weighted capability ({scores[name]:.3f}{runner}).")
            else:
                why.append(f"For {kind}, {name} is the library's default tool (no capability selection).")
        if len(routes) > 1:
            why.insert(0, f"{' → '.join(route)} was preferred: its weakest step is the strongest "
                          f"(ties and gaps ≤ {self.margin} go to the shorter route).")
        cands = [{"route": r, "strength": float(s)} for r, s in zip(routes, strengths)]
        return Plan(intent, target, weights, cands, route, tools, why, step_scores)

    def prompt(self, kind: str, plan: Plan) -> str:
        c, s = plan.target
        i = plan.intent
        if kind in ("t2i", "t2v"):
            return lexicon.caption(c, s, i.background, i.motion if kind == "t2v" else None)
        if kind == "i2v":
            return lexicon.caption(c, s, None, i.motion)
        return lexicon.caption(c, s)

    def execute(self, plan: Plan, image=None, video=None, seed: int = 0, tools: list[str] | None = None):
        """Run the route: [(step, tool name, output)], the last output is the video."""
        carry = video if video is not None else image
        outputs = []
        for step, name in zip(plan.route, tools or plan.tools):
            if step == "extract":
                carry = extract_frame(carry)
                outputs.append((step, None, carry))
                continue
            tool = self.tools[name]
            text = self.prompt(step, plan)
            if step in ("t2i", "t2v"):
                carry = tool(text, seed=seed, world=self.world)
            elif step in ("i2v", "edit"):
                carry = tool(text, image=carry, seed=seed, world=self.world)
            else:
                carry = tool(text, video=carry, seed=seed, world=self.world)
            outputs.append((step, name, carry))
        return outputs


def final_video(outputs) -> np.ndarray:
    return outputs[-1][2]
