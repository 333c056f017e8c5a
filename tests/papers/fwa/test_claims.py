"""The claims of FWA from recorded data: hand-made records with a clear effect hold or fail,
a failed precondition makes them inconclusive, and the committed record re-renders to itself."""

import json
from pathlib import Path

import numpy as np

import papers.fwa
from papers.fwa import claims
from papers.fwa.config import ConvexConfig, FWAConfig, StabilityConfig
from shared.config import load_config
from shared.results import VERDICTS, render_markdown, summarize, validate

PAPER_DIR = Path(papers.fwa.__file__).parent
COMMITTED = PAPER_DIR / "results" / "small" / "results.json"
SEEDS = [0, 1, 2, 3, 4]


def _convex_record(fwa_factor: float, tau: float, length: int = 10_000,
                   alpha_beta: float = 1.0) -> tuple[FWAConfig, dict]:
    """A record of the convex experiment only: SGD's F − F* per seed, FWA's = factor × SGD's
    (a little seed noise), and the SGD diagnostics with the given τ̂."""
    cfg = FWAConfig(experiments=["convex"], convex=ConvexConfig(
        datasets=["synthetic"], schedules=["sqrt"], windows=[1, 2, 10], steps=1000))
    rng = np.random.default_rng(0)
    sgd = rng.uniform(1e-3, 2e-3, len(SEEDS))
    rows = [["synthetic", "sqrt", "sgd", summarize(sgd), "", ""]]
    for k in (1, 2, 10):
        factor = 1.0 if k == 1 else fwa_factor * (1 + 0.01 * rng.standard_normal(len(SEEDS)))
        rows.append(["synthetic", "sqrt", f"fwa{k}", summarize(sgd * factor), 1.0, 1.0])
    diag = [["synthetic", "sqrt", summarize(sgd * 3), summarize(sgd),
             summarize([tau] * len(SEEDS)), length]]
    tables = [
        {"title": f"{claims.CONVEX_FINAL}1000", "rows": rows,
         "columns": ["dataset", "schedule", "method", "F − F*", "ratio to SGD", "theory ratio"]},
        {"title": claims.CONVEX_DIAGNOSTICS, "rows": diag,
         "columns": ["dataset", "schedule", "SGD F − F* at T/4", "SGD F − F* at T", "τ̂ (steps)",
                     "series length"]},
        {"title": claims.CONVEX_STEPS, "rows": [["synthetic", "sqrt", 0.1, 0.0, 0.1, alpha_beta / 0.1,
                                                 alpha_beta, 1.0]],
         "columns": ["dataset", "schedule", "c", "shift t₀", "α₁", "β", "α₁·β", "D/G"]},
    ]
    return cfg, {"seeds": SEEDS, "methods": {}, "tables": tables}


def _first_claim(cfg, record):
    return claims.claims_from_record(cfg, record)[0][0]


def test_clear_gain_with_windows_longer_than_tau_holds():
    claim = _first_claim(*_convex_record(fwa_factor=0.5, tau=1.0))
    assert claim["verdict"] == "holds"
    assert all(p["ok"] for p in claim["preconditions"])


def test_clear_loss_with_windows_longer_than_tau_fails():
    assert _first_claim(*_convex_record(fwa_factor=1.5, tau=1.0))["verdict"] == "fails"


def test_a_window_shorter_than_the_autocorrelation_time_makes_the_claim_inconclusive():
    claim = _first_claim(*_convex_record(fwa_factor=0.5, tau=100.0))
    assert all(c["verdict"] == "holds" for c in claim["cases"].values())  # the data alone would
    assert claim["verdict"] == "inconclusive"
    assert "autocorrelation time" in claim["reason"]


def test_an_unresolved_autocorrelation_time_makes_the_claim_inconclusive():
    # τ̂ = 1 ≤ k, but a 40-step series is shorter than 50 τ̂: τ is not measured well enough
    claim = _first_claim(*_convex_record(fwa_factor=0.5, tau=1.0, length=40))
    assert claim["verdict"] == "inconclusive" and "autocorrelation time" in claim["reason"]


