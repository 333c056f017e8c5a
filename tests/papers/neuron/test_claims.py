"""Neuron's claims from recorded tables: the committed small record re-renders identically,
a clear effect with every precondition met holds, and each failed precondition (convergence,
encoder strength, text centring, the ablation's step size) makes the claim inconclusive."""

import json
from pathlib import Path

import numpy as np
import pytest

import papers.neuron
from papers.neuron import claims as nc
from shared.results import VERDICTS, render_markdown, summarize, validate, verdict_counts

RECORD = Path(papers.neuron.__file__).parent / "results" / "small"
SEEDS = [0, 1, 2]


def _committed():
    return json.loads((RECORD / "results.json").read_text())


def test_committed_record_is_schema_2_and_keeps_the_recorded_run():
    results = _committed()
    validate(results)
    assert results["git"]["commit"].startswith("fb2571b")  # the recorded run, not the re-render
    assert results["wall_time_s"] == 733.0  # 12 min 13 s, README
    assert all(c["verdict"] in VERDICTS for c in results["claims"])
    assert sum(verdict_counts(results).values()) == len(results["claims"]) == 9
    assert len(results["protocol_notes"]) == 8
    assert sum(n.startswith(nc.RERENDER_NOTE) for n in results["notes"]) == 1


def test_committed_record_re_renders_identically():
    results = _committed()
    note = next(n for n in results["notes"] if n.startswith(nc.RERENDER_NOTE))
    at = note[len(nc.RERENDER_NOTE):].split()[0]
    again = nc.rerender(results, at)
    assert json.dumps(again, sort_keys=True) == json.dumps(results, sort_keys=True)
    assert (RECORD / "RESULTS.md").read_text() == render_markdown(again)


def test_re_render_from_schema_1_recomputes_claims_and_adds_one_note():
    old = _committed()
    old = {k: v for k, v in old.items() if k not in ("claims", "protocol_notes", "wall_time_s")}
    old.update(schema=1, notes=[n for n in old["notes"] if not n.startswith(nc.RERENDER_NOTE)],
               claims=[{"claim": "old", "holds": True}])
    new = nc.rerender(old, "a" * 40, wall_time_s=733)
    validate(new)
    assert new["claims"] == _committed()["claims"]
    assert new["notes"][-1].startswith(f"{nc.RERENDER_NOTE} aaaaaaaaaaaa from the run recorded at fb2571b")


def test_recorded_run_lacks_curves_so_every_comparison_is_inconclusive_naming_convergence():
    for claim in _committed()["claims"]:
        assert claim["verdict"] == "inconclusive"
        assert "precondition failed: converged" in claim["reason"]
        failed = [p["name"] for p in claim["preconditions"] if not p["ok"]]
        assert any(name.startswith("encoder separates") for name in failed)


# ---------------------------------------------------------------------------------------------
# hand-made tables


def _cell(values):
    return summarize(values)


