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
