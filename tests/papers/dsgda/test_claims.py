"""The claims: exponents, the regime precondition, the turn-over precondition, claims the record
cannot decide, and the re-render of a recorded results.json."""

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from papers.dsgda import claims
from papers.dsgda.claims import METRIC_NAMES, SWEEP_COLUMNS, Recorded, curve_table
from shared.results import summarize, validate

T = [10, 30, 100, 300, 1000, 3000]
SEED_SCALE = [1.0, 1.1, 0.9]
COMMITTED = Path(__file__).parents[3] / "papers" / "dsgda" / "results" / "small"


def _cells(per_seed):
    return [summarize(list(v)) for v in zip(*per_seed)]


def _record(setting, eps, contraction, extra_rows=()):
    """A results dict with the base point's curves (per seed × T) and its sweep row."""
    rows = [("T", T[-1], "eps", _cells(eps)), ("T", T[-1], "contraction", _cells(contraction)),
            *extra_rows]
    sweep = {"title": f"{setting}: every grid point", "columns": [*SWEEP_COLUMNS, METRIC_NAMES["eps"]],
             "rows": [[setting, "T", T[-1], 1.0, summarize([e[-1] for e in eps])]]}
    return {"tables": [sweep, curve_table(setting, "last", T, rows)]}


def _power(exponent, noise=0.01, seeds=SEED_SCALE):
    rng = np.random.default_rng(0)
    return [[c * t ** exponent * (1 + noise * rng.standard_normal()) for t in T] for c in seeds]


def _contraction(at_end):
    return [[at_end * t / T[-1] for t in T] for _ in SEED_SCALE]


def test_exponent_recovers_a_power_law_per_seed():
    est, positive = claims.exponent(T, _power(0.5))
    assert est["value"] == pytest.approx(0.5, abs=0.02) and est["lo"] < 0.5 < est["hi"]
    assert est["seeds"] == 3 and positive == []
    est, positive = claims.exponent(T, [[0.0, *row[1:]] for row in _power(0.5)])
    assert positive and not positive[0]["ok"] and positive[0]["value"] == 3


def test_growth_in_T_holds_when_not_contracted_and_is_inconclusive_when_contracted():
    grows = claims.stability_in_T(Recorded(_record("cc", _power(0.5), _contraction(0.5))), "cc", "grows")
    assert grows["verdict"] == "holds", grows["reason"]
    flat = claims.stability_in_T(Recorded(_record("cc", _power(0.0), _contraction(0.5))), "cc", "grows")
    assert flat["verdict"] == "fails"
    contracted = claims.stability_in_T(Recorded(_record("cc", _power(0.5), _contraction(5.0))), "cc", "grows")
    assert contracted["verdict"] == "inconclusive"  # the same clear growth, but a failed precondition
    assert "precondition failed: regime: not contracted by curvature" in contracted["reason"]
    assert contracted["cases"][""]["verdict"] == "holds"  # the interval alone would have said holds


def test_bounded_in_T_is_an_equivalence_test_that_needs_contraction():
    def bounded(eps, at_end):
        return claims.stability_in_T(Recorded(_record("scsc", eps, _contraction(at_end))), "scsc", "bounded")

    assert bounded(_power(0.0, noise=0.001), 20.0)["verdict"] == "holds"
    assert bounded(_power(0.5), 20.0)["verdict"] == "fails"
    early = bounded(_power(0.0, noise=0.001), 5.0)  # η·μ·T = 5 at T_max, 0.5 at the decade start
    assert early["verdict"] == "inconclusive" and "contracted from the decade start" in early["reason"]


def test_optimal_T_needs_the_turn_over_at_every_N():
    def risk(turn):  # falls until T[turn], then rises; turn = len(T) - 1: still falling at T_max
        return [[c * ((i - turn) ** 2 if i <= turn else 0.5 * (i - turn)) + 0.01 * c
                 for i in range(len(T))] for c in SEED_SCALE]

    def record(turns):
        rows = [("N", n, "pop_primal", _cells(risk(t))) for n, t in turns.items()]
        out = _record("cc", _power(0.0), _contraction(1.0), rows)
        out["tables"][0]["rows"] += [["cc", "N", n, 1.0, summarize([1.0, 1.0, 1.0])] for n in turns]
        return Recorded(out)

    grows = claims.optimal_T(record({100: 1, 200: 2, 400: 3, 800: 4}), "cc")
    assert grows["verdict"] == "holds", grows["reason"]
    edge = claims.optimal_T(record({100: 1, 200: 5, 400: 5, 800: 5}), "cc")
    assert edge["verdict"] == "inconclusive"
    assert "the T grid reaches the turn-over at every N (1 of 4 N (N = 100)" in edge["reason"]


def _committed():
    return json.loads((COMMITTED / "results.json").read_text())


def test_a_record_without_curves_is_inconclusive_naming_the_missing_data():
    results = _committed()
    stripped = copy.deepcopy(results)
    stripped["tables"] = [t for t in stripped["tables"] if t["columns"][3] != "metric"]
    again = claims.rederive(stripped)
    validate(again)
    by_name = {c["claim"]: c for c in again["claims"]}
    for name in ("BILINEAR: stability grows with T", "SCSC: stability stays bounded in T",
                 "PLSC: the population-risk-optimal T grows with N"):
        assert by_name[name]["verdict"] == "inconclusive"
        assert "precondition failed: recorded data available" in by_name[name]["reason"]
    kept = {c["claim"]: c for c in results["claims"]}
    same = "NCNC: stability ε shrinks with N"  # read from the sweep tables, which remain
    assert json.dumps(by_name[same]) == json.dumps(kept[same])


def test_committed_record_re_renders_identically():
    from shared.results import render_markdown

    results = _committed()
    validate(results)
    assert results["schema"] == 2 and results["git"]["dirty"] is False
    again = claims.rederive(results)
    for key in ("claims", "protocol_notes"):
        assert json.dumps(again[key], sort_keys=True) == json.dumps(results[key], sort_keys=True), key
    assert render_markdown(results) == (COMMITTED / "RESULTS.md").read_text()


def test_rerender_turns_a_schema_1_record_into_schema_2(tmp_path):
    old = _committed()
    old["schema"] = 1
    old["claims"] = [{"claim": c["claim"], "paper": c["paper"], "ours": "", "holds": True, "detail": ""}
                     for c in old["claims"]]
    del old["protocol_notes"], old["wall_time_s"]
    path = tmp_path / "results.json"
    path.write_text(json.dumps(old))
    assert claims.main(["rerender", str(path), "--wall-time", "129"]) == 0
    new = json.loads(path.read_text())
    validate(new)
    assert new["wall_time_s"] == 129.0 and new["git"] == old["git"] and new["tables"] == old["tables"]
    assert "re-rendered into schema 2" in new["notes"][-1] and old["git"]["commit"][:12] in new["notes"][-1]
    assert (tmp_path / "RESULTS.md").read_text().startswith("# Stability and Generalization")
