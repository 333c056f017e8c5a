"""The command-line contract every paper follows:

    python -m papers.<slug> {data,train,eval,reproduce} --config {smoke,small,paper} [key=value ...]

Errors the user can cause (`UserError`) print one line and exit with code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared import UserError
from shared.config import load_config
from shared.device import close_distributed

COMMANDS = ("data", "train", "eval", "reproduce")


@dataclass
class Context:
    """What a command needs besides the config: which paper and which named config."""

    slug: str
    config_name: str
    overrides: list[str]
    paper_dir: Path


def run_cli(
    slug: str, schema: type, commands: dict[str, Callable[[Any, Context], Any]],
    paper_dir: str | Path, argv: list[str] | None = None,
) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the offline policy: nothing downloads
    paper_dir = Path(paper_dir)
    parser = argparse.ArgumentParser(prog=f"python -m papers.{slug}")
    parser.add_argument("command", choices=[c for c in COMMANDS if c in commands])
    parser.add_argument("--config", default="small",
                        help="a file in papers/<slug>/configs/ (smoke, small, paper)")
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    args = parser.parse_intermixed_args(argv)
    try:
        cfg = load_config(schema, paper_dir / "configs", args.config, args.overrides)
        ctx = Context(slug, args.config, list(args.overrides), paper_dir)
        commands[args.command](cfg, ctx)
    except UserError as exc:
        close_distributed(wait=False)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        close_distributed(wait=False)
        print("interrupted; rerun with resume=latest to continue", file=sys.stderr)
        return 130
    close_distributed()
    return 0
