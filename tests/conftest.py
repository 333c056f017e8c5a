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


@pytest.fixture
def one_line_error(repo_root):
    """Run `python -m papers.<slug> <command> --config smoke <args>`; assert it exits 2 with a
    single `error:` line and return that line."""
    import subprocess
    import sys

    def run(slug: str, command: str, args: list[str]) -> str:
        proc = subprocess.run([sys.executable, "-m", f"papers.{slug}", command, "--config", "smoke", *args],
                              cwd=repo_root, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, proc.stderr[-1500:]
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
        return lines[0]

    return run
