"""SDPO's claims: verdicts from hand-made per-seed values, the preconditions (converged, equal
terms, a base that works at one step), and the committed record re-rendered from its recorded
data."""

import copy
import json
from pathlib import Path

import numpy as np
import pytest

import papers.sdpo
from papers.sdpo import claims
from papers.sdpo.config import SDPOExperimentConfig
from shared.config import load_config
from shared.results import VERDICTS, render_markdown, summarize, validate

PAPER_DIR = Path(papers.sdpo.__file__).parent
RECORD = PAPER_DIR / "results" / "small"
STEPS = (1, 2, 4, 8)


# ---------------------------------------------------------------------------------------------
# the committed record


def test_the_committed_record_is_the_rerender_of_its_recorded_data():
    recorded = json.loads((RECORD / "results.json").read_text())
    validate(recorded)
    again = claims.rerender(copy.deepcopy(recorded), commit="0" * 40)
    assert json.loads(json.dumps(again)) == recorded
    assert (RECORD / "RESULTS.md").read_text() == render_markdown(recorded)
    assert len(recorded["claims"]) == 8
    assert all(c["verdict"] in VERDICTS for c in recorded["claims"])
    # the recorded run (issue 22): a base that works at one step, equal terms for the ranking claims
    for c in recorded["claims"]:
        assert all(p["ok"] for p in c["preconditions"] if p["name"].startswith("base works at 1 step"))
    for c in recorded["claims"][1:4]:  # SDPO beats DDPO / D3PO / REBEL
        assert any(p["name"].startswith("equal terms") and p["ok"] for p in c["preconditions"])
    assert recorded["git"]["commit"].startswith("a5c78be")
    assert recorded["wall_time_s"] == pytest.approx(1450.075817380999)
    assert recorded["methods"]["sdpo"]["reward_1"]["values"] == pytest.approx(
        [1.5915026664733887, 1.3514447212219238, 1.9686784744262695])
    assert recorded["methods"]["base"]["reward_8"]["values"] == pytest.approx([1.447227120399475])


def test_the_committed_settings_table_is_the_small_config():
    recorded = json.loads((RECORD / "results.json").read_text())
    cfg = load_config(SDPOExperimentConfig, PAPER_DIR / "configs", "small", [])
    table = claims.table(recorded["tables"], claims.SETTINGS_TABLE)
    chosen = {"sdpo": (3e-3, 1e-3), "ddpo": (3e-3, 1e-4), "d3po": (3e-3, 1e-4), "rebel": (1e-3, None)}
    assert table == json.loads(json.dumps(claims.settings_table(cfg, "small", chosen)))


def test_the_committed_base_precondition_is_the_recorded_base_rewards():
    recorded = json.loads((RECORD / "results.json").read_text())
    base = recorded["methods"]["base"]
    pre = claims.base_one_step(recorded["methods"])
    expected = (base["reward_1"]["mean"] - base["reward_8"]["mean"]) / base["reward_8"]["mean"]
    assert pre["value"] == pytest.approx(expected) and 0 < expected < 0.2 and pre["ok"]


def test_rerender_of_a_schema_1_record_needs_the_wall_time():
    recorded = json.loads((RECORD / "results.json").read_text())
    old = {k: v for k, v in recorded.items() if k not in ("wall_time_s", "protocol_notes", "claims")}
    old["schema"] = 1
    old["notes"] = recorded["notes"][:3]
    old["tables"] = recorded["tables"][:2]
    with pytest.raises(ValueError, match="wall_time_s"):
        claims.rerender(old, commit="0" * 40)
    new = claims.rerender(old, commit="1234567" + "0" * 33, wall_time_s=5.0)
    assert new["wall_time_s"] == 5.0
    assert "claims re-rendered into schema 2 at 1234567 from the run recorded at a5c78be; the " \
           "measurements are unchanged" in new["notes"]
    # without a settings table the equal-terms precondition cannot be met
    ranking = new["claims"][1]
    (terms,) = [p for p in ranking["preconditions"] if p["name"].startswith("equal terms")]
    assert terms["value"] == "not recorded" and not terms["ok"]


