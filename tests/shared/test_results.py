import json

import pytest

from shared.results import (
    at_least,
    at_most,
    build_results,
    counts_text,
    fixed,
    line_plot,
    load_results,
    make_claim,
    mean_interval,
    paired,
    plateau_change,
    plateaued,
    protocol_note,
    render_markdown,
    seeds_needed,
    slope,
    summarize,
    validate,
    verdict_counts,
    welch,
    write_results,
)


def test_summarize_is_mean_and_sample_std():
    s = summarize([1.0, 2.0, 3.0, 4.0])
    assert s["mean"] == 2.5
    assert s["std"] == pytest.approx((5 / 3) ** 0.5, rel=1e-15)
    assert s["n"] == 4 and s["values"] == [1.0, 2.0, 3.0, 4.0]
    assert summarize([7.0])["std"] == 0.0


def _results():
    return build_results(
        paper="demo", title="Demo paper", config="smoke", seeds=[0, 1],
        methods={"sgd": {"acc": summarize([0.5, 0.7])}},
        claims=[make_claim("A beats B", "0.9", metric="acc", direction="greater",
                           estimate=paired([0.5, 0.6, 0.7], [0.9, 0.9, 0.9]), ours="0.6"),
                make_claim("C", "-", metric="x", direction="less", estimate=fixed(1.0), ours="x")],
        tables=[{"title": "Extra", "columns": ["a", "b"], "rows": [[1, 2.5]]}],
        plots=["plots/curve.png"])


def test_results_round_trip_and_markdown(tmp_path):
    path = write_results(tmp_path, _results())
    loaded = load_results(path)
    assert loaded["methods"]["sgd"]["acc"]["mean"] == pytest.approx(0.6)
    assert len(loaded["git"]["commit"]) > 0 and "torch" in loaded["versions"]
    md = (tmp_path / "RESULTS.md").read_text()
    assert "| 1 | A beats B | 0.9 | 0.6 | **fails** |" in md
    assert "| 2 | C | - | x | *inconclusive* | no interval (1 value) |" in md
    assert "wall time" in md
    assert "| sgd | 0.6 ± 0.1414 |" in md
    assert "## Extra" in md and "![curve](plots/curve.png)" in md
    assert md == render_markdown(loaded)


@pytest.mark.parametrize("breakage", ["drop_claims", "bad_summary", "bad_claim"])
def test_validate_rejects_malformed_results(breakage):
    res = json.loads(json.dumps(_results()))
    if breakage == "drop_claims":
        del res["claims"]
    elif breakage == "bad_summary":
        res["methods"]["sgd"]["acc"] = 0.6
    else:
        res["claims"][0].pop("verdict")
    with pytest.raises((ValueError, TypeError)):
        validate(res)


def test_line_plot_writes_a_png(tmp_path):
    path = line_plot(tmp_path / "p.png", {"a": ([1, 2, 3], [1, 4, 9], [0.1, 0.1, 0.1]),
                                          "b": ([1, 2, 3], [2, 3, 4])},
                     xlabel="x", ylabel="y", logx=True, logy=True)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_line_plot_keeps_a_colour_given_in_the_format_string(tmp_path, recwarn):
    line_plot(tmp_path / "p.png", {"ref": ([1, 2], [1, 2]), "a": ([1, 2], [2, 1])},
              xlabel="x", ylabel="y", styles={"ref": "k--"}, colors={"a": "C3"})
    assert not [w for w in recwarn if "redundantly defined" in str(w.message)]


# --- verdicts -------------------------------------------------------------------------------


def test_paired_interval_is_the_t_interval_of_the_differences():
    est = paired([1.0, 2.0, 4.0], [0.0, 0.0, 1.0])  # differences 1, 2, 3
    assert est["value"] == 2.0 and est["n"] == 3
    se = 1.0 / 3 ** 0.5
    assert est["se"] == pytest.approx(se, rel=1e-12)
    assert est["lo"] == pytest.approx(2.0 - 4.302652729911275 * se, rel=1e-9)
    assert est["hi"] == pytest.approx(2.0 + 4.302652729911275 * se, rel=1e-9)


