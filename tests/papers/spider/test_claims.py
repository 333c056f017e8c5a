"""SPIDER's claims (papers/spider/claims.py): the committed record is exactly the re-render of
its recorded data; a failed precondition makes a claim inconclusive; clear effects hold or
fail once every precondition is met; the claim inputs (vocabulary coverage, tuning, curves)."""

import copy
import json
from pathlib import Path

import numpy as np
import pytest

import papers.spider
from papers.spider import claims, pipeline
from shared.results import VERDICTS, render_markdown, summarize, validate

RECORD = Path(papers.spider.__file__).parent / "results" / "small"
TASK = "mcqa"
METHODS = ["full_ft", "spider", "spider_hard", "l2sp"]


def test_the_committed_record_is_the_rerender_of_its_recorded_data():
    recorded = json.loads((RECORD / "results.json").read_text())
    validate(recorded)
    again = claims.rerender(copy.deepcopy(recorded), commit="0" * 40)
    assert json.loads(json.dumps(again)) == recorded
    assert (RECORD / "RESULTS.md").read_text() == render_markdown(recorded)
    assert all(c["verdict"] in VERDICTS for c in recorded["claims"])
    assert len(recorded["claims"]) == 8
    # the measurements are the recorded run's (reproduce --config small, both tasks, every method)
    assert recorded["git"]["commit"].startswith("f176ede")
    assert recorded["methods"]["spider"]["caption_textured H"]["values"] == pytest.approx(
        [94.8870754775646, 93.31568795695192, 95.1818582290623])


def test_the_committed_tuning_table_is_the_small_config():
    recorded = json.loads((RECORD / "results.json").read_text())
    table = next(t for t in recorded["tables"] if t["title"] == claims.TUNING_TABLE)
    fresh = claims.tuning_table(pipeline.config("small"), list(recorded["methods"]))
    assert [r[:3] for r in table["rows"]] == [r[:3] for r in fresh["rows"]]  # the values tried


def test_the_committed_vocabulary_table_has_no_captions_gap():
    """With the "describe" pre-training task every caption target token type occurs in the
    pre-training text (issue 23), and the claims' vocabulary precondition holds."""
    recorded = json.loads((RECORD / "results.json").read_text())
    rows = {r[0]: r for r in next(t for t in recorded["tables"] if t["title"] == claims.VOCAB_TABLE)["rows"]}
    task, types, unseen, token_share, answer_share, words = rows["caption_textured"]
    assert types > 50 and unseen == 0 and token_share == 0 and words == "-"
    caption_claims = [c for c in recorded["claims"] if c["claim"].startswith("caption_textured")]
    assert caption_claims and all(
        all(p["ok"] for p in c["preconditions"] if p["name"].startswith("downstream vocabulary"))
        for c in caption_claims)


def test_rerender_of_a_schema_1_record_needs_the_wall_time():
    recorded = json.loads((RECORD / "results.json").read_text())
    old = {k: v for k, v in recorded.items() if k not in ("wall_time_s", "protocol_notes")}
    old["schema"] = 1
    with pytest.raises(ValueError, match="wall_time_s"):
        claims.rerender(old, commit="0" * 40)
    assert claims.rerender(old, commit="0" * 40, wall_time_s=1.0)["wall_time_s"] == 1.0


# ---------------------------------------------------------------------------------------------
# hand-made inputs


