"""HarmoDT's claims: verdicts from hand-made per-seed values, the preconditions, and the
committed record re-rendered from its recorded data."""

import copy
import json
from pathlib import Path

import pytest

import papers.harmodt
from papers.harmodt.claims import (
    episodes_from_record,
    mask_iou_excess,
    paper_claims,
    paper_protocol_notes,
    rerender,
    run_success_se,
    tail_change,
)
from shared.results import VERDICTS, render_markdown, summarize, validate

RECORD = Path(papers.harmodt.__file__).parent / "results" / "small"
Q = "near-optimal"
EPISODES = {"seen": 400, "unseen": 400}


def _methods(final, *, tail=0.0, excess=0.01, unseen=None):
    """methods block: `final[label]` per-seed final success (%); every other metric derived."""
    out = {}
    for label, values in final.items():
        entry = {"final_success": summarize(values),
                 "best_success": summarize([v + 1.0 for v in values]),
                 "tail_change": summarize([tail + 0.1 * i for i in range(len(values))])}
        if label in ("HarmoDT-F", "HarmoDT-M", "HarmoDT-R", "G-HarmoDT"):
            entry["mask_iou_excess"] = summarize([excess, excess * 1.1, excess * 0.9])
        if unseen is not None and label in unseen:
            entry["unseen_success"] = summarize(unseen[label])
        out[f"{label} / {Q}"] = entry
    return out


CLEAR = {"HarmoDT-F": [60.0, 62.0, 61.0], "HarmoDT-M": [59.0, 61.0, 60.5],
         "HarmoDT-R": [58.0, 60.0, 59.5], "Prompt-DT": [40.0, 41.0, 40.5]}


def _claim(claims, text):
    (found,) = [c for c in claims if c["claim"] == f"{Q}: {text}"]
    return found


def test_a_clear_effect_with_every_precondition_met_holds():
    (c,) = paper_claims(_methods(CLEAR), [Q], EPISODES)
    assert c["claim"] == f"{Q}: every HarmoDT variant beats Prompt-DT"
    assert all(p["ok"] for p in c["preconditions"]), c["preconditions"]
    assert c["verdict"] == "holds" and set(c["cases"]) == {"HarmoDT-F", "HarmoDT-M", "HarmoDT-R"}


def test_a_clear_opposite_effect_fails():
    flipped = {**CLEAR, "Prompt-DT": [80.0, 81.0, 80.5]}
    (c,) = paper_claims(_methods(flipped), [Q], EPISODES)
    assert c["verdict"] == "fails"


def test_an_unconverged_curve_makes_the_clear_effect_inconclusive():
    (c,) = paper_claims(_methods(CLEAR, tail=12.0), [Q], EPISODES)
    assert c["verdict"] == "inconclusive"
    assert "precondition failed: converged (budget)" in c["reason"]
    assert all(case["verdict"] == "holds" for case in c["cases"].values())


def test_masks_no_different_from_random_make_a_mask_claim_inconclusive():
    methods = _methods(CLEAR)
    for label in ("HarmoDT-F", "HarmoDT-M", "HarmoDT-R"):
        methods[f"{label} / {Q}"]["mask_iou_excess"] = summarize([0.001, -0.001, 0.0005])
    (c,) = paper_claims(methods, [Q], EPISODES)
    assert c["verdict"] == "inconclusive" and "mechanism acted" in c["reason"]


def test_too_few_episodes_for_a_5_point_se_make_it_inconclusive():
    (c,) = paper_claims(_methods(CLEAR), [Q], {"seen": 30, "unseen": 9})
    assert c["verdict"] == "inconclusive" and "one run's SE (30 episodes)" in c["reason"]


def test_a_metric_the_run_did_not_record_is_a_failed_precondition():
    methods = _methods(CLEAR)
    del methods[f"Prompt-DT / {Q}"]["tail_change"]
    (c,) = paper_claims(methods, [Q], EPISODES)
    (conv,) = [p for p in c["preconditions"] if p["name"].startswith("converged")]
    assert not conv["ok"] and conv["value"] == "not recorded" and "Prompt-DT" in conv["detail"]
    assert c["verdict"] == "inconclusive"