def test_welch_and_slope_intervals_on_hand_made_values():
    est = welch([1.0, 2.0, 3.0], [0.0, 0.0, 0.0])
    assert est["value"] == 2.0 and est["se"] == pytest.approx((1 / 3) ** 0.5)
    fit = slope([1, 2, 3, 4], [2.0, 4.1, 5.9, 8.0])
    assert fit["value"] == pytest.approx(1.98, abs=1e-12) and fit["lo"] < 1.98 < fit["hi"]
    exp = slope([10, 100, 1000], [3.0, 30.0, 300.0], log=True)
    assert exp["value"] == pytest.approx(1.0, abs=1e-12) and exp["se"] == pytest.approx(0, abs=1e-9)


def _claim(a, b, **kw):
    return make_claim("A beats B", "A 0.9 vs B 0.6", metric="acc", direction="greater",
                      estimate=paired(a, b), **kw)


def test_a_clear_effect_holds():
    c = _claim([0.80, 0.82, 0.81, 0.83], [0.60, 0.61, 0.62, 0.60], min_effect=0.05)
    assert c["verdict"] == "holds" and c["reason"] == "" and c["seeds_needed"] is None


def test_a_clear_opposite_effect_fails():
    c = _claim([0.50, 0.52, 0.51], [0.60, 0.61, 0.62], min_effect=0.05)
    assert c["verdict"] == "fails"


def test_an_effect_clearly_below_the_smallest_effect_of_interest_fails():
    c = _claim([0.61, 0.62, 0.63], [0.60, 0.61, 0.62], min_effect=0.05)  # +0.01 exactly
    assert c["verdict"] == "fails"


def test_wide_intervals_are_inconclusive_with_a_seeds_needed_figure():
    c = _claim([0.9, 0.5, 0.8], [0.6, 0.6, 0.6], min_effect=0.02)
    assert c["verdict"] == "inconclusive"
    assert "underpowered" in c["reason"] and "contains 0 and the smallest effect" in c["reason"]
    assert isinstance(c["seeds_needed"], int) and c["seeds_needed"] > 3
    assert f"~{c['seeds_needed']} seeds" in c["reason"]


def test_seeds_needed_follows_the_normal_power_formula():
    est = {"value": 0.3, "se": 0.1, "seeds": 4, "lo": 0.0, "hi": 0.6, "n": 4}
    # sd = 0.2; smallest n with (t_.975,n-1 + t_.8,n-1) · 0.2/√n ≤ 0.2: n = 9 gives
    # (2.306 + 0.889)/3 = 1.065 > 1, n = 10 gives (2.262 + 0.883)/3.162 = 0.995
    assert seeds_needed(est, +1, 0.1) == 10
    assert seeds_needed({**est, "value": 0.1}, +1, 0.1) is None  # sits on the threshold
    assert seeds_needed({**est, "se": None}, +1, 0.1) is None


def test_one_seed_is_inconclusive_never_holds():
    c = _claim([0.9], [0.1], min_effect=0.05)
    assert c["verdict"] == "inconclusive" and "no interval" in c["reason"]


@pytest.mark.parametrize("a, b", [([0.80, 0.82, 0.81], [0.60, 0.61, 0.62]),   # would hold
                                  ([0.50, 0.52, 0.51], [0.60, 0.61, 0.62])])  # would fail
def test_a_failed_precondition_is_inconclusive_naming_it(a, b):
    pre = [at_least("mechanism acted: mask moved", 0.001, 0.01),
           at_most("stays below the bound", 0.5, 1.0)]
    c = _claim(a, b, min_effect=0.05, preconditions=pre)
    assert c["verdict"] == "inconclusive"
    assert "precondition failed: mechanism acted: mask moved" in c["reason"]
    assert "stays below the bound" not in c["reason"]


