"""`make report`: one page with every paper's claims, verdict counts, wall time, commit, plots
and a drift check, as markdown and as one self-contained HTML page.

    python -m shared.report [--runs-dir runs] [--config small] [--out runs/REPORT.md]

Per paper it takes the latest `reproduce` run of the **named** config (default `small`) under
`<runs-dir>/<slug>/<config>/reproduce/`; a smoke run never stands in for it. With no run it
falls back to the committed record `papers/<slug>/results/<config>/` and says so. When both a
fresh run and the committed record exist, the drift check compares every metric's mean and
flags a difference larger than the committed run's seed spread (its sample std; with one seed,
any difference above 1e-9 relative).
"""

from __future__ import annotations

import argparse
import base64
import html
import os
from dataclasses import dataclass
from pathlib import Path

from shared.results import (
    commit_text,
    counts_text,
    fmt,
    load_results,
    verdict_mark,
    wall_text,
)
from shared.runs import REPO_ROOT

PAPERS_DIR = REPO_ROOT / "papers"


def paper_slugs(papers_dir: Path = PAPERS_DIR) -> list[str]:
    return sorted(p.parent.name for p in papers_dir.glob("*/__main__.py"))


def latest_results(runs_dir: Path, slug: str, config: str = "small") -> Path | None:
    """The newest results.json of `slug`'s reproduce runs of `config` (never another config)."""
    found = list((runs_dir / slug / config / "reproduce").glob("*/results.json"))
    return max(found, key=lambda p: p.parent.name) if found else None


def committed_results(slug: str, config: str = "small", papers_dir: Path = PAPERS_DIR) -> Path | None:
    path = papers_dir / slug / "results" / config / "results.json"
    return path if path.exists() else None


@dataclass
class Drift:
    method: str
    metric: str
    fresh: float
    recorded: float
    spread: float

    @property
    def diff(self) -> float:
        return self.fresh - self.recorded

    @property
    def flagged(self) -> bool:
        limit = self.spread if self.spread > 0 else 1e-9 * max(1.0, abs(self.recorded))
        return abs(self.diff) > limit


def drift(fresh: dict, recorded: dict) -> list[Drift]:
    """Every metric present in both runs: fresh mean against the recorded mean and spread."""
    out = []
    for method, metrics in fresh["methods"].items():
        for metric, summary in metrics.items():
            ref = recorded["methods"].get(method, {}).get(metric)
            if ref is None:
                continue
            out.append(Drift(method, metric, float(summary["mean"]), float(ref["mean"]),
                             float(ref["std"])))
    return out


@dataclass
class Entry:
    slug: str
    results: dict | None
    path: Path | None
    source: str  # "run", "committed" or "none"
    drifts: list[Drift]


def collect(runs_dir: Path, config: str = "small", papers_dir: Path = PAPERS_DIR) -> list[Entry]:
    entries = []
    for slug in paper_slugs(papers_dir):
        fresh, record = latest_results(runs_dir, slug, config), committed_results(slug, config, papers_dir)
        if fresh is not None:
            res = load_results(fresh)
            drifts = drift(res, load_results(record)) if record is not None else []
            entries.append(Entry(slug, res, fresh, "run", drifts))
        elif record is not None:
            entries.append(Entry(slug, load_results(record), record, "committed", []))
        else:
            entries.append(Entry(slug, None, None, "none", []))
    return entries


def _source_text(e: Entry, config: str) -> str:
    if e.source == "run":
        return f"latest run{' (SMOKE: not a reproduction)' if config == 'smoke' else ''}"
    return "committed record (no run here yet)"


def _drift_text(e: Entry) -> str:
    if e.source != "run":
        return "no fresh run to compare"
    if not e.drifts:
        return "no committed record to compare"
    flagged = sum(d.flagged for d in e.drifts)
    return f"{flagged} of {len(e.drifts)} metrics beyond the seed spread"