def test_non_inferiority_and_unseen_claims():
    final = {"G-HarmoDT": [50.0, 51.0, 50.5], "HarmoDT-F": [51.0, 51.5, 51.0],
             "Prompt-DT": [30.0, 31.0, 30.5]}
    unseen = {"G-HarmoDT": [40.0, 41.0, 40.0], "HarmoDT-F": [20.0, 20.5, 21.0],
              "Prompt-DT": [30.0, 30.0, 31.0]}
    claims = paper_claims(_methods(final, unseen=unseen), [Q], EPISODES)
    g = _claim(claims, "G-HarmoDT without task ids is not worse than HarmoDT-F with them")
    assert g["verdict"] == "holds" and g["min_effect"] == -5.0  # −0.7 points, inside the margin
    unseen_claims = {c["claim"]: c for c in claims if "unseen" in c["claim"]}
    assert unseen_claims[f"{Q}, unseen tasks: HarmoDT-F's majority-vote mask beats Prompt-DT"][
        "verdict"] == "fails"
    assert unseen_claims[f"{Q}, unseen tasks: G-HarmoDT beats HarmoDT-F"]["verdict"] == "holds"


def test_no_claim_holds_or_fails_with_a_failed_precondition():
    for tail in (0.0, 12.0):
        for final in (CLEAR, {**CLEAR, "Prompt-DT": [80.0, 81.0, 80.5]}):
            for c in paper_claims(_methods(final, tail=tail), [Q], {"seen": 30, "unseen": 9}):
                assert c["verdict"] in VERDICTS
                if not all(p["ok"] for p in c["preconditions"]):
                    assert c["verdict"] == "inconclusive"


def test_tail_change_reads_the_last_evaluation_before_80_percent():
    curve = [{"iteration": 700, "success": 0.1}, {"iteration": 1400, "success": 0.15},
             {"iteration": 2000, "success": 0.37}]
    assert tail_change(curve) == pytest.approx(22.0)
    dense = [{"iteration": i, "success": i / 1000} for i in range(100, 1001, 100)]
    assert tail_change(dense) == pytest.approx(20.0)  # 800 → 1000
    assert tail_change(curve[:1]) is None


def test_mask_iou_excess_is_the_mean_off_diagonal_minus_random():
    overlap = [[1.0, 0.7, 0.6], [0.7, 1.0, 0.8], [0.6, 0.8, 1.0]]
    assert mask_iou_excess(overlap, 0.667) == pytest.approx(0.7 - 0.667)
    assert mask_iou_excess(overlap, None) is None and mask_iou_excess([[1.0]], 0.6) is None


def test_one_run_se_never_collapses_to_zero_and_needs_about_100_episodes():
    assert run_success_se(0.0, 9) > 5.0 and run_success_se(100.0, 9) > 5.0
    assert run_success_se(50.0, 30) > 5.0
    assert run_success_se(50.0, 96) <= 5.0 < run_success_se(50.0, 90)


def test_protocol_note_best_minus_final_is_not_a_claim():
    methods = _methods(CLEAR)
    (note,) = paper_protocol_notes(methods, [Q])
    assert note["gap"]["value"] == pytest.approx(1.0) and "claim" not in note


# -- the committed record -----------------------------------------------------------------

def _record():
    return json.loads((RECORD / "results.json").read_text())


def test_the_committed_record_re_renders_identically_from_its_recorded_data():
    results = _record()
    validate(results)
    assert rerender(copy.deepcopy(results)) == results
    assert (RECORD / "RESULTS.md").read_text() == render_markdown(results)
    assert len(results["runs"]) == 18  # issue 21's small: 6 methods × 3 seeds, every curve kept


def test_the_committed_record_episode_counts_come_from_the_record():
    assert episodes_from_record(_record()) == {"seen": 96, "unseen": 96}  # 3 × 32 each


def test_a_schema_1_record_gets_the_note_and_the_wall_time():
    old = _record()
    old["schema"] = 1
    old["notes"] = [n for n in old["notes"] if not n.startswith("claims re-rendered")]
    del old["wall_time_s"], old["claims"], old["protocol_notes"]
    new = rerender(old, wall_time_s=12.0, commit="abc1234")
    assert new["schema"] == 2 and new["wall_time_s"] == 12.0
    assert new["notes"][-1] == ("claims re-rendered into schema 2 at abc1234 from the run "
                                f"recorded at {old['git']['commit'][:7]}; the measurements are "
                                "unchanged")
    assert new["methods"] == old["methods"] and new["tables"] == old["tables"]
