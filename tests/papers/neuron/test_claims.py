"""Neuron's claims from recorded tables: the committed small record's claims recompute from its
tables, a clear effect with every precondition met holds, and each failed precondition
(convergence, validation plateau, encoder strength, the sweep, the ablation's step size) makes
the claim inconclusive."""

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


def test_committed_record_is_schema_2_and_its_claims_recompute_from_its_tables():
    results = _committed()
    validate(results)
    assert all(c["verdict"] in VERDICTS for c in results["claims"])
    assert sum(verdict_counts(results).values()) == len(results["claims"]) == 7  # 36/12: 2 baselines, 5 ablations
    cfg = nc._load_cfg(results["config"])
    from papers.neuron.pipeline import class_count
    sizes = sorted({int(r[1]) for r in nc._table(results, nc.ZSL_TITLE)["rows"]})
    made, notes = nc.build_claims(results, nc.config_budget(cfg, class_count(cfg), sizes),
                                  cfg.neuron.ablation_loss)
    assert json.dumps(made, sort_keys=True) == json.dumps(results["claims"], sort_keys=True)
    assert json.dumps(notes, sort_keys=True) == json.dumps(results["protocol_notes"], sort_keys=True)
    assert (RECORD / "RESULTS.md").read_text() == render_markdown(results)


def test_committed_record_keeps_the_curves_and_sweeps_the_preconditions_read():
    results = _committed()
    titles = {t["title"] for t in results["tables"]}
    assert {nc.HEAD_TITLE, nc.VAL_TITLE, nc.SWEEP_TITLE, nc.ENCODER_CURVE_TITLE} <= titles
    for claim in results["claims"]:
        names = [p["name"] for p in claim["preconditions"]]
        assert any(n.startswith("validation plateaued") for n in names)
        assert all(isinstance(p["value"], float) for p in claim["preconditions"]
                   if p["name"].startswith(("converged", "validation plateaued")))


# ---------------------------------------------------------------------------------------------
# hand-made tables


def _cell(values):
    return summarize(values)


AT = [10 * (k + 1) for k in range(10)]  # log points (steps); milestone at step 80


def _sweep_rows(label, scale_edge=False, lrs=(0.03, 0.1, 0.3), scales=(5.0, 20.0, 80.0)):
    method = label.split("-")[0]
    scales = [None] if method == "smie" else list(scales)
    pick = (0.1, None if method == "smie" else (80.0 if scale_edge else 20.0))
    return [[method, 12, "u12-0", lr, "" if s is None else s, 0.5 if (lr, s) == pick else 0.3,
             "yes" if (lr, s) == pick else ""] for s in scales for lr in lrs]


def _results(*, neuron, others, encoder_acc=0.95, curves=None, vals=None, sweep=None):
    """A results dict with the tables `build_claims` reads: ZSL per-seed values for 12 unseen,
    encoder accuracies, a sweep with every choice inside it, and (unless `curves` is False)
    plateaued loss and validation curves for every head."""
    zsl_cols = ["method", "unseen", *nc.ZSL_KEYS]
    rows = [["neuron", 12, _cell(neuron), _cell([v + 0.05 for v in neuron]), "", "", ""]]
    for label, values in others.items():
        col = nc.zsl_column(label)
        rows.append([label, 12, *(_cell(values) if c == col else "" for c in zsl_cols[2:])])
    flat = np.r_[np.linspace(3.0, 1.0, 5), np.full(5, 1.0)]
    flat_val = np.r_[np.linspace(0.1, 0.5, 5), np.full(5, 0.5)]
    head_rows, val_rows = [], []
    for label in ["neuron", *others]:
        curve = (curves or {}).get(label, flat)
        head_rows.append([label, 12, 100.0, *(_cell([c, c + 0.001, c - 0.001]) for c in curve)])
        val = (vals or {}).get(label, flat_val)
        val_rows.append([label, 12, 100.0, *(_cell([c, c + 0.001, c - 0.001]) for c in val)])
    methods = {label.split("-")[0] for label in ["neuron", *others]}
    sweep_rows = sweep if sweep is not None else [r for m in sorted(methods) for r in _sweep_rows(m)]
    tables = [
        {"title": nc.ZSL_TITLE, "columns": zsl_cols, "rows": rows},
        {"title": nc.ENCODER_TITLE, "columns": ["split", "unseen classes", "steps", "seen-class top-1"],
         "rows": [["u12-0", " ".join(map(str, range(12))), 600, encoder_acc]]},
        {"title": nc.SWEEP_TITLE, "columns": ["method", "unseen", "split", "lr", "logit scale",
                                              "held-out ZSL top-1", "chosen"], "rows": sweep_rows},
    ]
    columns = ["method", "unseen", "steps", *(f"step {a}" for a in AT)]
    if curves is not False:
        tables.append({"title": nc.HEAD_TITLE, "columns": columns, "rows": head_rows})
        tables.append({"title": nc.VAL_TITLE, "columns": columns, "rows": val_rows})
    return {"tables": tables}


