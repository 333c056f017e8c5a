"""python -m papers.spagent {data,train,eval,reproduce,run,add-tool,config} --config {smoke,small,paper} [key=value ...]

    python -m papers.spagent run "make the red parrot green and let it fly" --image parrot.png [--out DIR]
    python -m papers.spagent add-tool papers/spagent/tools/i2v_steady.yaml
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from papers.spagent.config import SpagentConfig
from shared import UserError
from shared.cli import Context, run_cli

SLUG = "spagent"
_REQUEST: dict = {}  # what `run` / `add-tool` take besides the config (set by `main`)


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


def data(cfg: SpagentConfig, ctx: Context) -> None:
    """Build the annotated request dataset and cache its text features (under data_dir)."""
    from papers.spagent import intents, pipeline

    train, heldout = pipeline.datasets(cfg)
    pipeline.text_features(cfg, train + heldout)
    print(f"{len(train)} training requests ({len(intents.family_ids('train'))} families), {len(heldout)} held-out "
          f"({len(intents.family_ids('heldout'))} families); text features: {cfg.data.text_features}")


def train(cfg: SpagentConfig, ctx: Context) -> None:
    """Train the agent of `seed`: encoder, intent model, and the probed capability table.

    One run directory runs_dir/spagent/<config>/agent/seed<k>-<stamp>/ (the agent's library);
    resume=latest reuses a finished one. Under torchrun / accelerate launch the main process
    trains and the others wait (the agent is small: one process trains it)."""
    from papers.spagent import pipeline

    if _rank() != 0:
        return
    r = pipeline.train_seed(cfg, ctx, cfg.seed)
    print(f"agent seed {cfg.seed}: {r['run_dir']}; encoder zero-shot {r['zero_shot']:.3f}")


def evaluate(cfg: SpagentConfig, ctx: Context) -> None:
    """Evaluate the newest trained agent of `seed` (or library=DIR) on the held-out requests."""
    from papers.spagent import pipeline
    from papers.spagent.reproduce import eval_seed, new_tool_spec

    path = pipeline.find_library(cfg, ctx)
    if path is None:
        raise UserError(f"no trained agent of config {ctx.config_name} and seed {cfg.seed} under {cfg.runs_dir}; "
                        f"run `python -m papers.spagent train --config {ctx.config_name}` first")
    lib = pipeline.Library(path)
    _, heldout = pipeline.datasets(cfg)
    r = eval_seed(cfg, ctx, cfg.seed, lib, heldout, new_tool_spec(cfg, ctx.paper_dir))
    print(json.dumps({k: r[k] for k in ("intent", "route_accuracy", "selection_agreement", "completion_by_kind")}))
    print("quality: " + ", ".join(f"{m} {v['quality']:.3f}" for m, v in r["methods"].items()))


def reproduce(cfg: SpagentConfig, ctx: Context) -> None:
    """Every seed: train the agent, evaluate it and every baseline, expand the library; then
    results.json, RESULTS.md, plots and the gallery."""
    from papers.spagent.reproduce import reproduce as run

    run(cfg, ctx)


def _library(cfg, ctx):
    from papers.spagent import pipeline

    path = pipeline.find_library(cfg, ctx)
    if path is None:
        print(f"no trained agent of config {ctx.config_name} and seed {cfg.seed} yet: training one", file=sys.stderr,
              flush=True)
        path = Path(pipeline.train_seed(cfg, ctx, cfg.seed)["run_dir"])
    return pipeline.Library(path)


def run(cfg: SpagentConfig, ctx: Context) -> None:
    """Run one request: `run "TEXT" [--image FILE | --video FILE] [--out DIR]`.

    Writes plan.json (intent, candidate routes, chosen route and tools, why), plan.txt (one
    paragraph), every intermediate output, final.gif and contact.png. Uses the newest trained
    agent of the config and seed (library=DIR for another); trains one when there is none."""
    from papers.spagent import media
    from papers.spagent.agent import Agent
    from papers.spagent.backends import make_recogniser
    from papers.spagent.pipeline import world
    from papers.spagent.runner import run_request
    from shared.runs import new_run_dir

    text = (_REQUEST.get("text") or "").strip()
    if not text:
        raise UserError('the request has no text: run "TEXT" [--image FILE | --video FILE]')
    if _REQUEST.get("image") and _REQUEST.get("video"):
        raise UserError("give --image or --video, not both")
    w = world(cfg)
    image = media.read_image(_REQUEST["image"], w.size) if _REQUEST.get("image") else None
    video = media.read_video(_REQUEST["video"], w.size) if _REQUEST.get("video") else None
    if video is not None:
        video = video[:w.frames]
    lib = _library(cfg, ctx)
    agent = Agent(lib.tools, lib.table, lib.encoder, w, cfg.planner.extra_steps, cfg.planner.margin)
    out = Path(_REQUEST["out"]) if _REQUEST.get("out") else new_run_dir(cfg.runs_dir, SLUG, ctx.config_name, "run", cfg.seed)
    rec = run_request(agent, make_recogniser(cfg, lib), text, image, video, out, seed=cfg.seed)
    print(rec["paragraph"])
    print(f"wrote {out}/plan.json, final.gif, contact.png")


def add_tool(cfg: SpagentConfig, ctx: Context) -> None:
    """Assess a new tool and add it to the library: `add-tool SPEC.yaml`.

    Runs the fixed probe suite through the tool, scores it with the metrics, inserts its row
    into the capability table of the newest trained agent (library=DIR for another); from then
    on selection uses it where its weighted capability is the highest."""
    from papers.spagent import capabilities
    from papers.spagent.pipeline import world
    from papers.spagent.reproduce import read_spec
    from papers.spagent.tools import build_tool

    if not _REQUEST.get("spec"):
        raise UserError("add-tool needs a tool spec file: add-tool SPEC.yaml")
    spec = read_spec(Path(_REQUEST["spec"]))
    lib = _library(cfg, ctx)
    if spec["name"] in lib.table:
        raise UserError(f"a tool named {spec['name']} is already in the library {lib.path}")
    tool = build_tool(spec)
    p = cfg.planner
    row = {"kind": tool.kind, "scores": capabilities.assess(tool, lib.encoder, p.probes, p.probe_seed, world(cfg),
                                                             cfg.video.flow_scale)}
    lib.add(tool, row)
    wins = [s for s, wts in capabilities.STYLE_WEIGHTS.items()
            if capabilities.select(tool.kind, wts, lib.table)[0] == tool.name]
    print(f"added {tool.name} ({tool.kind}) to {lib.path}: " + ", ".join(f"{d} {v:.3f}" for d, v in row["scores"].items()))
    print(f"selected for {tool.kind} steps of {', '.join(wins) + ' requests' if wins else 'no request style'}")


COMMANDS = {"data": data, "train": train, "eval": evaluate, "reproduce": reproduce, "run": run, "add-tool": add_tool}


def _split(argv: list[str]) -> list[str]:
    """Take `run`'s text, --image/--video/--out and `add-tool`'s spec out of argv."""
    _REQUEST.clear()
    if not argv or argv[0] not in ("run", "add-tool") or any(a in ("-h", "--help") for a in argv[1:]):
        return argv
    rest, i = [argv[0]], 1
    while i < len(argv):
        a = argv[i]
        if a in ("--image", "--video", "--out"):
            if i + 1 >= len(argv):
                raise UserError(f"{a} needs a value")
            _REQUEST[a[2:]] = argv[i + 1]
            i += 2
            continue
        if a.startswith(("--image=", "--video=", "--out=")):
            key, value = a[2:].split("=", 1)
            _REQUEST[key] = value
        elif a == "--config":
            rest += argv[i:i + 2]
            i += 2
            continue
        elif "=" in a and not a.startswith("-") and " " not in a.split("=", 1)[0]:
            rest.append(a)
        elif a.startswith("-"):
            rest.append(a)
        else:
            key = "text" if argv[0] == "run" else "spec"
            if key in _REQUEST:
                raise UserError(f"{argv[0]} takes one {'request text (quote it)' if key == 'text' else 'spec file'}")
            _REQUEST[key] = a
        i += 1
    return rest


def main(argv: list[str] | None = None) -> int:
    """The command line (also called in-process by the tests)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        argv = _split(argv)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return run_cli(SLUG, SpagentConfig, COMMANDS, Path(__file__).parent, argv)


if __name__ == "__main__":
    sys.exit(main())
