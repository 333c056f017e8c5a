"""CompoFormer's claims and their verdicts, computed from what a results.json holds.

`paper_claims(methods, curves, level)` takes the `methods` block of a results.json (per-seed
values, seeds in the same order for every method) and `stage_curves` (per method, per seed,
the current task's success against updates within a stage, averaged over the stages), so a
fresh `reproduce` and a re-render of a recorded run use the same code.

Claims (P, F: `metrics.py`; paired over seeds, 95 % t intervals):
1. the ordering on P: CompoFormer-Prune > Grow > PackNet > LoRA > each regularisation method
   (L2, EWC, MAS) > fine-tuning, one case per adjacent pair, any positive effect;
2. CompoFormer forgets ≈ 0 where fine-tuning forgets: F(fine-tuning) − F(CompoFormer) > 0.1
   for Prune and Grow (that CompoFormer's own F is 0 holds by construction: a protocol note);
3. CompoFormer-Prune approaches MTL: P(Prune) − P(MTL) > −0.1 (non-inferiority; the
   paper's gap is −0.06 on OCW10).
Preconditions, for every method a claim compares:
- learned: the task of a stage is learned in its stage (R[i][i] ≥ `eval.learned_level`) for a
  majority of the tasks, on the mean over seeds (otherwise forgetting means nothing);
- converged: the within-stage success curve moved by ≤ `PLATEAU_TOL` over its last 20 %.
A method a run did not include makes its claim's case missing (listed as not run).

    python -m papers.compoformer.claims rerender papers/compoformer/results/small
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from shared.results import (
    at_least,
    make_claim,
    mean_interval,
    paired,
    plateaued,
    protocol_note,
    validate,
    write_results,
)

PLATEAU_TOL = 0.1
ORDER = [("compoformer-prune", "compoformer-grow"), ("compoformer-grow", "packnet"),
         ("packnet", "lora"), ("lora", "l2"), ("lora", "ewc"), ("lora", "mas"),
         ("l2", "finetune"), ("ewc", "finetune"), ("mas", "finetune")]
PAPER_P = {"mtl": (0.75, 0.80), "compoformer-prune": (0.69, 0.73), "compoformer-grow": (0.60, 0.61),
           "packnet": (0.64, 0.57), "lora": (0.54, 0.54), "l2": (0.29, 0.20), "mas": (0.29, 0.25),
           "perfect-memory": (0.26, 0.26), "ewc": (0.16, 0.12), "agem": (0.12, 0.09),
           "finetune": (0.11, 0.08)}
PAPER_F = {"finetune": 0.73, "ewc": 0.67, "compoformer-prune": -0.01}


def _values(methods: Mapping, method: str, metric: str) -> list[float] | None:
    entry = methods.get(method, {}).get(metric)
    return None if entry is None else [float(v) for v in entry["values"]]


def preconditions(methods: Mapping, curves: Mapping, compared: Sequence[str], level: float) -> list[dict]:
    out = []
    for m in compared:
        learned = _values(methods, m, "learned_fraction")
        if learned is not None:
            out.append(at_least(f"{m}: tasks learned in their stage", float(np.mean(learned)), 0.5 + 1e-9,
                                f"fraction of tasks with R[i][i] ≥ {level} (mean over seeds); "
                                "needs a majority"))
        if curves.get(m):
            out.append(plateaued(f"{m} (current-task success within a stage)", curves[m], PLATEAU_TOL))
    return out


def paper_claims(methods: Mapping, curves: Mapping, level: float) -> list[dict]:
    claims = []
    cases = {f"{a} − {b}": paired(_values(methods, a, "P"), _values(methods, b, "P"))
             for a, b in ORDER if a in methods and b in methods}
    if cases:
        compared = sorted({m for a, b in ORDER for m in (a, b) if m in methods})
        claims.append(make_claim(
            "P ordering: Prune > Grow > PackNet > LoRA > regularisation (L2, EWC, MAS) > fine-tuning",
            "OCW10 P: Prune 0.69, Grow 0.60, PackNet 0.64, LoRA 0.54, L2 0.29, MAS 0.29, EWC 0.16, "
            "fine-tuning 0.11 (the paper's own PackNet is above Grow on OCW10)",
            metric="P (final mean success)", direction="greater", min_effect=0.0, cases=cases,
            preconditions=preconditions(methods, curves, compared, level)))
    forget = {f"finetune − {c}": paired(_values(methods, "finetune", "F"), _values(methods, c, "F"))
              for c in ("compoformer-prune", "compoformer-grow") if c in methods and "finetune" in methods}
    if forget:
        compared = ["finetune"] + [c for c in ("compoformer-prune", "compoformer-grow") if c in methods]
        claims.append(make_claim(
            "CompoFormer forgets ≈ 0 while fine-tuning forgets (F gap > 0.1)",
            "F: fine-tuning 0.73, EWC 0.67, CompoFormer-Prune −0.01", metric="F (forgetting)",
            direction="greater", min_effect=0.1, cases=forget,
            preconditions=preconditions(methods, curves, compared, level)))
    if "compoformer-prune" in methods and "mtl" in methods:
        claims.append(make_claim(
            "CompoFormer-Prune approaches MTL: P(Prune) − P(MTL) > −0.1",
            "P: MTL 0.75, Prune 0.69 (OCW10); 0.80 / 0.73 (OCW20)", metric="P (final mean success)",
            direction="greater", min_effect=-0.1,
            estimate=paired(_values(methods, "compoformer-prune", "P"), _values(methods, "mtl", "P")),
            preconditions=preconditions(methods, curves, ["compoformer-prune", "mtl"], level)))
    return claims


def paper_protocol_notes(methods: Mapping) -> list[dict]:
    notes = []
    for c in ("compoformer-prune", "compoformer-grow"):
        f = _values(methods, c, "F")
        if f is not None:
            notes.append(protocol_note(
                f"{c}: forgetting is 0 by construction (earlier stages' parameters, heads and "
                "α are frozen and evaluation is deterministic, so R[T][i] = R[i][i]; tested "
                "bit-identical)", gap=mean_interval(f)))
        share = _values(methods, c, "reuse_share")
        reused = _values(methods, c, "reused_tasks")
        if share is not None:
            notes.append(protocol_note(
                f"{c}: the online reuse check (`compo.check_episodes` online episodes per new "
                "task — not offline RL): share of P contributed by tasks whose policy was reused after passing the "
                "check (an upper bound on the check's gain)", gap=mean_interval(share),
                detail=f"tasks reused per run: {', '.join(str(int(v)) for v in reused)}"))
    return notes


def rerender(results: Mapping) -> dict:
    out = dict(results)
    level = float(results.get("learned_level", 0.5))
    out["claims"] = paper_claims(results["methods"], results.get("stage_curves", {}), level)
    out["protocol_notes"] = paper_protocol_notes(results["methods"])
    validate(out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m papers.compoformer.claims")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("rerender", help="recompute the claims of a recorded run directory")
    p.add_argument("directory", type=Path)
    args = parser.parse_args(argv)
    path = args.directory / "results.json"
    if not path.is_file():
        print(f"error: {path} does not exist", file=sys.stderr)
        return 2
    write_results(args.directory, rerender(json.loads(path.read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
