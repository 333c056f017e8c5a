"""python -m papers.prompt_diffuser {data,train,eval,reproduce} --config {smoke,small,paper} [key=value ...]"""

from __future__ import annotations

import sys
from pathlib import Path

from papers.prompt_diffuser.config import PromptDiffuserConfig
from shared.cli import Context, run_cli


def data(cfg: PromptDiffuserConfig, ctx: Context) -> None:
    """Generate (or verify) every ML1 buffer the config uses and write the dataset report."""
    from papers.prompt_diffuser.reproduce import prepare_data

    out = Path(cfg.data_dir) / "prompt_diffuser-report" / ctx.config_name
    print(prepare_data(cfg, out)[1])
    print(f"dataset report: {out}")


def train(cfg: PromptDiffuserConfig, ctx: Context) -> None:
    """Pre-train Prompt-DT on the training goals (seed `seed`), then tune `method` with the
    `init_quality` demonstrations on the held-out goals; resume=latest continues both runs."""
    from papers.prompt_diffuser.reproduce import train_one

    s = train_one(cfg, ctx)
    if s is None:  # a launcher's other process: the main one reports
        return
    print(f"{s['run_dir']}: held-out return {s['heldout']['return']:.1f}, "
          f"success {s['heldout']['success']:.3f}")


def evaluate(cfg: PromptDiffuserConfig, ctx: Context) -> None:
    """Re-evaluate the newest finished run of `method` (seed `seed`) from its checkpoint."""
    from papers.prompt_diffuser.reproduce import evaluate_latest

    out = evaluate_latest(cfg, ctx)
    print(f"{out['run_dir']}: held-out return {out['return']:.1f}, success {out['success']:.3f}")


def reproduce(cfg: PromptDiffuserConfig, ctx: Context) -> None:
    from papers.prompt_diffuser.reproduce import reproduce as run

    run(cfg, ctx)


COMMANDS = {"data": data, "train": train, "eval": evaluate, "reproduce": reproduce}


def main(argv: list[str] | None = None) -> int:
    """The command line (also called in-process by the tests)."""
    return run_cli("prompt_diffuser", PromptDiffuserConfig, COMMANDS, Path(__file__).parent, argv)


if __name__ == "__main__":
    sys.exit(main())
