import json
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
    """One cached smoke base model and scorer shared by every sdpo test that trains."""
    return tmp_path_factory.mktemp("sdpo-data")


@pytest.fixture
def make_cfg(smoke_data_dir):
    """smoke config under a given root, on the session's shared base/reward cache."""
    return lambda root, *extra: smoke_config(root, f"data_dir={smoke_data_dir}", *extra)


def reproduce_smoke(root: Path, data_dir: Path, *extra: str) -> tuple[Path, dict]:
    """`python -m papers.sdpo reproduce --config smoke` in this process: (output dir, results)."""
    from papers.sdpo.__main__ import main

    argv = ["reproduce", "--config", "smoke", f"runs_dir={root}", f"data_dir={data_dir}", "wandb=false", *extra]
    assert main(argv) == 0
    outs = sorted((root / "sdpo" / "smoke" / "reproduce").iterdir())
    return outs[-1], json.loads((outs[-1] / "results.json").read_text())


@pytest.fixture(scope="session")
def smoke_reproduce(tmp_path_factory, smoke_data_dir):
    """The smoke reproduce, run once per session on the shared base model: (runs root, data
    dir, output dir, results). Its runs are the one-process reference of other tests."""
    root = tmp_path_factory.mktemp("sdpo-runs")
    return root, smoke_data_dir, *reproduce_smoke(root, smoke_data_dir)


@pytest.fixture(scope="session")
def run_reproduce():
    """`run_reproduce(root, data_dir, *overrides)`: another in-process smoke reproduce."""
    return reproduce_smoke