def _results(*, neuron, others, encoder_acc=0.95, curves=None, epochs=10):
    """A results dict with the tables `build_claims` reads: ZSL per-seed values for 12 unseen,
    encoder accuracies and (unless `curves` is False) plateaued loss curves for every head."""
    zsl_cols = ["method", "unseen", *nc.ZSL_KEYS]
    rows = [["neuron", 12, _cell(neuron), _cell([v + 0.05 for v in neuron]), "", "", ""]]
    for label, values in others.items():
        col = nc.zsl_column(label)
        rows.append([label, 12, *(_cell(values) if c == col else "" for c in zsl_cols[2:])])
    flat = np.r_[np.linspace(3.0, 1.0, epochs // 2), np.full(epochs - epochs // 2, 1.0)]
    head_rows = []
    for label in ["neuron", *others]:
        curve = curves.get(label, flat) if curves else flat
        head_rows.append([label, 12, 100.0, *(_cell([c, c + 0.001, c - 0.001]) for c in curve)])
    tables = [
        {"title": nc.ZSL_TITLE, "columns": zsl_cols, "rows": rows},
        {"title": nc.ENCODER_TITLE, "columns": ["split", "unseen classes", "seen-class top-1"],
         "rows": [["u12-0", " ".join(map(str, range(12))), encoder_acc]]},
    ]
    if curves is not False:
        tables.append({"title": nc.HEAD_TITLE, "columns": ["method", "unseen", "steps",
                                                           *(f"epoch {e + 1}" for e in range(epochs))],
                       "rows": head_rows})
    return {"tables": tables}


BUDGET = {"epochs": 10, "milestones": [8], "steps": {12: 100}}
BETTER = [0.60, 0.62, 0.61]
WORSE = [0.40, 0.41, 0.43]


def _claim(results, text, logit_scale=10.0):
    made, _ = nc.build_claims(results, BUDGET, logit_scale)
    return next(c for c in made if text in c["claim"])


def test_clear_ablation_effect_with_every_precondition_met_holds():
    claim = _claim(_results(neuron=BETTER, others={"neuron-no_gating": WORSE}), "gating")
    assert all(p["ok"] for p in claim["preconditions"])
    assert claim["verdict"] == "holds"


def test_weak_encoder_makes_a_clear_effect_inconclusive():
    claim = _claim(_results(neuron=BETTER, others={"neuron-no_gating": WORSE}, encoder_acc=0.55),
                   "gating")
    assert claim["verdict"] == "inconclusive"
    assert claim["reason"].startswith("precondition failed: encoder separates the seen classes")


@pytest.mark.parametrize("curve", [
    np.linspace(3.0, 1.0, 10),  # still falling at the end
    np.r_[np.linspace(3.0, 1.6, 8), [1.0, 1.0]],  # flat only after the lr drop at epoch 8
])
def test_unconverged_head_makes_a_clear_effect_inconclusive(curve):
    results = _results(neuron=BETTER, others={"neuron-no_gating": WORSE},
                       curves={"neuron-no_gating": curve})
    claim = _claim(results, "gating")
    assert claim["verdict"] == "inconclusive"
    assert "precondition failed: converged: neuron-no_gating (12 unseen)" in claim["reason"]
    assert "converged: neuron (12 unseen)" not in claim["reason"]


def test_a_flat_curve_that_never_fell_is_not_learning():
    results = _results(neuron=BETTER, others={"neuron-no_gating": WORSE},
                       curves={"neuron-no_gating": np.full(10, 3.76)})
    claim = _claim(results, "gating")
    failed = [p["name"] for p in claim["preconditions"] if not p["ok"]]
    assert failed == ["learned: neuron-no_gating (12 unseen)"] and claim["verdict"] == "inconclusive"


def test_missing_curves_are_a_failed_precondition_not_a_pass():
    claim = _claim(_results(neuron=BETTER, others={"neuron-no_gating": WORSE}, curves=False),
                   "gating")
    assert claim["verdict"] == "inconclusive" and "no loss curve recorded" in claim["reason"]


def test_single_branch_ablation_measures_a_learning_rate():
    claim = _claim(_results(neuron=BETTER, others={"neuron-spatial_only": WORSE}), "spatial only")
    assert claim["verdict"] == "inconclusive"
    assert claim["reason"].startswith("precondition failed: measures the architecture")


def test_smie_comparison_fails_equal_treatment_of_text():
    claim = _claim(_results(neuron=BETTER, others={"smie": WORSE}), "beats smie")
    failed = [p["name"] for p in claim["preconditions"] if not p["ok"]]
    assert "equal treatment: text centring" in failed and claim["verdict"] == "inconclusive"


def test_logit_scale_at_the_sweeps_edge_blocks_head_comparisons(monkeypatch):
    results = _results(neuron=BETTER, others={"devise": WORSE})
    assert _claim(results, "beats devise")["verdict"] == "inconclusive"
    inside = {"metric": "test", "points": {1.0: 0.3, 10.0: 0.5, 100.0: 0.4}}
    monkeypatch.setattr(nc, "LOGIT_SCALE_PROBE", {"neuron": inside, "devise": inside})
    assert _claim(results, "beats devise")["verdict"] == "holds"
    assert _claim(results, "beats devise", logit_scale=1.0)["verdict"] == "inconclusive"
    reversed_ = _claim(_results(neuron=WORSE, others={"devise": BETTER}), "beats devise")
    assert reversed_["verdict"] == "fails"


def test_protocol_notes_are_gaps_and_never_claims():
    made, notes = nc.build_claims(_results(neuron=BETTER, others={}), BUDGET, 10.0)
    assert made == [] and len(notes) == 1
    assert notes[0]["gap"]["value"] == pytest.approx(0.05)
