"""python -m papers.copyright_shield {data,train,eval,invert,reproduce,config} --config {smoke,small,paper} [key=value ...]"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from papers.copyright_shield.config import CopyrightShieldConfig
from shared import UserError
from shared.cli import Context, run_cli


def data(cfg: CopyrightShieldConfig, ctx: Context) -> None:
    """Build the targets, poisons and mix of the first seed, the detection, and the cached base model.

    Prints the mix's size and the detectors' F1 per target; the clean base model (tiny) is
    pre-trained once per config and cached, checksummed, under data_dir."""
    from papers.copyright_shield.data import build_world, run_detection
    from papers.copyright_shield.reproduce import prepare

    world = build_world(cfg, cfg.seed)
    det = run_detection(cfg, world)
    poisons = int((world.mix.poison_of >= 0).sum())
    print(f"{len(world.targets)} targets; mix of {len(world.mix.captions)} entries, {poisons} poison entries "
          f"(ratio {poisons / len(world.mix.captions):.3f})")
    for t, row in enumerate(det["per_target"]):
        print(f"target {t}: " + ", ".join(f"{d} F1 {v['f1']:.3f}" for d, v in row.items()))
    prepare(cfg)
    print(f"base model ready under {cfg.data_dir}")


def train(cfg: CopyrightShieldConfig, ctx: Context) -> None:
    """Fine-tune one run name (run=attack|released|differentiable|hinge|flip|rotate|unlinked|clean) for one seed.

    FAE evaluations eval.evals_per_epoch times per epoch, a checkpoint at each, CIR at the
    end; resume=latest continues the newest unfinished run (or reuses a finished one)."""
    from papers.copyright_shield.distributed import is_main
    from papers.copyright_shield.train import fine_tune

    s = fine_tune(cfg, ctx, cfg.run, cfg.seed)
    if is_main():
        print(f"{s['run_dir']}: FAE {s['fae']} CIR {[round(c, 3) for c in s['cir']]}")


def evaluate(cfg: CopyrightShieldConfig, ctx: Context) -> None:
    """Print the FAE / CIR / detection summary of the newest finished run of run= and seed=."""
    from shared.runs import is_done, method_dir

    parent = method_dir(cfg.runs_dir, ctx.slug, ctx.config_name, cfg.run)
    done = sorted(p for p in parent.glob(f"seed{cfg.seed}-*") if is_done(p)) if parent.exists() else []
    if cfg.resume not in ("", "latest"):
        done = [Path(cfg.resume)] if is_done(Path(cfg.resume)) else []
    if not done:
        raise UserError(f"no finished run of run={cfg.run} seed={cfg.seed} under {parent}; train it first")
    summary = json.loads((done[-1] / "summary.json").read_text())
    print(f"{done[-1]}: FAE {summary['fae']} CIR {[round(c, 3) for c in summary['cir']]}")
    for t, row in enumerate(summary.get("detection", [])):
        print(f"target {t}: " + ", ".join(f"{d} F1 {v['f1']:.3f}" for d, v in row.items()))


def invert(cfg: CopyrightShieldConfig, ctx: Context) -> None:
    """Copyright feature inversion [recon] on the newest finished run of run= and seed=."""
    from papers.copyright_shield.inversion import invert_run
    from shared.runs import is_done, method_dir

    parent = method_dir(cfg.runs_dir, ctx.slug, ctx.config_name, cfg.run)
    done = sorted(p for p in parent.glob(f"seed{cfg.seed}-*") if is_done(p)) if parent.exists() else []
    if not done:
        raise UserError(f"no finished run of run={cfg.run} seed={cfg.seed} under {parent}; train it first")
    out = invert_run(cfg, done[-1], cfg.seed)
    print(" | ".join(out["table"]["columns"]))
    for row in out["table"]["rows"]:
        print(" | ".join(str(v) for v in row))


def reproduce(cfg: CopyrightShieldConfig, ctx: Context) -> None:
    """Every run name × seed, the inversion, then results.json, RESULTS.md, plots and grids."""
    from papers.copyright_shield.reproduce import reproduce as run

    run(cfg, ctx)


COMMANDS = {"data": data, "train": train, "eval": evaluate, "invert": invert, "reproduce": reproduce}


def main(argv: list[str] | None = None) -> int:
    """The command line (also called in-process by the tests)."""
    return run_cli("copyright_shield", CopyrightShieldConfig, COMMANDS, Path(__file__).parent, argv)


if __name__ == "__main__":
    sys.exit(main())