# ---------------------------------------------------------------------------------------------
# hand-made inputs


def _inputs(*, sdpo=1.5, baseline=(0.1, 0.6), sparse=1.0, base=(2.0, 2.1), lrs=(1e-4, 3e-4, 1e-3),
            clips=(1e-4, 1e-3, 1e-2), curve_end=0.0, seeds=5):
    """methods/tables with constant per-step gains plus small noise: SDPO gains `sdpo`
    everywhere, each baseline `baseline[0]` at 1 step and `baseline[1]` above; base reward
    `base[0]` at 1 step, `base[1]` at 2-8; curves flat until a final jump of `curve_end`."""
    rng = np.random.default_rng(0)
    base_reward = {n: base[0] if n == 1 else base[1] for n in STEPS}
    gains = {"sdpo": dict.fromkeys(STEPS, sdpo), "sdpo-sparse": dict.fromkeys(STEPS, sparse),
             **{b: {n: baseline[0] if n == 1 else baseline[1] for n in STEPS} for b in claims.BASELINES}}
    methods = {"base": {f"reward_{n}": summarize([base_reward[n]]) for n in STEPS}}
    for name, per in gains.items():
        k = 2 if name == "sdpo-sparse" else seeds
        methods[name] = {}
        for n in STEPS:
            g = per[n] + rng.normal(0, 0.01, k)
            methods[name][f"reward_{n}"] = summarize(base_reward[n] + g)
            methods[name][f"gain_{n}"] = summarize(g)
    curve = [0.0] * 8 + [curve_end]
    curves = claims.curves_table({name: {n: (list(range(0, 90, 10)), [base_reward[n] + y for y in curve])
                                         for n in STEPS} for name in gains})
    settings = {"title": claims.SETTINGS_TABLE, "columns": [], "rows": [
        [m, list(lrs), knob or "none", list(clips) if knob else [], "sweep"]
        for m, knob in claims.TRUST_REGION.items()]}
    return methods, [curves, settings], list(range(seeds))


def _verdicts(*args, **kwargs):
    return {c["claim"]: c for c in claims.paper_claims(*_inputs(*args, **kwargs))}


def test_clear_effects_with_every_precondition_met_hold():
    found = _verdicts()
    assert len(found) == 8
    assert {c["verdict"] for c in found.values()} == {"holds"}, [
        (k, c["reason"]) for k, c in found.items() if c["verdict"] != "holds"]
    assert all(p["ok"] for c in found.values() for p in c["preconditions"])


def test_a_clear_opposite_ranking_fails():
    found = _verdicts(sdpo=0.2, baseline=(1.0, 1.2))
    for b in claims.BASELINES:
        assert found[f"SDPO beats {b.upper()} at every step count"]["verdict"] == "fails"


def test_a_base_that_is_noise_at_one_step_makes_every_claim_inconclusive():
    found = _verdicts(base=(0.3, 2.9))
    for c in found.values():
        assert c["verdict"] == "inconclusive"
        assert c["reason"].startswith("precondition failed: base works at 1 step")
    # within 20 %: the paper's SD-Turbo (6.1 vs 5.75) passes
    assert _verdicts(base=(6.1, 5.75))["SDPO beats DDPO at every step count"]["verdict"] == "holds"


def test_one_shared_learning_rate_makes_only_the_ranking_claims_inconclusive():
    found = _verdicts(baseline=(2.5, 2.7), lrs=(1e-3,))
    for b in claims.BASELINES:
        c = found[f"SDPO beats {b.upper()} at every step count"]
        assert c["verdict"] == "inconclusive" and "equal terms" in c["reason"]
        assert all(case["verdict"] == "fails" for case in c["cases"].values())  # the data alone would fail
    assert found["SDPO improves the reward at every step count (step generalization)"]["verdict"] == "holds"
    # a clipped method with a single clip value is not on equal terms either
    found = _verdicts(clips=(1e-4,))
    assert "equal terms" in found["SDPO beats D3PO at every step count"]["reason"]


