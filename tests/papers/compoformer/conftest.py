from pathlib import Path

import pytest
import torch

import papers.compoformer
from papers.compoformer.config import CompoFormerConfig
from shared.config import load_config

PAPER_DIR = Path(papers.compoformer.__file__).parent


def smoke_config(root: Path, *extra: str) -> CompoFormerConfig:
    return load_config(CompoFormerConfig, PAPER_DIR / "configs", "smoke",
                       [f"runs_dir={root / 'runs'}", f"data_dir={root / 'data'}", "wandb=false",
                        "data.workers=1", *extra])


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def smoke_data_dir(tmp_path_factory):
    """One generated smoke dataset shared by every test (generation is cached)."""
    return tmp_path_factory.mktemp("compoformer-data")


@pytest.fixture
def make_cfg(smoke_data_dir):
    return lambda root, *extra: smoke_config(root, f"data_dir={smoke_data_dir}", *extra)
