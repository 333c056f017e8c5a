"""CopyrightShield's claims and their verdicts, computed from a results.json's `methods`
block, so a fresh `reproduce` and a re-render of a recorded run use the same code.

Units: every (seed, target) pair (seed-major), because each fine-tune attacks all targets at
once and the runs of one seed share its poisons, clean data and evaluation noise: a defence
run and the undefended one pair by (seed, target). Tests: 95 % paired t intervals over
those units (`shared.results`).

Preconditions (issue 18):
- the undefended attack infringes: mean CIR of `attack` ≥ `INFRINGES` (else no defence,
  geometry or inversion effect can show);
- the clean model does not copy: mean CIR of `clean` (same budget, no poisons) ≤ `NO_COPY`;
- converged: every compared run's mean ε-MSE curve moved ≤ `PLATEAU_TOL` over the last 20 %.

FAE is censored at one evaluation after the last epoch for a target that is never copied
(its value is then epochs + 1 / evals_per_epoch); the table says how many were censored.

    python -m papers.copyright_shield.claims rerender papers/copyright_shield/results/small
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from shared.results import (
    make_claim,
    mean_interval,
    paired,
    plateaued,
    precondition,
    protocol_note,
    write_results,
)

PAPER_F1 = 0.709  # v1 average detection F1
PAPER_FAE, PAPER_CIR = 0.681, -0.514  # v1 relative changes under the defence
INFRINGES = 0.1  # mean CIR of the undefended attack needed for any defence claim
NO_COPY = 0.02  # mean CIR the clean control may reach
PLATEAU_TOL = 0.03  # ε-MSE moved over the last 20 % of a run
CURVES_TABLE = "ε-MSE during fine-tuning (mean over seeds)"
CALIBRATION_TABLE = "similarity calibration (before any attack)"


def values(methods: Mapping, name: str, metric: str) -> list[float] | None:
    entry = methods.get(name, {}).get(metric)
    return None if entry is None else [float(v) for v in entry["values"]]


def _mean(methods: Mapping, name: str, metric: str) -> float:
    v = values(methods, name, metric)
    return float(np.mean(v)) if v else float("nan")


def _curve(tables: list, name: str) -> list[float] | None:
    table = next((t for t in tables if t["title"] == CURVES_TABLE), None)
    row = next((r for r in table["rows"] if r[0] == name), None) if table else None
    return None if row is None else [float(v) for v in row[2]]


def _converged(tables: list, names: list[str]) -> list[dict]:
    out = []
    for name in names:
        curve = _curve(tables, name)
        if curve is None:
            out.append(precondition(f"converged: {name}", False, "not recorded", "a recorded curve"))
        else:
            out.append(plateaued(name, curve, PLATEAU_TOL))
    return out


def calibrated(tables: list) -> list[dict]:
    """The threshold lies above the clean images' 99th percentile and below the near-copies'
    1st percentile (none when the run recorded no calibration)."""
    table = next((t for t in tables if t["title"] == CALIBRATION_TABLE), None)
    if table is None:
        return []
    row = dict(zip(table["columns"], table["rows"][0], strict=True))
    return [precondition("threshold separates clean images from near-copies", bool(row["separated"]),
                         row["threshold"], f"clean q99 {row['clean q99']} < threshold < near-copy q01 "
                         f"{row['near-copy q01']}")]


def base_preconditions(methods: Mapping, tables: list = ()) -> list[dict]:
    pre = calibrated(list(tables))
    if "attack" in methods:
        pre.append(precondition("undefended attack infringes", _mean(methods, "attack", "cir") >= INFRINGES,
                                _mean(methods, "attack", "cir"), f"mean CIR ≥ {INFRINGES}"))
    if "clean" in methods:
        pre.append(precondition("clean model does not copy", _mean(methods, "clean", "cir") <= NO_COPY,
                                _mean(methods, "clean", "cir"), f"mean CIR ≤ {NO_COPY}"))
    return pre


def paper_claims(methods: Mapping, tables: list) -> tuple[list[dict], list[dict]]:
    """(claims, protocol notes) from the per-unit values of every run name."""
    claims, notes = [], []
    pre = base_preconditions(methods, tables)
    if "detection" in methods:
        f1 = values(methods, "detection", "f1_joint")
        claims.append(make_claim(
            "CopyrightShield detection (joint feature × spatial score) reaches the paper's F1",
            f"F1 {PAPER_F1} (v1, averaged over targets)", metric="F1 of the joint detector, poisons positive",
            direction="greater", min_effect=PAPER_F1, estimate=mean_interval(f1)))
        cases = {b: paired(f1, values(methods, "detection", f"f1_{b}"))
                 for b in ("whole-image", "feature", "spatial")}
        claims.append(make_claim(
            "the joint score detects better than whole-image similarity, feature-only and spatial-only",
            "joint beats each single signal (v1 ablation)", metric="F1 joint − F1 baseline",
            direction="greater", min_effect=0.0, cases=cases))
    if "attack" in methods:
        for variant, label in (("differentiable", "the differentiable L_protect"), ("hinge", "the hinge L_protect [recon]")):
            if variant not in methods:
                continue
            conv = _converged(tables, ["attack", variant])
            claims.append(make_claim(
                f"FAE rises under {label}", f"FAE +{PAPER_FAE * 100:.1f} % (relative)",
                metric="FAE defended − FAE undefended (epochs)", direction="greater", min_effect=0.0,
                estimate=paired(values(methods, variant, "fae"), values(methods, "attack", "fae")),
                preconditions=[*pre, *conv]))
            claims.append(make_claim(
                f"CIR falls under {label}", f"CIR {PAPER_CIR * 100:.1f} % (relative)",
                metric="CIR defended − CIR undefended", direction="less", min_effect=0.0,
                estimate=paired(values(methods, variant, "cir"), values(methods, "attack", "cir")),
                preconditions=[*pre, *conv]))
        if "released" in methods:
            gap = paired(values(methods, "released", "cir"), values(methods, "attack", "cir"))
            notes.append(protocol_note(
                "the released L_protect (.item(), no gradient) changes nothing: CIR released − undefended",
                gap=gap, detail="same seed, same draws: the added term is a constant, so every update "
                                "is the undefended one"))
        geometry = {}
        for name in ("flip", "rotate"):
            if name in methods:
                geometry[name] = paired(values(methods, name, "mean_sim_moved"), values(methods, name, "mean_sim"))
        if geometry:
            claims.append(make_claim(
                "the replica follows the poisons' geometry (flipped / rotated poisons give a flipped / "
                "rotated copy)", "key observation (qualitative)",
                metric="similarity to the moved target − to the original", direction="greater",
                min_effect=0.0, cases=geometry, preconditions=pre))
        if "unlinked" in methods:
            claims.append(make_claim(
                "breaking the caption–image link of the poisons stops the copying",
                "key observation (qualitative)", metric="CIR unlinked − CIR undefended",
                direction="less", min_effect=0.0,
                estimate=paired(values(methods, "unlinked", "cir"), values(methods, "attack", "cir")),
                preconditions=pre))
    return claims, notes


def relative_table(methods: Mapping) -> dict:
    """FAE and CIR per run, absolute and relative to the undefended attack (paper's form)."""
    rows = []
    base_fae, base_cir = _mean(methods, "attack", "fae"), _mean(methods, "attack", "cir")
    paper = {"differentiable": (f"+{PAPER_FAE * 100:.1f} %", f"{PAPER_CIR * 100:.1f} %")}
    for name in ("attack", "released", "differentiable", "hinge", "clean"):
        if name not in methods:
            continue
        fae, cir = _mean(methods, name, "fae"), _mean(methods, name, "cir")
        rel_fae = f"{(fae - base_fae) / base_fae * 100:+.1f} %" if base_fae else "-"
        rel_cir = f"{(cir - base_cir) / base_cir * 100:+.1f} %" if base_cir else "-"
        censored = int(_mean(methods, name, "fae_censored") * len(values(methods, name, "fae")))
        rows.append([name, round(fae, 3), censored, round(cir, 3), rel_fae, rel_cir,
                     *paper.get(name, ("-", "-"))])
    return {"title": "FAE and CIR (mean over seeds × targets)",
            "columns": ["run", "FAE (epochs)", "FAE censored", "CIR", "FAE vs attack", "CIR vs attack",
                        "paper FAE", "paper CIR"], "rows": rows}


def rerender(directory: Path) -> Path:
    path = directory / "results.json"
    results = json.loads(path.read_text())
    results["claims"], results["protocol_notes"] = paper_claims(results["methods"], results["tables"])
    return write_results(directory, results)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m papers.copyright_shield.claims")
    parser.add_argument("command", choices=["rerender"])
    parser.add_argument("directory", type=Path)
    args = parser.parse_args(argv)
    if not (args.directory / "results.json").is_file():
        print(f"error: {args.directory} holds no results.json", file=sys.stderr)
        return 2
    rerender(args.directory)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