def render_report(runs_dir: Path, out: Path, config: str = "small",
                  papers_dir: Path = PAPERS_DIR) -> str:
    entries = collect(runs_dir, config, papers_dir)
    lines = ["# Reproduction report", "",
             f"Config `{config}`: the latest `reproduce` run of each paper, or its committed "
             "record when there is none here (built by `make report`). Verdicts count claims "
             "only; protocol notes are not claims.", "",
             "| Paper | Config | Source | Commit | Verdicts | Wall time | Drift | Results |",
             "|---|---|---|---|---|---|---|---|"]
    sections = []
    for e in entries:
        if e.results is None:
            lines.append(f"| {e.slug} | {config} | - | - | not run yet "
                         f"(`make reproduce PAPER={e.slug} CONFIG={config}`) | - | - | - |")
            continue
        res = e.results
        rel = Path(os.path.relpath(e.path.parent, out.parent))
        lines.append(f"| [{e.slug}](#{e.slug}) | {res['config']} | {_source_text(e, config)} | "
                     f"`{commit_text(res['git'], 10)}` | {counts_text(res)} | "
                     f"{wall_text(res.get('wall_time_s'))} | {_drift_text(e)} | "
                     f"[RESULTS.md]({rel / 'RESULTS.md'}) |")
        sec = [f'<a id="{e.slug}"></a>', "",
               f"## {res.get('title', e.slug)} ({res['config']}, {_source_text(e, config)})", "",
               f"{counts_text(res)}; commit `{commit_text(res['git'])}`; wall time "
               f"{wall_text(res.get('wall_time_s'))}", "",
               "| Claim | Paper | Ours | Verdict | Why inconclusive |", "|---|---|---|---|---|"]
        sec += [f"| {c['claim']} | {fmt(c['paper'])} | {fmt(c['ours'])} | "
                f"{verdict_mark(c['verdict'])} | {c['reason']} |" for c in res["claims"]]
        if res["protocol_notes"]:
            sec += ["", "| Protocol note | Gap |", "|---|---|"]
            sec += [f"| {n['note']} | {n['ours']} |" for n in res["protocol_notes"]]
        flagged = [d for d in e.drifts if d.flagged]
        if flagged:
            sec += ["", "Drift from the committed record (beyond its seed spread):", "",
                    "| Method | Metric | Fresh | Recorded | Difference | Recorded std |",
                    "|---|---|---|---|---|---|"]
            sec += [f"| {d.method} | {d.metric} | {fmt(d.fresh)} | {fmt(d.recorded)} | "
                    f"{fmt(d.diff)} | {fmt(d.spread)} |" for d in flagged]
        sec += [""] + [f"![{Path(p).stem}]({rel / p})" for p in res.get("plots", [])]
        sections.append("\n".join(sec))
    return "\n".join(lines) + "\n\n" + "\n\n".join(sections) + "\n"


_CSS = ("body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;margin:1em 0;font-size:13px}"
        "td,th{border:1px solid #ccc;padding:3px 6px;vertical-align:top}"
        "th{background:#f3f3f3;cursor:pointer}img{max-width:48%;margin:4px}"
        ".holds{color:#176417}.fails{color:#a31515;font-weight:bold}.inconclusive{color:#8a6d00}")
_JS = ("document.querySelectorAll('th').forEach(function(th){th.onclick=function(){"
       "var t=th.closest('table'),i=Array.prototype.indexOf.call(th.parentNode.children,th),"
       "rows=Array.prototype.slice.call(t.querySelectorAll('tbody tr')),asc=th.dataset.asc!=='1';"
       "rows.sort(function(a,b){var x=a.children[i].textContent,y=b.children[i].textContent,"
       "p=parseFloat(x),q=parseFloat(y);var c=(!isNaN(p)&&!isNaN(q))?p-q:x.localeCompare(y);"
       "return asc?c:-c});th.dataset.asc=asc?'1':'0';"
       "rows.forEach(function(r){t.querySelector('tbody').appendChild(r)})}})")


