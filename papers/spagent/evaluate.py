"""Evaluation of one seed's agent on the held-out requests: intent accuracy per field, route
accuracy, selection agreement with the per-request oracle, task completion and final-video
quality of the agent and every baseline, and the library-expansion experiment."""

from __future__ import annotations

import numpy as np

from papers.spagent import capabilities, metrics, scenes
from papers.spagent.agent import Agent
from papers.spagent.intent_model import Intent, keyword_intent
from papers.spagent.pipeline import Library, world
from papers.spagent.tools import Tool, build_tool

FIELDS = ("e_t", "e_v", "agree", "subject_S", "style")
AGENTS = ("agent", "agent_keywords", "agent_no_selection", "random_tool", "fixed_route")


def inputs(request, w) -> tuple:
    scene = request.input_scene()
    if request.e_v == "image":
        return scenes.render(scene, w.size, 1)[0], None
    if request.e_v == "video":
        return None, scenes.render(scene, w.size, w.frames)
    return None, None


def gold_weights(request) -> dict:
    return capabilities.STYLE_WEIGHTS[request.style]


def quality(video, request, lib: Library, cfg) -> tuple[float, bool, dict]:
    """(request-weighted quality, completed, the scores) of a final video against the gold S."""
    if video is None:
        return 0.0, False, {}
    scores = metrics.score_video(video, request.colour, request.subject, lib.encoder, cfg.video.flow_scale, read=True)
    done = scores.pop("read") == (request.colour, request.subject)
    return metrics.weighted(scores, gold_weights(request)), bool(done), scores


def intent_hits(pred: Intent, request, target) -> dict:
    return {"e_t": pred.e_t == request.e_t, "e_v": pred.e_v == request.e_v, "agree": pred.agree == request.agree,
            "subject_S": tuple(target) == (request.colour, request.subject), "style": pred.style == request.style}


def oracle_step(agent: Agent, kind: str, tools: list[Tool], text: str, carry, weights, target, seed, cfg,
                scores: dict | None = None):
    """The best measured tool for this very step: run every tool of the kind, score each
    (each tool's weighted score is written into `scores` when given)."""
    best, best_score = None, -1.0
    for t in tools:
        if t.kind != kind:
            continue
        if kind in ("i2v", "edit"):
            out = t(text, image=carry, seed=seed, world=agent.world)
        elif kind == "v2v":
            out = t(text, video=carry, seed=seed, world=agent.world)
        else:
            out = t(text, seed=seed, world=agent.world)
        s = metrics.weighted(capabilities.score_output(kind, out, target, agent.encoder, cfg.video.flow_scale,
                                                       before=carry if kind == "edit" else None), weights)
        if scores is not None:
            scores[t.name] = s
        if s > best_score:
            best, best_score = t.name, s
    return best


def style_oracle(by_style: dict, table: dict, new_tool: Tool) -> dict:
    """Per request style: the tool of the new tool's kind with the best mean measured score over
    that style's held-out steps (the oracle of the request class), and the one selection picks."""
    out = {}
    for style, steps in sorted(by_style.items()):
        names = list(steps[0])
        means = {n: float(np.mean([m[n] for m in steps])) for n in names}
        out[style] = {"oracle": max(means, key=means.get), "selected": capabilities.select(
            new_tool.kind, capabilities.STYLE_WEIGHTS[style], table)[0], "steps": len(steps), "measured": means}
    return out


def run_agent(agent: Agent, intent: Intent, image, video, seed, random_rng=None, fixed=None):
    plan = agent.plan(intent, image, video)
    if fixed is not None:
        plan.route = fixed
        plan.tools = [agent.pick(k, plan.weights)[0] for k in fixed]
        image = video = None
    if random_rng is not None:
        plan.tools = [None if k == "extract" else str(random_rng.choice([n for n, t in agent.tools.items() if t.kind == k]))
                      for k in plan.route]
    return plan, agent.execute(plan, image, video, seed)


def single_model(tool: Tool, request, image, video, seed, w):
    """A fixed model alone on the raw request text (None when it lacks its input)."""
    if tool.kind == "t2v":
        return tool(request.text, seed=seed, world=w)
    if tool.kind == "i2v":
        img = image if image is not None else (video[0] if video is not None else None)
        return None if img is None else tool(request.text, image=img, seed=seed, world=w)
    if tool.kind == "v2v":
        return None if video is None else tool(request.text, video=video, seed=seed, world=w)
    return None


