from pathlib import Path

import pytest

import papers.harmodt
from papers.harmodt.config import HarmoDTConfig
from shared.config import load_config

PAPER_DIR = Path(papers.harmodt.__file__).parent


def smoke_config(root: Path, *extra: str) -> HarmoDTConfig:
    return load_config(HarmoDTConfig, PAPER_DIR / "configs", "smoke",
                       [f"runs_dir={root / 'runs'}", f"data_dir={root / 'data'}", "wandb=false",
                        "data.workers=1", *extra])


@pytest.fixture(scope="session")
def smoke_data_dir(tmp_path_factory):
    """One generated smoke dataset shared by the training tests (generation is cached)."""
    return tmp_path_factory.mktemp("harmodt-data")


@pytest.fixture
def make_cfg(smoke_data_dir):
    """smoke config under a given root, on the session's shared smoke data."""
    return lambda root, *extra: smoke_config(root, f"data_dir={smoke_data_dir}", *extra)
