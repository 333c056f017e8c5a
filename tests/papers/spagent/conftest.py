"""Session fixtures: one smoke reproduce (its trained agents are the library of the CLI tests)."""

import json
from pathlib import Path

import pytest

from tests.conftest import run_main


@pytest.fixture(scope="session")
def smoke(tmp_path_factory):
    """(runs dir, results dict, reproduce dir) of one `reproduce --config smoke`."""
    root = tmp_path_factory.mktemp("spagent")
    code, out, err = run_main("spagent", ["reproduce", "--config", "smoke", f"runs_dir={root}/runs",
                                          f"data_dir={root}/data", "wandb=false"])
    assert code == 0, err[-2000:]
    results = sorted((root / "runs" / "spagent" / "smoke" / "reproduce").glob("*/results.json"))
    assert len(results) == 1
    return root, json.loads(results[0].read_text()), results[0].parent


@pytest.fixture(scope="session")
def library(smoke):
    from papers.spagent.pipeline import Library

    root = smoke[0]
    dirs = sorted((root / "runs" / "spagent" / "smoke" / "agent").glob("seed0-*"))
    assert len(dirs) == 1
    return Library(Path(dirs[0]))