def _h(value) -> str:
    return html.escape(fmt(value))


def _html_table(columns: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _embed(path: Path) -> str:
    if not path.exists():
        return f"<p>(missing plot {html.escape(path.name)})</p>"
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


def render_html(runs_dir: Path, config: str = "small", papers_dir: Path = PAPERS_DIR) -> str:
    """One self-contained page: sortable tables, an anchor per paper, the plots embedded."""
    entries = collect(runs_dir, config, papers_dir)
    rows, sections = [], []
    for e in entries:
        if e.results is None:
            rows.append([html.escape(e.slug), config, "-", "-", "not run yet", "-", "-"])
            continue
        res = e.results
        rows.append([f'<a href="#{e.slug}">{html.escape(e.slug)}</a>', html.escape(res["config"]),
                     html.escape(_source_text(e, config)),
                     f"<code>{html.escape(commit_text(res['git'], 10))}</code>",
                     html.escape(counts_text(res)), html.escape(wall_text(res.get("wall_time_s"))),
                     html.escape(_drift_text(e))])
        claims = [[html.escape(c["claim"]), _h(c["paper"]), _h(c["ours"]),
                   f'<span class="{c["verdict"]}">{c["verdict"]}</span>', html.escape(c["reason"])]
                  for c in res["claims"]]
        sec = [f'<h2 id="{e.slug}">{html.escape(res.get("title", e.slug))} '
               f'({html.escape(res["config"])})</h2>',
               f"<p>{html.escape(counts_text(res))}; {html.escape(_source_text(e, config))}; "
               f"commit <code>{html.escape(commit_text(res['git']))}</code>; wall time "
               f"{html.escape(wall_text(res.get('wall_time_s')))}</p>",
               _html_table(["Claim", "Paper", "Ours", "Verdict", "Why inconclusive"], claims)]
        if res["protocol_notes"]:
            sec.append(_html_table(["Protocol note", "Gap"], [
                [html.escape(n["note"]), html.escape(n["ours"])] for n in res["protocol_notes"]]))
        flagged = [d for d in e.drifts if d.flagged]
        if flagged:
            sec.append("<p>Drift from the committed record (beyond its seed spread):</p>")
            sec.append(_html_table(["Method", "Metric", "Fresh", "Recorded", "Difference", "Std"], [
                [html.escape(d.method), html.escape(d.metric), _h(d.fresh), _h(d.recorded),
                 _h(d.diff), _h(d.spread)] for d in flagged]))
        sec += [_embed(e.path.parent / p) for p in res.get("plots", [])]
        sections.append("\n".join(sec))
    table = _html_table(["Paper", "Config", "Source", "Commit", "Verdicts", "Wall time", "Drift"],
                        rows)
    return ("<!doctype html><html><head><meta charset='utf-8'><title>Reproduction report</title>"
            f"<style>{_CSS}</style></head><body><h1>Reproduction report ({html.escape(config)})</h1>"
            f"{table}\n" + "\n".join(sections) + f"<script>{_JS}</script></body></html>\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.report")
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument("--config", default="small", help="which config's runs (default small)")
    parser.add_argument("--out", default=None,
                        help="default: <runs-dir>/REPORT.md for small, REPORT-<config>.md for "
                             "another config (and .html beside it)")
    args = parser.parse_args(argv)
    runs_dir = Path(args.runs_dir)
    name = "REPORT.md" if args.config == "small" else f"REPORT-{args.config}.md"
    out = Path(args.out) if args.out else runs_dir / name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_report(runs_dir, out, args.config))
    out.with_suffix(".html").write_text(render_html(runs_dir, args.config))
    print(f"wrote {out} and {out.with_suffix('.html')}")
    for e in collect(runs_dir, args.config):
        if e.results is not None:
            print(f"  {e.slug} {e.results['config']} ({e.source}): {counts_text(e.results)}"
                  + (f"; drift: {_drift_text(e)}" if e.source == "run" else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
