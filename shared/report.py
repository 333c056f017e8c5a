"""`make report`: one page with every paper's latest reproduced claims and plots.

    python -m shared.report [--runs-dir runs] [--out runs/REPORT.md]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from shared.results import fmt, holds_mark, load_results
from shared.runs import REPO_ROOT


def paper_slugs(papers_dir: Path = REPO_ROOT / "papers") -> list[str]:
    return sorted(p.parent.name for p in papers_dir.glob("*/__main__.py"))


def latest_results(runs_dir: Path, slug: str) -> Path | None:
    found = list((runs_dir / slug).glob("*/reproduce/*/results.json"))
    return max(found, key=lambda p: p.parent.name) if found else None


def render_report(runs_dir: Path, out: Path) -> str:
    lines = ["# Reproduction report", "",
             "Latest `reproduce` run of each paper (built by `make report`).", "",
             "| Paper | Config | Commit | Claims holding | Results |", "|---|---|---|---|---|"]
    sections = []
    for slug in paper_slugs():
        path = latest_results(runs_dir, slug)
        if path is None:
            lines.append(f"| {slug} | - | - | not run yet (`make reproduce PAPER={slug}`) | - |")
            continue
        res = load_results(path)
        held = sum(c["holds"] is True for c in res["claims"])
        checked = sum(c["holds"] is not None for c in res["claims"])
        rel = Path(os.path.relpath(path.parent, out.parent))
        commit = res["git"]["commit"][:10] + ("+dirty" if res["git"].get("dirty") else "")
        lines.append(f"| {slug} | {res['config']} | `{commit}` | {held}/{checked} | "
                     f"[RESULTS.md]({rel / 'RESULTS.md'}) |")
        sec = [f"## {res.get('title', slug)} ({res['config']})", "",
               "| Claim | Paper | Ours | Holds |", "|---|---|---|---|"]
        sec += [f"| {c['claim']} | {fmt(c['paper'])} | {fmt(c['ours'])} | {holds_mark(c['holds'])} |"
                for c in res["claims"]]
        sec += [""] + [f"![{Path(p).stem}]({rel / p})" for p in res.get("plots", [])]
        sections.append("\n".join(sec))
    return "\n".join(lines) + "\n\n" + "\n\n".join(sections) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.report")
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument("--out", default=None, help="default: <runs-dir>/REPORT.md")
    args = parser.parse_args(argv)
    runs_dir = Path(args.runs_dir)
    out = Path(args.out) if args.out else runs_dir / "REPORT.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_report(runs_dir, out))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