def test_no_results_file_accepts_holds_or_fails_with_a_failed_precondition():
    c = _claim([0.80, 0.82, 0.81], [0.60, 0.61, 0.62], min_effect=0.05)
    forged = {**c, "preconditions": [at_least("converged", 0.0, 1.0)]}
    res = build_results(paper="demo", title="Demo", config="smoke", seeds=[0, 1, 2], methods={},
                        claims=[forged])
    with pytest.raises(ValueError, match="failed precondition"):
        validate(res)


def test_every_case_must_hold_and_one_failing_case_fails_the_claim():
    good, bad = paired([1.0, 1.1, 1.2], [0.0, 0.0, 0.1]), paired([0.0, 0.1, 0.0], [1.0, 1.0, 1.1])
    wide = paired([1.0, -1.0, 0.5], [0.0, 0.0, 0.0])
    kw = dict(metric="m", direction="greater")
    assert make_claim("c", "p", cases={"a": good, "b": good}, **kw)["verdict"] == "holds"
    assert make_claim("c", "p", cases={"a": good, "b": bad}, **kw)["verdict"] == "fails"
    mixed = make_claim("c", "p", cases={"a": good, "b": wide}, **kw)
    assert mixed["verdict"] == "inconclusive" and mixed["reason"].startswith("b: underpowered")


def test_less_direction_and_non_inferiority_margin():
    lower = paired([0.1, 0.2, 0.15], [0.5, 0.6, 0.55])
    assert make_claim("A lower", "p", metric="loss", direction="less",
                      estimate=lower)["verdict"] == "holds"
    same = paired([0.50, 0.49, 0.51, 0.50], [0.50, 0.50, 0.50, 0.50])
    assert make_claim("A not worse than B by 5 points", "p", metric="acc", direction="greater",
                      min_effect=-0.05, estimate=same)["verdict"] == "holds"


def test_protocol_notes_are_never_counted_as_claims(tmp_path):
    c = _claim([0.80, 0.82, 0.81], [0.60, 0.61, 0.62], min_effect=0.05)
    note = protocol_note("oracle fusion ≥ each branch", gap=mean_interval([2.7, 9.3, 5.0]))
    res = build_results(paper="demo", title="Demo", config="smoke", seeds=[0, 1, 2], methods={},
                        claims=[c], protocol_notes=[note])
    assert verdict_counts(res) == {"holds": 1, "fails": 0, "inconclusive": 0}
    assert counts_text(res) == "1 holds · 0 fails · 0 inconclusive"
    write_results(tmp_path, res)
    md = (tmp_path / "RESULTS.md").read_text()
    assert "## Protocol notes" in md and "oracle fusion ≥ each branch" in md
    assert "**1 holds · 0 fails · 0 inconclusive**" in md


def test_plateau_is_measured_over_the_last_fifth_of_the_mean_curve():
    rising = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
    assert plateau_change(rising) == pytest.approx(0.1)
    assert plateau_change([[0, 1, 1, 1, 1, 1.0], [0, 1, 1, 1, 1, 1.2]]) == pytest.approx(0.1)
    assert not plateaued("sgd", rising, tol=0.05)["ok"]
    assert plateaued("sgd", [0.0, 0.5, 0.6, 0.6, 0.6, 0.61], tol=0.05)["ok"]


def test_reproduce_prints_one_summary_line(tmp_path, capsys):
    c = _claim([0.9, 0.5, 0.8], [0.6, 0.6, 0.6], min_effect=0.02)
    res = build_results(paper="demo", title="Demo", config="small", seeds=[0, 1, 2], methods={},
                        claims=[c])
    path = write_results(tmp_path, res)
    assert capsys.readouterr().out.strip() == \
        f"demo small: 0 holds · 0 fails · 1 inconclusive → {path}"
