"""The command-line contract every paper follows:

    python -m papers.<slug> {data,train,eval,reproduce} --config {smoke,small,paper} [key=value ...]

Errors the user can cause (`UserError`) print one line and exit with code 2.
"""

from __future__ import annotations

import argparse
import inspect
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared import UserError
from shared.config import config_label, describe, load_config
from shared.device import close_distributed

COMMANDS = ("data", "train", "eval", "reproduce")


@dataclass
class Context:
    """What a command needs besides the config: which paper and which named config."""

    slug: str
    config_name: str
    overrides: list[str]
    paper_dir: Path


class _Parser(argparse.ArgumentParser):
    """argparse that reports a mistake as one `error:` line and exit code 2 (no usage dump)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


# What a standard command does when the paper's function has no docstring of its own.
DEFAULT_DOCS = {
    "data": "Generate (or verify) the datasets the config uses.",
    "train": "Train the configured method for each seed; resume=latest continues a run.",
    "eval": "Evaluate a finished training run and print its metrics.",
    "reproduce": "Run everything the results table needs (data, every method and seed, "
                 "evaluation) and write results.json, RESULTS.md and plots.",
}


def _doc(name: str, fn: Callable) -> str:
    return inspect.cleandoc(fn.__doc__ or "") or DEFAULT_DOCS.get(name, "")


def _first_line(name: str, fn: Callable) -> str:
    doc = _doc(name, fn).splitlines()
    return doc[0] if doc else ""


def check_dir(key: str, value: str) -> Path:
    """A directory the run writes to must be (or become) a writable directory. A relative
    path is created with its parents (it lies under the working directory); an absolute one
    only when its parent exists, so a typo in a path is caught. A mistake is a UserError."""
    path = Path(value).expanduser()
    if path.exists() and not path.is_dir():
        raise UserError(f"config key '{key}': {value} exists and is not a directory")
    if not path.exists():
        if path.is_absolute() and not path.parent.is_dir():
            raise UserError(f"config key '{key}': {value} cannot be created: its parent "
                            f"{path.parent} does not exist or is not a directory")
        blocker = next((a for a in path.parents if a.exists() and not a.is_dir()), None)
        if blocker is not None:
            raise UserError(f"config key '{key}': {value} cannot be created: {blocker} is a file")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"config key '{key}': cannot create {value}: {exc.strerror}") from None
    try:
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise UserError(f"config key '{key}': {value} is not writable: {exc.strerror}") from None
    return path


def _config_command(cfg: Any, ctx: Context) -> None:
    """Print the resolved config: every field with its doc and allowed range."""
    print(f"# python -m papers.{ctx.slug} config --config {ctx.config_name} "
          + " ".join(ctx.overrides))
    print("\n".join(describe(cfg)))


def run_cli(
    slug: str, schema: type, commands: dict[str, Callable[[Any, Context], Any]],
    paper_dir: str | Path, argv: list[str] | None = None,
) -> int:
    """`python -m papers.<slug> <command> [--config NAME|PATH] [key=value ...]`.

    `--help` lists the commands (each with the first line of its docstring); `<command>
    --help` describes one; `config` prints the resolved config with docs and ranges."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the offline policy: nothing downloads
    paper_dir = Path(paper_dir)
    argv = list(sys.argv[1:] if argv is None else argv)
    table = {name: commands[name] for name in COMMANDS if name in commands}
    table.update({k: v for k, v in commands.items() if k not in table})
    table["config"] = _config_command
    prog = f"python -m papers.{slug}"
    width = max(map(len, table))
    listing = "\n".join(f"  {name:<{width}}  {_first_line(name, fn)}" for name, fn in table.items())
    usage = (f"usage: {prog} <command> [--config smoke|small|paper|FILE.yaml] [key=value ...]\n\n"
             f"commands:\n{listing}\n\n"
             f"`{prog} <command> --help` describes a command; `{prog} config --config small` "
             "prints every config field with its doc and range.")
    try:
        if not argv or argv[0] in ("-h", "--help"):
            print(usage, file=sys.stdout if argv else sys.stderr)
            return 0 if argv else 2
        name = argv[0]
        if name not in table:
            print(f"error: unknown command '{name}' (choose from: {', '.join(table)}; see "
                  f"{prog} --help)", file=sys.stderr)
            return 2
        fn = table[name]
        parser = _Parser(prog=f"{prog} {name}", description=_doc(name, fn) or None,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
        parser.add_argument("--config", default="small",
                            help="a name in papers/<slug>/configs/ (smoke, small, paper) or a "
                                 "path to a .yaml file; runs are filed under its name")
        parser.add_argument("overrides", nargs="*", metavar="key=value",
                            help="config overrides, nested keys dotted (train.lr=0.05)")
        args = parser.parse_intermixed_args(argv[1:])
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        cfg = load_config(schema, paper_dir / "configs", args.config, args.overrides)
        ctx = Context(slug, config_label(args.config), list(args.overrides), paper_dir)
        if name != "config":
            check_dir("runs_dir", cfg.runs_dir)
            check_dir("data_dir", cfg.data_dir)
        fn(cfg, ctx)
    except UserError as exc:
        close_distributed(wait=False)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        close_distributed(wait=False)
        print("interrupted; rerun with resume=latest to continue", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `... | head`: the reader went away; stop quietly
        close_distributed(wait=False)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    close_distributed()
    return 0
