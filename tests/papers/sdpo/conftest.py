from pathlib import Path

import pytest

import papers.sdpo
from papers.sdpo.config import SDPOExperimentConfig
from shared.cli import Context
from shared.config import load_config

PAPER_DIR = Path(papers.sdpo.__file__).parent
CTX = Context("sdpo", "smoke", [], PAPER_DIR)


def smoke_config(root: Path, *extra: str) -> SDPOExperimentConfig:
    return load_config(SDPOExperimentConfig, PAPER_DIR / "configs", "smoke",
                       [f"runs_dir={root / 'runs'}", f"data_dir={root / 'data'}", "wandb=false", *extra])


@pytest.fixture(scope="session")
def smoke_data_dir(tmp_path_factory):
    """One cached smoke base model and scorer shared by the training tests."""
    return tmp_path_factory.mktemp("sdpo-data")


@pytest.fixture
def make_cfg(smoke_data_dir):
    """smoke config under a given root, on the session's shared base/reward cache."""
    return lambda root, *extra: smoke_config(root, f"data_dir={smoke_data_dir}", *extra)
