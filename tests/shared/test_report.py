from shared.report import render_report
from shared.results import build_results, claim, write_results


def test_report_uses_the_latest_results_of_each_paper(tmp_path):
    old = tmp_path / "fwa" / "small" / "reproduce" / "20260101-000000-000000"
    new = tmp_path / "fwa" / "smoke" / "reproduce" / "20260102-000000-000000"
    for path, value in ((old, "old-number"), (new, "new-number")):
        write_results(path, build_results(paper="fwa", title="FWA", config=path.parts[-3],
                                          seeds=[0], methods={},
                                          claims=[claim("c", "p", value, True)],
                                          plots=["plots/a.png"]))
    out = tmp_path / "REPORT.md"
    text = render_report(tmp_path, out)
    assert "new-number" in text and "old-number" not in text
    assert "| fwa | smoke |" in text and "| 1/1 |" in text
    assert "![a](fwa/smoke/reproduce/20260102-000000-000000/plots/a.png)" in text


def test_papers_without_results_are_listed_as_not_run(tmp_path):
    text = render_report(tmp_path, tmp_path / "REPORT.md")
    assert "| fwa | - | - | not run yet (`make reproduce PAPER=fwa`) | - |" in text
