"""`reproduce`: per seed, train (or reuse) the agent and evaluate it with every baseline and
the library expansion; then the tables, the claims (claims.py), two plots and the gallery."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml

from papers.spagent import pipeline
from papers.spagent.claims import build_claims, build_notes
from papers.spagent.evaluate import FIELDS, evaluate_seed
from shared import UserError
from shared.results import build_results, summarize, write_results
from shared.runs import finish_run, mark_done, new_reproduce_dir, open_run, run_jobs, write_run_info

TITLE = "SPAgent: Adaptive Task Decomposition and Model Selection for General Video Generation and Editing"
GALLERY = [
    ("make the red parrot green and let it fly", "image", dict(subject="parrot", colour="red", background="beach", motion="fly")),
    ("a blue fish swimming slowly in the snow", "none", None),
    ("take the cat from this clip and show a purple cat jumping", "video",
     dict(subject="cat", colour="orange", background="forest", motion="swim")),
]


def new_tool_spec(cfg, paper_dir: Path) -> dict:
    path = Path(cfg.experiment.new_tool)
    path = path if path.is_absolute() or path.exists() else paper_dir / path
    return read_spec(path)


def read_spec(path: Path) -> dict:
    from papers.spagent.tools import check_spec

    if not Path(path).is_file():
        raise UserError(f"tool spec {path}: no such file")
    try:
        spec = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as exc:
        raise UserError(f"tool spec {path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    return check_spec(spec, f"tool spec {path}")


def eval_seed(cfg, ctx, seed: int, lib, heldout, spec) -> dict:
    run_dir, done = open_run(cfg, pipeline.SLUG, ctx.config_name, "eval", seed, (*pipeline.RELEVANT, "experiment.eval_requests", "experiment.new_tool"))
    if done is not None:
        return done
    result = evaluate_seed(cfg, lib, heldout[:cfg.experiment.eval_requests], seed, spec)
    (run_dir / "library.txt").write_text(str(lib.path) + "\n")
    return finish_run(run_dir, result)


def seed_job(job) -> tuple[dict, dict]:
    """Train (or reuse) and evaluate one seed (a module-level function: run_jobs may spawn it)."""
    import torch

    cfg, ctx, seed = job
    torch.set_num_threads(1)
    train, heldout = pipeline.datasets(cfg)
    t = pipeline.train_seed(cfg, ctx, seed)
    lib = pipeline.Library(Path(t["run_dir"]), features=pipeline.text_features(cfg, train + heldout))
    return t, eval_seed(cfg, ctx, seed, lib, heldout, new_tool_spec(cfg, ctx.paper_dir))


def _methods(trains, evals) -> dict:
    methods = {}
    for m in evals[0]["methods"]:
        methods[m] = {k: summarize([e["methods"][m][k] for e in evals]) for k in ("quality", "completion")}
    a = methods["agent"]
    for f in FIELDS:
        a[f"intent {f}"] = summarize([e["intent"][f] for e in evals])
        methods["agent_keywords"][f"intent {f}"] = summarize([e["intent_keywords"][f] for e in evals])
    a["route accuracy"] = summarize([e["route_accuracy"] for e in evals])
    methods["agent_keywords"]["route accuracy"] = summarize([e["route_accuracy_keywords"] for e in evals])
    a["selection agreement"] = summarize([e["selection_agreement"] for e in evals])
    for k in evals[0]["completion_by_kind"]:
        a[f"completion {k}"] = summarize([e["completion_by_kind"][k] for e in evals])
    a["encoder zero-shot"] = summarize([t["zero_shot"] for t in trains])
    a["encoder plateau"] = summarize([t["encoder_plateau"] for t in trains])
    a["intent plateau"] = summarize([t["intent_plateau"] for t in trains])
    x = methods["agent_expanded"]
    for k in ("where_best", "only_where_best"):
        x[k.replace("_", " ")] = summarize([e["expansion"][k] if e["expansion"][f"{k}_n"] else 0.0 for e in evals])
        x[k.replace("_", " ") + " steps"] = summarize([e["expansion"][f"{k}_n"] for e in evals])
    x["calm gain"] = summarize([e["expansion"]["calm_gain"] for e in evals])
    for k in ("style_where_best", "style_only_where_best"):
        label = k.replace("_", " ")
        x[label] = summarize([e["expansion"][k] if e["expansion"][f"{k}_n"] else 0.0 for e in evals])
        x[label + " n"] = summarize([e["expansion"][f"{k}_n"] for e in evals])
    return methods


def _tables(methods, evals, spec) -> list[dict]:
    a, kw = methods["agent"], methods["agent_keywords"]
    tables = [{"title": "Intent accuracy per field on the held-out paraphrase families",
               "columns": ["field", "intent model (agent)", "keyword rules"],
               "rows": [[f, a[f"intent {f}"], kw[f"intent {f}"]] for f in FIELDS]
               + [["route", a["route accuracy"], kw["route accuracy"]]]},
              {"title": "Final-video quality and task completion (held-out requests)",
               "columns": ["method", "quality", "completion"],
               "rows": [[m, v["quality"], v["completion"]] for m, v in methods.items()]},
              {"title": "Task completion of the agent per (E_T, E_V)", "columns": ["task kind", "requests per seed", "completion"],
               "rows": [[k, n, a[f"completion {k}"]] for k, n in evals[0]["kind_counts"].items()]}]
    names = list(evals[0]["table"]) + [spec["name"]]
    dims = ["flicker", "subject", "background", "dynamic", "smoothness", "alignment", "preservation"]
    rows = []
    for n in names:
        rws = [e["table"][n] if n in e["table"] else e["expansion"]["new_row"] for e in evals]
        rows.append([n + (" (added)" if n == spec["name"] else ""), rws[0]["kind"],
                     *[float(np.mean([r["scores"][d] for r in rws])) if d in rws[0]["scores"] else "-" for d in dims]])
    tables.append({"title": "Capability table (probe suite, mean over seeds)", "columns": ["tool", "kind", *dims], "rows": rows})
    x = methods["agent_expanded"]
    rows = []
    for e in evals:
        for style, v in e["expansion"]["styles"].items():
            rows.append([e["seed"], style, v["steps"], v["oracle"], v["selected"],
                         ", ".join(f"{n} {s:.3f}" for n, s in sorted(v["measured"].items(), key=lambda kv: -kv[1]))])
    tables.append({"title": "Library expansion per request style: measured best i2v tool on the held-out steps vs the "
                            "tool selection picks", "columns": ["seed", "style", "steps", "measured best", "selected",
                                                                  "mean weighted score per tool"], "rows": rows})
    tables.append({"title": "Library expansion: the new tool after self-assessment",
                   "columns": ["quantity", "value"],
                   "rows": [["selected where it is the per-request oracle", x["where best"]],
                            ["steps where it is the oracle (per seed)", x["where best steps"]],
                            ["not selected where another tool is the oracle", x["only where best"]],
                            ["steps where another tool is the oracle (per seed)", x["only where best steps"]],
                            ["styles where it is the measured best (per seed)", x["style where best n"]],
                            ["... and selected there", x["style where best"]],
                            ["styles where another tool is the measured best (per seed)", x["style only where best n"]],
                            ["... and not selected there", x["style only where best"]],
                            ["quality gain on calm requests", x["calm gain"]],
                            ["selection agreement with the oracle (before expansion)", a["selection agreement"]]]})
    return tables


def _plot(out: Path, methods) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(methods)
    means = [methods[m]["quality"]["mean"] for m in names]
    stds = [methods[m]["quality"]["std"] for m in names]
    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=110)
    ax.bar(range(len(names)), means, yerr=stds, color=["C0" if m == "agent" else "C7" for m in names], capsize=2)
    ax.set_xticks(range(len(names)), [m.removeprefix("single:") for m in names], rotation=60, ha="right", fontsize=7)
    ax.set(ylabel="request-weighted quality", title="Final-video quality on held-out requests")
    ax.set_ylim(min(means) - 0.1, 1.0)
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "quality.png")
    plt.close(fig)
    return "plots/quality.png"


def gallery(cfg, lib, out: Path, n: int) -> list[dict]:
    from papers.spagent import scenes
    from papers.spagent.agent import Agent
    from papers.spagent.backends import make_recogniser
    from papers.spagent.runner import run_request

    w = pipeline.world(cfg)
    agent = Agent(lib.tools, lib.table, lib.encoder, w, cfg.planner.extra_steps, cfg.planner.margin)
    recognise = make_recogniser(cfg, lib)
    rows = []
    for k, (text, ev, sc) in enumerate(GALLERY[:n], 1):
        scene = scenes.Scene(**sc) if sc else None
        image = scenes.render(scene, w.size, 1)[0] if ev == "image" else None
        video = scenes.render(scene, w.size, w.frames) if ev == "video" else None
        rec = run_request(agent, recognise, text, image, video, out / f"request{k}", seed=cfg.seed)
        rows.append({"text": text, "dir": f"gallery/request{k}", "route": rec["route"], "tools": rec["tools"],
                     "paragraph": rec["paragraph"]})
    return rows


def reproduce(cfg, ctx) -> Path:

    if int(__import__("os").environ.get("WORLD_SIZE", "1")) > 1:
        raise UserError("reproduce runs in one process: start it with plain python, not a launcher")
    out = new_reproduce_dir(cfg.runs_dir, ctx.slug, ctx.config_name)
    write_run_info(out, cfg)
    spec = new_tool_spec(cfg, ctx.paper_dir)
    train, heldout = pipeline.datasets(cfg)  # the text features are computed once, before the seeds
    pipeline.text_features(cfg, train + heldout)
    jobs = [(cfg, ctx, seed) for seed in cfg.seeds]
    done = run_jobs(seed_job, jobs, min(cfg.experiment.processes, len(jobs)), desc="seeds")
    trains, evals = [d[0] for d in done], [d[1] for d in done]
    libs = [pipeline.Library(Path(trains[0]["run_dir"]), features=pipeline.text_features(cfg, train + heldout))]
    methods = _methods(trains, evals)
    exp = {k: getattr(cfg.experiment, k) for k in ("min_effect", "completion_bar", "selection_bar", "plateau_tol")}
    tables = _tables(methods, evals, spec)
    shots = gallery(cfg, libs[0], out / "gallery", cfg.experiment.gallery)
    if shots:
        tables.append({"title": f"Gallery (seed {cfg.seeds[0]}'s agent)", "columns": ["request", "route", "tools", "files"],
                       "rows": [[g["text"], " → ".join(g["route"]), ", ".join(t or "-" for t in g["tools"]), g["dir"]]
                                for g in shots]})
    (out / "raw.json").write_text(json.dumps({"train": trains, "eval": evals, "gallery": shots}) + "\n")
    res = build_results(
        paper=ctx.slug, title=TITLE, config=ctx.config_name, seeds=cfg.seeds, methods=methods,
        claims=build_claims(methods, exp), protocol_notes=build_notes(methods), tables=tables,
        plots=[_plot(out / "plots", methods)],
        notes=["Procedural tools, requests and metrics built here; numbers are not comparable with the paper's "
               "(which publishes no machine-readable results; papers/spagent/README.md).",
               "Quality is the request-weighted mean of the VBench-style metrics of the final video against the "
               "gold subject; a method that cannot handle a request scores 0 and does not complete it."])
    res["experiment"] = exp
    write_results(out, res)
    mark_done(out)
    return out