BUDGET = {"steps": 100, "warmup": 0, "milestones": [80], "passes": {12: 10.0}}
BETTER = [0.60, 0.62, 0.61]
WORSE = [0.40, 0.41, 0.43]


def _claim(results, text, ablation_loss="normalised"):
    made, _ = nc.build_claims(results, BUDGET, ablation_loss)
    return next(c for c in made if text in c["claim"])


def test_clear_ablation_effect_with_every_precondition_met_holds():
    claim = _claim(_results(neuron=BETTER, others={"neuron-no_gating": WORSE}), "gating")
    assert all(p["ok"] for p in claim["preconditions"])
    assert claim["verdict"] == "holds"


def test_clear_head_comparison_with_every_precondition_met_holds_and_reversed_fails():
    for base in ("devise", "smie"):
        claim = _claim(_results(neuron=BETTER, others={base: WORSE}), f"beats {base}")
        assert all(p["ok"] for p in claim["preconditions"]), base
        assert claim["verdict"] == "holds"
        assert _claim(_results(neuron=WORSE, others={base: BETTER}), f"beats {base}")["verdict"] == "fails"


def test_weak_encoder_makes_a_clear_effect_inconclusive():
    claim = _claim(_results(neuron=BETTER, others={"neuron-no_gating": WORSE}, encoder_acc=0.55),
                   "gating")
    assert claim["verdict"] == "inconclusive"
    assert claim["reason"].startswith("precondition failed: encoder separates the seen classes")


@pytest.mark.parametrize("curve", [
    np.linspace(3.0, 1.0, 10),  # still falling at the end
    np.r_[np.linspace(3.0, 1.6, 8), [1.0, 1.0]],  # flat only after the lr drop at step 80
])
def test_unconverged_head_makes_a_clear_effect_inconclusive(curve):
    results = _results(neuron=BETTER, others={"neuron-no_gating": WORSE},
                       curves={"neuron-no_gating": curve})
    claim = _claim(results, "gating")
    assert claim["verdict"] == "inconclusive"
    assert "precondition failed: converged: neuron-no_gating (12 unseen)" in claim["reason"]
    assert "converged: neuron (12 unseen)" not in claim["reason"]


def test_validation_accuracy_still_rising_makes_a_clear_effect_inconclusive():
    results = _results(neuron=BETTER, others={"devise": WORSE},
                       vals={"devise": np.linspace(0.1, 0.6, 10)})
    claim = _claim(results, "beats devise")
    failed = [p["name"] for p in claim["preconditions"] if not p["ok"]]
    assert failed == ["validation plateaued: devise (12 unseen)"] and claim["verdict"] == "inconclusive"


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
    assert "no validation curve recorded" in claim["reason"]


def test_single_branch_ablation_with_its_own_mean_loss_measures_a_learning_rate():
    results = _results(neuron=BETTER, others={"neuron-spatial_only": WORSE})
    assert _claim(results, "spatial only")["verdict"] == "holds"  # normalised: same step
    claim = _claim(results, "spatial only", ablation_loss="mean")
    assert claim["verdict"] == "inconclusive"
    assert claim["reason"].startswith("precondition failed: measures the architecture")


def test_a_choice_at_the_sweeps_edge_blocks_head_comparisons():
    edge = _sweep_rows("neuron", scale_edge=True) + _sweep_rows("devise")
    claim = _claim(_results(neuron=BETTER, others={"devise": WORSE}, sweep=edge), "beats devise")
    failed = [p["name"] for p in claim["preconditions"] if not p["ok"]]
    assert failed == ["equal treatment: neuron tuned inside its sweep (12 unseen)"]
    assert "scale 80" in claim["reason"] and claim["verdict"] == "inconclusive"


def test_heads_swept_over_different_grids_are_not_treated_equally():
    rows = _sweep_rows("neuron") + _sweep_rows("devise", lrs=(0.01, 0.1, 1.0))
    claim = _claim(_results(neuron=BETTER, others={"devise": WORSE}, sweep=rows), "beats devise")
    failed = [p["name"] for p in claim["preconditions"] if not p["ok"]]
    assert failed == ["equal treatment: the same held-out sweep"] and claim["verdict"] == "inconclusive"


def test_protocol_notes_are_gaps_and_never_claims():
    made, notes = nc.build_claims(_results(neuron=BETTER, others={}), BUDGET)
    assert made == [] and len(notes) == 1
    assert notes[0]["gap"]["value"] == pytest.approx(0.05)
