"""The paper's claims as checkable objects (shared.results schema 2), computed from the
`methods` of a results record, so a recorded run can be re-rendered:

    python -m papers.prompt_diffuser.claims rerender papers/prompt_diffuser/results/small

Every claim is on the mean held-out return over seeds (paired over seeds: every method tunes
the same seed's frozen policy on the same data). Preconditions: the frozen policy solves the
training goals with its own prompts (its return there / the demonstrations' return ≥
eval.min_train_return_ratio on every seed; Meta-World's 5 cm success is reported beside it), and
every compared method's tuning losses plateaued (per seed, loss / first loss moved ≤
tune.plateau_tol over the last 20 % of tuning; the pre-training loss likewise). A "beats"
claim also needs room to show: the full-data upper bound's mean held-out return must lie at
least MIN_EFFECT above each compared baseline's, or no method can beat that baseline by the
smallest effect without beating a policy trained on the held-out goals' own data.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path

import papers.prompt_diffuser
from papers.prompt_diffuser.config import PromptDiffuserConfig
from shared.config import load_config
from shared.results import (
    SCHEMA_VERSION,
    at_least,
    at_most,
    make_claim,
    paired,
    protocol_note,
    summary_line,
    validate,
    write_results,
)

MIN_EFFECT = 10.0  # return units (~1 % of an expert's 100-step reach return): the smallest effect of interest
NAMES = {"pd": "Prompt Diffuser", "pd-dm": "PD: DM only", "pd-guidance": "PD: guidance only",
         "pd-sum": "PD: naive sum", "ptdt": "Prompt-Tuning DT", "finetune": "Prompt-DT fine-tune",
         "prompt-dt": "Prompt-DT (no tuning)", "upper": "Full-data upper bound"}
FROZEN = "Frozen Prompt-DT (train goals)"
METRIC = "heldout_return"


def display(method: str, quality: str = "expert") -> str:
    return NAMES[method] + ("" if quality == "expert" else f" / {quality}")


def _values(methods: Mapping, name: str, metric: str = METRIC) -> list[float] | None:
    entry = methods.get(name, {}).get(metric)
    return entry["values"] if entry else None


def _policy_ok(cfg: PromptDiffuserConfig, methods: Mapping) -> list[dict]:
    out = []
    ratio = methods.get(FROZEN, {}).get("train_return_ratio")
    if ratio is not None:
        out.append(at_least("frozen Prompt-DT works on training goals with its own prompts",
                            min(ratio["values"]), cfg.eval.min_train_return_ratio,
                            "worst seed: return on eval.train_eval_goals training goals with "
                            "best-tail prompts / the demonstrations' return"))
    change = methods.get(FROZEN, {}).get("tail_change_loss")
    if change is not None:
        out.append(at_most("converged: Prompt-DT pre-training loss", max(change["values"]),
                           cfg.tune.plateau_tol, "worst seed; loss / first loss"))
    return out


def _converged(cfg: PromptDiffuserConfig, methods: Mapping, name: str) -> list[dict]:
    entry = methods.get(name, {})
    return [at_most(f"converged: {name} {key[12:]}", max(entry[key]["values"]), cfg.tune.plateau_tol,
                    "worst seed; loss / first loss over the last 20 % of tuning")
            for key in sorted(entry) if key.startswith("tail_change_")]


def _room(methods: Mapping, baselines) -> list[dict]:
    upper = _values(methods, display("upper"))
    if not upper:
        return []
    ceiling = sum(upper) / len(upper)
    out = []
    for b in baselines:
        vals = _values(methods, b)
        if vals:
            mean = sum(vals) / len(vals)
            out.append(at_least(f"room above {b}: upper bound − its mean held-out return",
                                ceiling - mean, MIN_EFFECT,
                                f"upper bound {ceiling:.1f}, {b} {mean:.1f}; the smallest "
                                "effect must fit below the full-data bound"))
    return out


def _versus(cfg, methods, claim: str, paper: str, a: str, others: Mapping[str, str]) -> dict | None:
    ours = _values(methods, a)
    cases = {label: paired(ours, _values(methods, b)) for label, b in others.items()
             if ours and _values(methods, b)}
    if not cases:
        return None
    pre = _policy_ok(cfg, methods) + _converged(cfg, methods, a)
    for b in others.values():
        pre += _converged(cfg, methods, b)
    pre += _room(methods, others.values())
    return make_claim(claim, paper, metric=f"{METRIC} (paired difference)", direction="greater",
                      min_effect=MIN_EFFECT, cases=cases, preconditions=pre)


def _robustness(cfg, methods) -> dict | None:
    cases, pre = {}, _policy_ok(cfg, methods)
    for q in ("medium", "random"):
        names = [display("pd"), display("pd", q), display("ptdt"), display("ptdt", q)]
        vals = [_values(methods, n) for n in names]
        if all(vals):
            drop_pd = [e - x for e, x in zip(vals[0], vals[1])]
            drop_pt = [e - x for e, x in zip(vals[2], vals[3])]
            cases[f"{q} initial demonstrations"] = paired(drop_pt, drop_pd)
            for n in names:
                pre += _converged(cfg, methods, n)
    if not cases:
        return None
    return make_claim(
        "Prompt Diffuser is robust to the initial prompt's quality where Prompt-Tuning DT "
        "degrades: PTDT's return drop (expert → q) exceeds Prompt Diffuser's",
        "Table 2: Prompt Diffuser stays near its expert-prompt return with medium / random "
        "initial prompts, Prompt-Tuning DT drops", metric="drop(PTDT) − drop(PD), held-out return",
        direction="greater", min_effect=MIN_EFFECT, cases=cases,
        preconditions=list({p["name"]: p for p in pre}.values()))


def paper_claims(cfg: PromptDiffuserConfig, methods: Mapping) -> list[dict]:
    pd = display("pd")
    claims = [
        _versus(cfg, methods, "Prompt Diffuser > Prompt-Tuning DT on held-out goals",
                "reach-v2 555.7 vs 472.5; average of four tasks 474.4 vs 450.3", pd,
                {"vs Prompt-Tuning DT": display("ptdt")}),
        _versus(cfg, methods, "Prompt Diffuser > Prompt-DT fine-tuned on the few-shot data",
                "average of four tasks 474.4 vs 450.0", pd, {"vs fine-tune": display("finetune")}),
        _versus(cfg, methods, "Gradient projection > DM only, guidance only and the naive sum",
                "ablation: projection beats each of the three", pd,
                {"vs DM only": display("pd-dm"), "vs guidance only": display("pd-guidance"),
                 "vs naive sum": display("pd-sum")}),
        _robustness(cfg, methods),
    ]
    return [c for c in claims if c is not None]


def paper_protocol_notes(methods: Mapping) -> list[dict]:
    upper, pd = _values(methods, display("upper")), _values(methods, display("pd"))
    if not (upper and pd):
        return []
    return [protocol_note(
        "The full-data upper bound is pre-trained on the held-out goals' own data (it is no "
        "few-shot method); the gap upper − Prompt Diffuser on held-out return (paper: 496.6 "
        "vs 474.4 on average)", gap=paired(upper, pd))]


def config_of(results: Mapping) -> PromptDiffuserConfig:
    """The named config a record was made with (its thresholds decide the preconditions)."""
    return load_config(PromptDiffuserConfig, Path(papers.prompt_diffuser.__file__).parent / "configs",
                       results["config"], [])


def rerender(results: Mapping) -> dict:
    """The record with its claims and protocol notes recomputed from its `methods`."""
    out = {**results, "schema": SCHEMA_VERSION,
           "claims": paper_claims(config_of(results), results["methods"]),
           "protocol_notes": paper_protocol_notes(results["methods"])}
    validate(out)
    return out


def _code_commit() -> str:
    """The latest commit of the claim code (this file and shared/results.py)."""
    import subprocess

    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(["git", "log", "-1", "--format=%H", "--", "papers/prompt_diffuser/claims.py",
                          "shared/results.py"], cwd=root, capture_output=True, text=True,
                         timeout=10).stdout.strip()
    return out or "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m papers.prompt_diffuser.claims",
                                     description="re-render a recorded results.json")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("rerender", help="recompute the claims of a recorded run directory")
    p.add_argument("directory", type=Path, help="folder with results.json (e.g. results/small)")
    args = parser.parse_args(argv)
    recorded = json.loads((args.directory / "results.json").read_text())
    results = rerender(recorded)
    if results["claims"] != recorded.get("claims"):
        note = (f"claims recomputed at {_code_commit()[:7]} by the claim code of that commit from "
                f"the run recorded at {recorded['git']['commit'][:7]}; the measurements are "
                "unchanged")
        results["notes"] = [*results.get("notes", []), note]
    write_results(args.directory, results, announce=False)
    print(summary_line(results, args.directory / "results.json"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
