"""End to end: `reproduce --config smoke` writes results, tables and plots; the same seed
gives identical numbers; `resume=latest` reuses finished runs."""

import json
from pathlib import Path

import pytest

import papers.fwa
from papers.fwa import claims
from papers.fwa.__main__ import COMMANDS
from papers.fwa.config import FWAConfig
from shared.cli import run_cli
from shared.config import load_config
from shared.results import VERDICTS, render_markdown, validate

PAPER_DIR = Path(papers.fwa.__file__).parent


def _reproduce(root, *extra):
    argv = ["reproduce", "--config", "smoke", f"runs_dir={root}", f"data_dir={root}/data",
            "wandb=false", *extra]
    assert run_cli("fwa", FWAConfig, COMMANDS, PAPER_DIR, argv) == 0
    outs = sorted((root / "fwa" / "smoke" / "reproduce").iterdir())
    return outs[-1], json.loads((outs[-1] / "results.json").read_text())


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return root, *_reproduce(root)


def test_smoke_reproduce_writes_results_markdown_and_plots(first_run):
    _, out, results = first_run
    assert (out / "RESULTS.md").read_text().startswith("# A Unified Analysis for Finite Weight")
    assert results["paper"] == "fwa" and results["config"] == "smoke" and results["seeds"] == [0, 1]
    assert {"sgd", "fwa2", "lawa2", "lawa3", "swa", "ema"} <= set(results["methods"])
    assert len(results["claims"]) >= 9
    assert all(c["verdict"] in VERDICTS for c in results["claims"])
    validate(results)
    titles = [t["title"] for t in results["tables"]]
    for prefix in (claims.CONVEX_CURVES, claims.CONVEX_DIAGNOSTICS, claims.STABILITY_CURVES,
                   claims.STABILITY_CONSTANTS, claims.NONCONVEX_CURVES):
        assert any(t.startswith(prefix) for t in titles), prefix
    assert len(results["plots"]) >= 7
    for plot in results["plots"]:
        assert (out / plot).read_bytes()[:4] == b"\x89PNG"
    sgd = results["methods"]["sgd"]["mnist1d test_acc"]
    assert sgd["n"] == 2 and len(sgd["values"]) == 2


def test_the_written_claims_are_a_rerender_of_the_written_record(first_run):
    _, out, results = first_run
    cfg = load_config(FWAConfig, PAPER_DIR / "configs", "smoke", [])
    assert claims.rerender(results, cfg) == results
    assert (out / "RESULTS.md").read_text() == render_markdown(results)


def test_same_seed_gives_identical_results(first_run, tmp_path):
    _, _, results = first_run
    _, again = _reproduce(tmp_path)
    for key in ("methods", "claims", "tables", "seeds"):
        assert again[key] == results[key], key


def test_resume_latest_reuses_every_finished_seed(first_run):
    root, _, results = first_run
    before = sorted(p for p in (root / "fwa" / "smoke").glob("*/seed*"))
    _, resumed = _reproduce(root, "resume=latest")
    assert sorted(p for p in (root / "fwa" / "smoke").glob("*/seed*")) == before
    assert resumed["methods"] == results["methods"]
