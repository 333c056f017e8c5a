"""Test environment: offline, no wandb unless a test asks for it, no progress bars."""

import os
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["WANDB_MODE"] = "disabled"
os.environ["WANDB_SILENT"] = "true"
os.environ["REPRO_PROGRESS"] = "0"
os.environ["MPLBACKEND"] = "Agg"

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def repo_root() -> Path:
    return REPO


def run_main(slug: str, argv: list[str]) -> tuple[int, str, str]:
    """Run `python -m papers.<slug> <argv>` in this process: (exit code, stdout, stderr)."""
    import contextlib
    import importlib
    import io

    main = importlib.import_module(f"papers.{slug}.__main__").main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse's own exits
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def cli():
    """`cli(slug, *argv)` runs a paper's command line in-process: (code, stdout, stderr)."""
    return lambda slug, *argv: run_main(slug, list(argv))


@pytest.fixture
def one_line_error(tmp_path):
    """Run `python -m papers.<slug> <command> --config smoke <args>` in-process; assert it exits
    2 with a single `error:` line and return that line."""

    def run(slug: str, command: str, args: list[str]) -> str:
        extra = [f"{key}={tmp_path}/{key}" for key in ("runs_dir", "data_dir")
                 if not any(a.startswith(f"{key}=") for a in args)]
        code, _, err = run_main(slug, [command, "--config", "smoke", *extra, *args])
        assert code == 2, err[-1500:]
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:"), err
        return lines[0]

    return run