def _inputs(spider_up, full_up, soft_h, hard_h, *, unseen=0, converged=True, tried=2):
    """methods/tables for one task: per-seed upstream and H values, the rest fixed."""
    rng = np.random.default_rng(0)
    values = {"full_ft": (60.0, full_up, 40.0), "spider": (55.0, spider_up, soft_h),
              "spider_hard": (57.0, 45.0, hard_h), "l2sp": (56.0, 45.0, 40.0)}
    methods = {}
    for m, (down, up, h) in values.items():
        def seeds(v):
            v = np.broadcast_to(np.asarray(v, dtype=float), (4,))
            return summarize(v + rng.normal(0, 0.01, 4))
        methods[m] = {f"{TASK} downstream": seeds(down), f"{TASK} upstream": seeds(up), f"{TASK} H": seeds(h)}
    curve = [2.0, 1.0, 0.6, 0.5, 0.45, 0.42, 0.41, 0.405, 0.402, 0.401] if converged else \
        list(np.linspace(2.0, 0.2, 10))
    tables = [
        {"title": claims.task_table_title(TASK), "columns": ["method", "downstream", "upstream", "H"],
         "rows": [[claims.BASE_ROW, 20.0, 58.0, 29.0]]},
        claims.vocabulary_table([[TASK, 20, unseen, unseen / 20, unseen / 20, "-"]]),
        {"title": claims.TUNING_TABLE, "columns": ["method", "hyper-parameter", "values tried", "how chosen"],
         "rows": [["l2sp", "λ", list(range(tried)), "sweep"]]},
        claims.curve_table({(TASK, m): curve for m in METHODS}),
    ]
    return methods, tables


def _claim(cl, text):
    return next(c for c in cl if text in c["claim"])


def test_clear_effects_hold_or_fail_when_every_precondition_is_met():
    cl = claims.build_claims(*_inputs(45.0, 30.0, 40.0, 45.0), [TASK], METHODS)
    assert all(p["ok"] for c in cl for p in c["preconditions"])
    assert _claim(cl, "keeps more upstream")["verdict"] == "holds"
    assert _claim(cl, "soft mask")["verdict"] == "fails"  # soft 5 points below hard


@pytest.mark.parametrize("kw,failed", [
    ({"unseen": 2}, "downstream vocabulary"),
    ({"converged": False}, "converged"),
])
def test_a_failed_precondition_makes_the_claim_inconclusive(kw, failed):
    cl = claims.build_claims(*_inputs(45.0, 30.0, 40.0, 45.0, **kw), [TASK], METHODS)
    for text in ("keeps more upstream", "soft mask"):
        c = _claim(cl, text)
        assert c["verdict"] == "inconclusive"
        assert c["cases"][""]["verdict"] in ("holds", "fails")  # the test alone would decide
        assert f"precondition failed: {failed}" in c["reason"]


def test_untuned_baselines_make_the_comparisons_against_them_inconclusive():
    cl = claims.build_claims(*_inputs(45.0, 30.0, 40.0, 45.0, tried=1), [TASK], METHODS)
    h = _claim(cl, "best harmonic mean")
    assert h["verdict"] == "inconclusive" and "baselines tuned on equal terms" in h["reason"]
    assert _claim(cl, "keeps more upstream")["verdict"] == "holds"  # no baseline compared


def test_missing_inputs_are_failed_preconditions_not_silent_passes():
    methods, tables = _inputs(45.0, 30.0, 40.0, 45.0)
    cl = claims.build_claims(methods, tables[:1], [TASK], METHODS)
    reasons = " ".join(c["reason"] for c in cl)
    assert all(c["verdict"] == "inconclusive" for c in cl)
    assert "not measured" in reasons and "not recorded" in reasons
    # the paper path (a released LLaVA) has no vocabulary precondition, and no base row
    cl = claims.build_claims(methods, [tables[2], tables[3]], [TASK], METHODS, released_model=True)
    names = [p["name"] for c in cl for p in c["preconditions"]]
    assert not any(n.startswith("downstream vocabulary") for n in names)
    assert any("learned the task" in n for n in names)


def test_claims_need_only_the_methods_they_compare():
    methods, tables = _inputs(45.0, 30.0, 40.0, 45.0)
    only = claims.build_claims({"spider": methods["spider"]}, tables, [TASK], ["spider"])
    assert only == []
    two = claims.build_claims({m: methods[m] for m in ("spider", "full_ft")}, tables, [TASK],
                              ["spider", "full_ft"])
    assert len(two) == 3  # upstream, best downstream (vs spider), best H (vs full FT)