def evaluate_seed(cfg, lib: Library, requests: list, seed: int, new_tool_spec: dict) -> dict:
    w = world(cfg)
    p = cfg.planner
    model = lib.intent_model()
    mk = lambda tools, table, selection=True: Agent(tools, table, lib.encoder, w, p.extra_steps, p.margin, selection)  # noqa: E731
    agent = mk(lib.tools, lib.table)
    no_sel = mk(lib.tools, lib.table, selection=False)
    rng = np.random.default_rng([seed, 7])
    singles = [t for t in lib.tools if t.kind in ("t2v", "i2v", "v2v")]
    new_tool = build_tool(new_tool_spec)
    new_row = {"kind": new_tool.kind, "scores": capabilities.assess(new_tool, lib.encoder, p.probes, p.probe_seed, w,
                                                                     cfg.video.flow_scale)}
    expanded = mk([*lib.tools, new_tool], {**lib.table, new_tool.name: new_row})
    per = {m: {"quality": [], "completion": []} for m in (*AGENTS, *(f"single:{t.name}" for t in singles), "agent_expanded")}
    hits = {f: [] for f in FIELDS}
    hits_kw = {f: [] for f in FIELDS}
    route_ok, route_ok_kw, agree_sel = [], [], []
    kinds: dict[str, list] = {}
    expansion = {"oracle_new_selected": [], "oracle_other_selected_other": [], "calm_gain": []}
    by_style: dict[str, list[dict]] = {}  # style -> every measured step of the new tool's kind
    for k, req in enumerate(requests):
        image, video = inputs(req, w)
        s = seed * 100003 + k
        intent = model.predict(req.text, image, video)
        plan, outs = run_agent(agent, intent, image, video, s)
        q, done, _ = quality(outs[-1][2], req, lib, cfg)
        per["agent"]["quality"].append(q)
        per["agent"]["completion"].append(done)
        kinds.setdefault(f"{req.e_t}/{req.e_v}", []).append(done)
        for f, v in intent_hits(intent, req, plan.target).items():
            hits[f].append(v)
        route_ok.append(plan.route in req.routes)
        carry = video if video is not None else image
        for (step, name, out) in outs:
            if step != "extract":
                best = oracle_step(agent, step, lib.tools, agent.prompt(step, plan), carry, plan.weights, plan.target, s, cfg)
                agree_sel.append(best == name)
            carry = out
        kw = keyword_intent(req.text, image, video)
        plan_kw, outs_kw = run_agent(agent, kw, image, video, s)
        for f, v in intent_hits(kw, req, plan_kw.target).items():
            hits_kw[f].append(v)
        route_ok_kw.append(plan_kw.route in req.routes)
        variants = {"agent_keywords": outs_kw,
                    "agent_no_selection": run_agent(no_sel, intent, image, video, s)[1],
                    "random_tool": run_agent(agent, intent, image, video, s, random_rng=rng)[1],
                    "fixed_route": run_agent(agent, intent, image, video, s, fixed=["t2i", "i2v"])[1]}
        for m, o in variants.items():
            q2, d2, _ = quality(o[-1][2], req, lib, cfg)
            per[m]["quality"].append(q2)
            per[m]["completion"].append(d2)
        for t in singles:
            q2, d2, _ = quality(single_model(t, req, image, video, s, w), req, lib, cfg)
            per[f"single:{t.name}"]["quality"].append(q2)
            per[f"single:{t.name}"]["completion"].append(d2)
        # library expansion: the same plan with the new tool in the table
        plan_x, outs_x = run_agent(expanded, intent, image, video, s)
        qx, dx, _ = quality(outs_x[-1][2], req, lib, cfg)
        per["agent_expanded"]["quality"].append(qx)
        per["agent_expanded"]["completion"].append(dx)
        if req.style == "calm":
            expansion["calm_gain"].append(qx - q)
        carry = video if video is not None else image
        for (step, name, out) in outs_x:
            if step == new_tool.kind:
                measured: dict = {}
                best = oracle_step(expanded, step, expanded.tools.values(), expanded.prompt(step, plan_x), carry,
                                   plan_x.weights, plan_x.target, s, cfg, measured)
                key = "oracle_new_selected" if best == new_tool.name else "oracle_other_selected_other"
                expansion[key].append((name == new_tool.name) == (best == new_tool.name))
                by_style.setdefault(plan_x.intent.style, []).append(measured)
            carry = out
    mean = lambda xs: float(np.mean(xs)) if len(xs) else float("nan")  # noqa: E731
    styles = style_oracle(by_style, expanded.table, new_tool)
    return {
        "seed": seed,
        "methods": {m: {"quality": mean(v["quality"]), "completion": mean(v["completion"])} for m, v in per.items()},
        "intent": {f: mean(v) for f, v in hits.items()},
        "intent_keywords": {f: mean(v) for f, v in hits_kw.items()},
        "route_accuracy": mean(route_ok), "route_accuracy_keywords": mean(route_ok_kw),
        "selection_agreement": mean(agree_sel),
        "completion_by_kind": {k: mean(v) for k, v in sorted(kinds.items())},
        "kind_counts": {k: len(v) for k, v in sorted(kinds.items())},
        "expansion": {"where_best": mean(expansion["oracle_new_selected"]),
                      "where_best_n": len(expansion["oracle_new_selected"]),
                      "only_where_best": mean(expansion["oracle_other_selected_other"]),
                      "only_where_best_n": len(expansion["oracle_other_selected_other"]),
                      "calm_gain": mean(expansion["calm_gain"]), "new_row": new_row, "styles": styles,
                      "style_where_best": mean([v["selected"] == new_tool.name for v in styles.values()
                                                if v["oracle"] == new_tool.name]),
                      "style_where_best_n": sum(v["oracle"] == new_tool.name for v in styles.values()),
                      "style_only_where_best": mean([v["selected"] != new_tool.name for v in styles.values()
                                                     if v["oracle"] != new_tool.name]),
                      "style_only_where_best_n": sum(v["oracle"] != new_tool.name for v in styles.values())},
        "table": lib.table,
    }
