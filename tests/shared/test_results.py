import json

import pytest

from shared.results import (
    build_results,
    claim,
    line_plot,
    load_results,
    render_markdown,
    summarize,
    validate,
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
        claims=[claim("A beats B", "0.9", "0.6", False), claim("C", "-", "x", None)],
        tables=[{"title": "Extra", "columns": ["a", "b"], "rows": [[1, 2.5]]}],
        plots=["plots/curve.png"])


def test_results_round_trip_and_markdown(tmp_path):
    path = write_results(tmp_path, _results())
    loaded = load_results(path)
    assert loaded["methods"]["sgd"]["acc"]["mean"] == pytest.approx(0.6)
    assert len(loaded["git"]["commit"]) > 0 and "torch" in loaded["versions"]
    md = (tmp_path / "RESULTS.md").read_text()
    assert "| A beats B | 0.9 | 0.6 | **no** |" in md
    assert "| C | - | x | n/a |" in md
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
        res["claims"][0].pop("holds")
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


def test_significantly_lower_needs_the_paired_difference_below_zero_by_two_standard_errors():
    from shared.results import significantly_lower

    assert significantly_lower([0.1, 0.2, 0.3], [0.5, 0.6, 0.7])  # diff −0.4 with SE 0
    assert not significantly_lower([0.1, 0.9, 0.3], [0.5, 0.6, 0.7])  # mean −0.17, SE 0.28
    assert not significantly_lower([0.1], [0.5])  # one seed proves nothing
    assert not significantly_lower([0.5, 0.6], [0.5, 0.6])