def test_data_the_record_lacks_make_the_claims_that_need_it_inconclusive():
    cfg, record = _convex_record(fwa_factor=0.5, tau=1.0)
    record["tables"] = record["tables"][:1]  # no diagnostics, no per-horizon curves
    for claim in claims.claims_from_record(cfg, record)[0]:
        assert claim["verdict"] == "inconclusive"
        assert claims.NOT_RECORDED in claim["reason"]


def test_the_decaying_step_bound_is_inconclusive_when_its_first_steps_exceed_2_over_beta():
    # the c/t bound needs α_t ≤ 2/β at every step; α_1 = c = 0.5 while 2/β ≈ 0.15 on the pool
    cfg = FWAConfig(experiments=["stability"], stability=StabilityConfig(
        models=["convex"], sizes=[100], windows=[1, 10], schedules=["inv"], steps=100,
        lr={"inv": 0.5}))
    rows = []
    for method in ("sgd", "fwa1", "fwa10"):
        rows.append(["convex", "inv", 100, method, summarize([1e-3] * 5), 1.0,
                     summarize([0.01] * 5), ""])
    record = {"seeds": SEEDS, "methods": {}, "tables": [
        {"title": f"{claims.STABILITY_FINAL}100", "rows": rows,
         "columns": ["model", "schedule", "n", "method", "distance", "ratio to SGD",
                     "test − train loss", "mean δ_t over the window"]},
        {"title": claims.STABILITY_CONSTANTS, "columns": ["quantity", "value", "meaning"],
         "rows": [["L", 7.0, ""], ["beta", 13.0, ""]]}]}
    found, notes = claims.stability_claims(cfg, claims.Record(record))
    bound = next(c for c in found if c["claim"].startswith("Convex, α_t = c/t"))
    assert all(c["verdict"] == "holds" for c in bound["cases"].values())  # far below the bound
    assert bound["verdict"] == "inconclusive" and "2/β" in bound["reason"]
    assert notes[0]["gap"] is None  # no window means of δ_t in this record


def test_a_first_step_beyond_2_over_beta_makes_the_convex_claim_inconclusive():
    claim = _first_claim(*_convex_record(0.5, tau=1.0, alpha_beta=170.0))
    assert claim["verdict"] == "inconclusive" and "α₁·β ≤ 2" in claim["reason"]


def _nonsmooth_record(ratios, sgd_over_bound=2.0):
    from papers.fwa.config import NonsmoothConfig

    cfg = FWAConfig(experiments=["nonsmooth"],
                    nonsmooth=NonsmoothConfig(horizons=[64, 256, 1024], fractions=[0.5], windows=[]))
    rows = []
    for T, ratio in zip([64, 256, 1024], ratios):
        bound = np.log(T) / (32 * np.sqrt(T))
        sgd = sgd_over_bound * bound
        rows.append([T, sgd, sgd / ratio, ratio, 0.5, bound])
    table = {"title": claims.NONSMOOTH_CURVES, "rows": rows,
             "columns": ["T", "sgd", "fwaT0.5", "sgd/fwaT0.5", "theory fwaT0.5",
                         "lower bound log T/(32√T)"]}
    return cfg, {"seeds": SEEDS, "methods": {}, "tables": [table]}


def test_nonsmooth_ratio_growing_with_T_holds_and_a_flat_one_does_not():
    grows = _first_claim(*_nonsmooth_record([2.0, 3.0, 4.01]))
    assert grows["verdict"] == "holds"
    shrinks = _first_claim(*_nonsmooth_record([4.0, 3.0, 2.01]))
    assert shrinks["verdict"] == "fails"
    below = _first_claim(*_nonsmooth_record([2.0, 3.0, 4.01], sgd_over_bound=0.5))
    assert below["verdict"] == "inconclusive" and "log factor" in below["reason"]


def test_the_committed_small_record_validates_and_re_renders_to_itself():
    results = json.loads(COMMITTED.read_text())
    validate(results)
    assert all(c["verdict"] in VERDICTS for c in results["claims"])
    cfg = load_config(FWAConfig, PAPER_DIR / "configs", results["config"], [])
    # up to date: the claims this code derives are the recorded ones, so no note is added
    assert claims.rerender(results, cfg, at="HEAD") == results
    assert (COMMITTED.parent / "RESULTS.md").read_text() == render_markdown(results)
    for plot in results["plots"]:
        assert (COMMITTED.parent / plot).is_file()