class _WordTokenizer:
    """Whitespace words as token ids (a stand-in for the BPE in the coverage count)."""

    def __init__(self):
        self.vocab = {}

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [self.vocab.setdefault(w, len(self.vocab)) for w in text.split()]}

    def decode(self, ids):
        inverse = {i: w for w, i in self.vocab.items()}
        return " ".join(inverse[i] for i in ids)


def test_coverage_counts_target_tokens_never_seen_in_pretraining():
    tok = _WordTokenizer()
    upstream = [{"prompt": "describe the image.", "answer": "a red circle"}]
    downstream = {"caption": [{"answer": "a red ball"}, {"answer": "a red circle"}],
                  "mc": [{"answer": "circle"}]}
    rows = pipeline.coverage_rows(tok, upstream, downstream)
    assert rows[0] == ["caption", 4, 1, 1 / 6, 0.5, "ball"]
    assert rows[1] == ["mc", 1, 0, 0.0, 0.0, "-"]


def test_loss_curve_bins_steps_and_counts_a_relogged_step_once():
    metrics = [{"step": s, "train/loss": float(s)} for s in range(1, 21)]
    metrics.insert(2, {"step": 3, "train/loss": 100.0})  # the killed run's log of step 3, redone
    metrics.append({"step": 20, "train/epoch": 0})
    curve = claims.loss_curve(metrics, bins=10)
    assert curve == pytest.approx([1.5, 3.5, 5.5, 7.5, 9.5, 11.5, 13.5, 15.5, 17.5, 19.5])
    few = [{"step": s, "train/loss": float(s)} for s in range(1, 4)]
    assert claims.loss_curve(few, bins=10) == [1.0, 2.0, 3.0]  # fewer steps than bins: every step


def test_relative_h_puts_both_scores_on_the_share_of_their_reference():
    """H of the upstream score as a % of the pre-trained model's and the downstream score as a
    % of full FT's: CIDEr × 100 of 160 no longer swamps an accuracy of 40 (the paper's H of
    the raw scores is nearly 2 × upstream)."""
    from papers.spider.reproduce import rescale_h

    assert pipeline.relative_h(40.0, 160.0, 50.0, 200.0) == pytest.approx(80.0)  # 80 % and 80 %
    assert pipeline.relative_h(25.0, 160.0, 50.0, 160.0) == pytest.approx(2 * 50 * 100 / 150)
    assert pipeline.relative_h(50.0, 0.0, 50.0, 160.0) == 0.0  # the pre-trained model: nothing learned
    assert pipeline.harmonic(40.0, 160.0) == pytest.approx(64.0)  # the paper's H of the raw scores
    with pytest.raises(ValueError):
        pipeline.relative_h(40.0, 160.0, 0.0, 160.0)
    r = {"upstream": 40.0, "downstream": 160.0, "H": 64.0}
    rescale_h(r, 50.0, 200.0)
    rescale_h(r, 50.0, 200.0)  # idempotent
    assert r["H"] == pytest.approx(80.0) and r["H_raw"] == pytest.approx(64.0)
    for u_ref, d_ref in ((None, 200.0), (50.0, None), (50.0, 0.0)):  # no usable reference: the raw H
        r = {"upstream": 40.0, "downstream": 160.0}
        rescale_h(r, u_ref, d_ref)
        assert r["H"] == r["H_raw"] == pytest.approx(64.0)
    # +4 upstream points at a cost of 10 CIDEr points: the raw H rewards it about twice as much
    a, b = (40.0, 160.0), (44.0, 150.0)
    assert pipeline.relative_h(*b, 53.5, 160.0) - pipeline.relative_h(*a, 53.5, 160.0) < \
        pipeline.harmonic(*b) - pipeline.harmonic(*a)
