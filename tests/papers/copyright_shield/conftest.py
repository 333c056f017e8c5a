"""Shared tiny fixtures: the smoke config, a tiny backbone, one finished smoke run."""

import pytest
import torch

from papers.copyright_shield.config import CopyrightShieldConfig
from shared.config import load_config

PAPER_DIR = __import__("pathlib").Path(__file__).resolve().parents[3] / "papers" / "copyright_shield"


def smoke_config(tmp, *overrides: str) -> CopyrightShieldConfig:
    return load_config(CopyrightShieldConfig, PAPER_DIR / "configs", "smoke",
                       [f"runs_dir={tmp}/runs", f"data_dir={tmp}/data", "wandb=false", *overrides])


@pytest.fixture(scope="session")
def tiny_backbone():
    from papers.copyright_shield.model import new_backbone

    cfg = load_config(CopyrightShieldConfig, PAPER_DIR / "configs", "smoke", [])
    torch.manual_seed(0)
    return new_backbone(cfg)