def test_training_still_moving_or_no_curve_is_not_converged():
    moving = _verdicts(curve_end=0.5)
    assert all(c["verdict"] == "inconclusive" and "converged (budget)" in c["reason"]
               for c in moving.values())
    methods, tables, seeds = _inputs()
    for c in claims.paper_claims(methods, tables[1:], seeds):
        (conv,) = [p for p in c["preconditions"] if p["name"].startswith("converged")]
        assert conv["value"] == "not recorded" and c["verdict"] == "inconclusive"


def test_underpowered_claims_give_seeds_needed_and_the_power_table_lists_every_case():
    methods, tables, seeds = _inputs(seeds=3)
    methods["sdpo"]["gain_8"] = summarize([0.2, 1.4, 0.7])  # wide around the 0.65 threshold
    found, out_tables = claims.with_claims(methods, tables, seeds)
    first = found[0]
    assert first["verdict"] == "inconclusive" and first["seeds_needed"] > 3
    assert "8 steps: underpowered" in first["reason"]
    power = claims.table(out_tables, claims.POWER_TABLE)
    assert len(power["rows"]) == sum(len(c["cases"]) for c in found)
    assert power["rows"][3][1] == "8 steps" and power["rows"][3][-1] == first["seeds_needed"]
    # one seed in common gives no interval and says so
    methods["sdpo-sparse"] = {k: summarize(v["values"][:1]) for k, v in methods["sdpo-sparse"].items()}
    found, out_tables = claims.with_claims(methods, tables, seeds)
    assert found[-1]["verdict"] == "inconclusive" and found[-1]["ours"].endswith("(seeds [0])")
    assert claims.table(out_tables, claims.POWER_TABLE)["rows"][-1][-1] == "no variance estimate"
    # re-computing replaces the power table rather than adding a second one
    _, again = claims.with_claims(methods, out_tables, seeds)
    assert [t["title"] for t in again] == [t["title"] for t in out_tables]


def test_least_at_one_step_is_a_paired_difference_of_gains():
    found = _verdicts(baseline=(0.8, 0.2))  # the baselines gain most at one step
    for b in claims.BASELINES:
        c = found[f"{b.upper()} improves least at 1 step"]
        assert c["verdict"] == "fails" and c["direction"] == "less"
        assert c["cases"]["vs 2 steps"]["value"] == pytest.approx(0.6, abs=0.05)


def test_base_one_step_precondition_on_hand_made_base_rows():
    def base(r1, r8):
        return {"base": {"reward_1": {"mean": r1}, "reward_2": {"mean": r1}, "reward_4": {"mean": r8},
                         "reward_8": {"mean": r8}}}

    ok = claims.base_one_step(base(1.72, 1.50))  # a base that works at one step (+14.7 %)
    assert ok["ok"] and ok["value"] == pytest.approx((1.72 - 1.50) / 1.50)
    noise = claims.base_one_step(base(0.30, 2.92))  # the ε base of issue 22: −90 %
    assert not noise["ok"] and noise["value"] == pytest.approx((0.30 - 2.92) / 2.92)
    edge = claims.base_one_step(base(1.21, 1.0))  # 21 % off: outside the 20 % band
    assert not edge["ok"]


def test_a_baseline_that_did_not_improve_at_the_largest_budget_leaves_least_at_one_step_open():
    # gains ~0 at every budget: "gain at 1 − gain at n" is noise around 0, never a verdict
    found = _verdicts(baseline=(0.06, 0.0))
    for b in claims.BASELINES:
        c = found[f"{b.upper()} improves least at 1 step"]
        (pre,) = [p for p in c["preconditions"] if p["name"].startswith("improved")]
        assert not pre["ok"] and pre["value"] == pytest.approx(0.0, abs=0.02)
        assert c["verdict"] == "inconclusive" and "improved" in c["reason"]
    # the same method with a real gain at the larger budgets passes the check
    ok = claims.improved(_inputs()[0], "ddpo")
    assert ok["ok"] and ok["value"] == pytest.approx(0.6, abs=0.02)
    # one seed gives no interval: not shown to improve
    methods = _inputs(seeds=1)[0]
    assert not claims.improved(methods, "rebel")["ok"]
