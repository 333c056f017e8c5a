"""Building the agent for one seed: the request datasets (cached text features), the encoder,
the intent model and the capability table, all in one run directory that is also the
agent's *library* (`run` and `add-tool` read it)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from papers.spagent import capabilities, intents
from papers.spagent import encoder as enc
from papers.spagent.intent_model import IntentModel, IntentNet, TextFeatures, train_intent_model
from papers.spagent.tools import LIBRARY, Video, build_tool
from shared import UserError
from shared.checkpoint import CheckpointError, latest_checkpoint, load_checkpoint, save_checkpoint
from shared.results import plateau_change
from shared.runs import finish_run, method_dir, open_run
from shared.tracking import Tracker

SLUG = "spagent"
RELEVANT = ("video.", "data.", "encoder.", "intent.", "planner.")
TABLE, SPECS = "capabilities.json", "tools.json"


def world(cfg) -> Video:
    return Video(cfg.video.size, cfg.video.frames)


def datasets(cfg) -> tuple[list, list]:
    d = cfg.data
    return intents.build("train", d.train_requests, d.data_seed), intents.build("heldout", d.heldout_requests, d.data_seed)


def text_features(cfg, requests: list) -> TextFeatures:
    """The frozen features of every request text, cached under data_dir (npz, by content)."""
    feats = TextFeatures(cfg.data.text_features)
    texts = sorted({r.text for r in requests})
    key = intents.digest(requests)
    path = Path(cfg.data_dir) / SLUG / f"text-{cfg.data.text_features}-{key}.npz"
    if path.exists():
        try:
            z = np.load(path, allow_pickle=False)
            vectors = z["vectors"]
            cache = {str(t): vectors[a:b] for t, a, b in zip(z["texts"], z["starts"], z["ends"])}
            if set(cache) >= set(texts):
                feats.seed_cache(cache)
                return feats
        except (OSError, ValueError, KeyError):
            print(f"warning: text feature cache {path} is unreadable; rebuilding it", flush=True)
    arrays = feats(texts)
    ends = np.cumsum([len(a) for a in arrays])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}.npz")
    np.savez(tmp, texts=np.array(texts), vectors=np.concatenate(arrays), starts=ends - [len(a) for a in arrays], ends=ends)
    os.replace(tmp, path)
    return feats


def _curve(losses: list[float], bins: int = 10) -> list[float]:
    chunks = np.array_split(np.asarray(losses, float), min(bins, len(losses)))
    return [float(c.mean()) for c in chunks]


def train_seed(cfg, ctx, seed: int) -> dict:
    """Train (or reuse) the agent of one seed; returns its result (paths, curves, accuracy)."""
    run_dir, done = open_run(cfg, SLUG, ctx.config_name, "agent", seed, RELEVANT)
    if done is not None:
        return done
    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1") or 1)))
    train, heldout = datasets(cfg)
    feats = text_features(cfg, train + heldout)
    e = cfg.encoder
    with Tracker(run_dir, slug=SLUG, group=f"{ctx.config_name}/agent", name=f"seed{seed}",
                 use_wandb=cfg.wandb) as tracker:
        def log_enc(step, loss):
            if step % 25 == 0 or step == e.steps - 1:
                tracker.log({"encoder/loss": loss}, step)

        model, enc_losses = enc.train_encoder(e.steps, e.batch, e.lr, cfg.video.size, seed, e.width, e.dim, log_enc)
        zs = enc.zero_shot_accuracy(model, e.zero_shot_eval, cfg.video.size, seed)
        net, int_losses = train_intent_model(train, feats, cfg.intent.steps, cfg.intent.lr, cfg.intent.hidden, seed)
        for i in range(0, len(int_losses), 25):
            tracker.log({"intent/loss": int_losses[i]}, e.steps + i)
        tools = [build_tool(s) for s in library_specs(cfg, ctx.paper_dir)]
        p = cfg.planner
        table = capabilities.measure(tools, model, p.probes, p.probe_seed, world(cfg), cfg.video.flow_scale)
        tracker.summary({"encoder/zero_shot": zs})
    tensors = {**{f"encoder.{k}": v for k, v in model.state_dict().items()},
               **{f"intent.{k}": v for k, v in net.state_dict().items()}}
    save_checkpoint(run_dir / "checkpoints", 1, tensors,
                    {"width": e.width, "dim": e.dim, "feat_dim": feats.dim, "hidden": cfg.intent.hidden,
                     "text_features": cfg.data.text_features})
    (run_dir / TABLE).write_text(json.dumps(table, indent=1) + "\n")
    (run_dir / SPECS).write_text(json.dumps([t.spec() for t in tools], indent=1) + "\n")
    result = {"seed": seed, "run_dir": str(run_dir), "zero_shot": zs,
              "encoder_curve": _curve(enc_losses), "intent_curve": _curve(int_losses),
              "encoder_plateau": plateau_change(_curve(enc_losses)) / max(1e-9, enc_losses[0] - min(enc_losses)),
              "intent_plateau": plateau_change(_curve(int_losses)) / max(1e-9, int_losses[0] - min(int_losses))}
    return finish_run(run_dir, result)


def library_specs(cfg, paper_dir: Path) -> list[dict]:
    """The procedural library, or cfg.library_file's specs (diffusers paths under weights_dir)."""
    if not cfg.library_file:
        return LIBRARY
    import yaml

    from papers.spagent.tools import check_spec

    path = Path(cfg.library_file)
    path = path if path.is_absolute() or path.exists() else Path(paper_dir) / path
    if not path.is_file():
        raise UserError(f"library_file={cfg.library_file}: no such file")
    try:
        specs = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise UserError(f"library_file={path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(specs, list) or not specs:
        raise UserError(f"library_file={path}: must be a non-empty list of tool specs")
    out = []
    for i, spec in enumerate(specs):
        spec = check_spec(spec, f"library_file={path} entry {i + 1}")
        if spec["family"] == "diffusers":
            spec["path"] = str(Path(cfg.weights_dir) / spec.get("path", ""))
        out.append(spec)
    return out


class Library:
    """A trained agent's library directory: encoder, intent model, tools, capability table."""

    def __init__(self, path: Path, features: TextFeatures | None = None):
        self.path = Path(path)
        for name in (TABLE, SPECS):
            if not (self.path / name).is_file():
                raise UserError(f"library {self.path}: {name} is missing (not a trained agent's run directory)")
        ckpt = latest_checkpoint(self.path / "checkpoints")
        if ckpt is None:
            raise UserError(f"library {self.path}: no checkpoint (train the agent first)")
        try:
            tensors, state = load_checkpoint(ckpt)
            self.table = json.loads((self.path / TABLE).read_text())
            self.specs = json.loads((self.path / SPECS).read_text())
        except (CheckpointError, json.JSONDecodeError) as exc:
            raise UserError(f"library {self.path}: {str(exc).splitlines()[0]}") from None
        self.encoder = enc.Encoder(int(state["width"]), int(state["dim"]))
        self.encoder.load_state_dict({k[8:]: v for k, v in tensors.items() if k.startswith("encoder.")})
        self.net = IntentNet(int(state["feat_dim"]), int(state["hidden"]))
        self.net.load_state_dict({k[7:]: v for k, v in tensors.items() if k.startswith("intent.")})
        self.features = features or TextFeatures(str(state["text_features"]))
        self.tools = [build_tool(s) for s in self.specs]

    def intent_model(self) -> IntentModel:
        return IntentModel(self.net, self.features, self.encoder)

    def add(self, tool, row: dict) -> None:
        """Insert one row and its spec (atomically: both files rewritten by rename)."""
        self.table[tool.name] = row
        self.specs.append(tool.spec())
        self.tools.append(tool)
        for name, data in ((TABLE, self.table), (SPECS, self.specs)):
            tmp = self.path / f".{name}.tmp"
            tmp.write_text(json.dumps(data, indent=1) + "\n")
            os.replace(tmp, self.path / name)


def find_library(cfg, ctx) -> Path:
    """cfg.library, or the newest finished agent of this config and seed (None when none)."""
    if cfg.library:
        path = Path(cfg.library)
        if not path.is_dir():
            raise UserError(f"library={cfg.library}: no such directory")
        return path
    parent = method_dir(cfg.runs_dir, SLUG, ctx.config_name, "agent")
    done = sorted(p for p in parent.glob(f"seed{cfg.seed}-*") if (p / "DONE").exists()) if parent.exists() else []
    return done[-1] if done else None
