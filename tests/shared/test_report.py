import json

from shared.report import main, render_html, render_report
from shared.results import build_results, make_claim, paired, summarize, write_results


def _papers(tmp_path, *slugs):
    papers = tmp_path / "papers"
    for slug in slugs:
        (papers / slug).mkdir(parents=True)
        (papers / slug / "__main__.py").write_text("")
    return papers


def _write(path, config, value, acc=(0.5, 0.6, 0.7), slug="fwa"):
    claim = make_claim("c", "p", metric="acc", direction="greater", ours=value,
                       estimate=paired([1.0, 1.1, 1.2], [0.0, 0.1, 0.1]))
    write_results(path, build_results(paper=slug, title="FWA", config=config, seeds=[0, 1, 2],
                                      methods={"sgd": {"acc": summarize(acc)}}, claims=[claim],
                                      plots=["plots/a.png"], wall_time_s=75.0), announce=False)


def test_report_takes_the_named_config_and_never_a_smoke_run(tmp_path):
    papers, runs = _papers(tmp_path, "fwa"), tmp_path / "runs"
    small = runs / "fwa" / "small" / "reproduce" / "20260101-000000-000000"
    smoke = runs / "fwa" / "smoke" / "reproduce" / "20260102-000000-000000"
    _write(small, "small", "small-number")
    _write(smoke, "smoke", "smoke-number")
    out = runs / "REPORT.md"
    text = render_report(runs, out, papers_dir=papers)
    assert "small-number" in text and "smoke-number" not in text
    assert "| [fwa](#fwa) | small | latest run |" in text
    assert "1 holds · 0 fails · 0 inconclusive" in text and "| 1 min 15 s |" in text
    assert "![a](fwa/small/reproduce/20260101-000000-000000/plots/a.png)" in text
    smoke_text = render_report(runs, out, config="smoke", papers_dir=papers)
    assert "smoke-number" in smoke_text and "SMOKE" in smoke_text


def test_report_falls_back_to_the_committed_record_and_says_so(tmp_path):
    papers, runs = _papers(tmp_path, "fwa", "neuron"), tmp_path / "runs"
    _write(papers / "fwa" / "results" / "small", "small", "recorded-number")
    text = render_report(runs, runs / "REPORT.md", papers_dir=papers)
    assert "recorded-number" in text and "committed record (no run here yet)" in text
    assert "| neuron | small | - | - | not run yet (`make reproduce PAPER=neuron CONFIG=small`)" in text


def test_drift_check_flags_metrics_beyond_the_recorded_seed_spread(tmp_path):
    papers, runs = _papers(tmp_path, "fwa"), tmp_path / "runs"
    _write(papers / "fwa" / "results" / "small", "small", "x", acc=(0.5, 0.6, 0.7))  # std 0.1
    fresh = runs / "fwa" / "small" / "reproduce" / "20260101-000000-000000"
    _write(fresh, "small", "x", acc=(0.55, 0.65, 0.75))  # mean moved by 0.05 < 0.1
    assert "0 of 1 metrics beyond the seed spread" in render_report(runs, runs / "R.md", papers_dir=papers)
    _write(fresh, "small", "x", acc=(0.8, 0.9, 1.0))  # mean moved by 0.3 > 0.1
    text = render_report(runs, runs / "R.md", papers_dir=papers)
    assert "1 of 1 metrics beyond the seed spread" in text
    assert "| sgd | acc | 0.9 | 0.6 | 0.3 | 0.1 |" in text


def test_html_report_is_one_page_with_anchors_and_embedded_plots(tmp_path):
    papers, runs = _papers(tmp_path, "fwa"), tmp_path / "runs"
    run = runs / "fwa" / "small" / "reproduce" / "20260101-000000-000000"
    _write(run, "small", "x")
    (run / "plots").mkdir()
    (run / "plots" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\nfake")
    page = render_html(runs, papers_dir=papers)
    assert page.startswith("<!doctype html>") and 'id="fwa"' in page and 'href="#fwa"' in page
    assert "data:image/png;base64," in page and "<script>" in page


def test_make_report_renders_the_committed_results_of_every_paper(tmp_path, capsys):
    assert main(["--runs-dir", str(tmp_path / "runs")]) == 0
    text = (tmp_path / "runs" / "REPORT.md").read_text()
    assert (tmp_path / "runs" / "REPORT.html").exists()
    for slug in ("fwa", "dsgda", "harmodt", "sdpo", "spider", "neuron"):
        assert f"| [{slug}](#{slug}) | small | committed record" in text, slug
    out = capsys.readouterr().out
    assert "fwa small (committed):" in out


def test_every_committed_results_file_follows_the_schema(repo_root):
    from shared.results import load_results

    found = sorted((repo_root / "papers").glob("*/results/small/results.json"))
    assert len(found) >= 6
    for path in found:
        res = load_results(path)
        assert res["paper"] == path.parts[-4] and res["config"] == "small"
        json.dumps(res)


def test_a_smoke_report_goes_to_its_own_file(tmp_path):
    runs = tmp_path / "runs"
    assert main(["--runs-dir", str(runs), "--config", "smoke"]) == 0
    assert (runs / "REPORT-smoke.md").exists() and not (runs / "REPORT.md").exists()
