"""SPAgent's claims as checkable objects (shared.results schema 2), computed only from what a
results.json holds (the per-seed `values` in `methods`), so that `reproduce` and
`python -m papers.spagent.claims rerender DIR` share this code.

1. The agent's final-video quality beats every single fixed model (paired over seeds, each
   a case, greater than experiment.min_effect).
2. ... and every ablation: keyword rules instead of the intent model, no capability
   selection, a random tool per step, a fixed route.
3. It completes every task kind: per (E_T, E_V) group, the completion rate's interval lies
   above experiment.completion_bar.
4. After self-assessment it picks the new tool where it is best and only there: per request
   style (neutral / calm / lively), the measured best tool of the new tool's kind is the one
   with the highest mean weighted score over that style's held-out steps (every tool run on
   each step's actual input); the rate of selecting the new tool for the styles where it is
   the measured best, and of not selecting it for the others, both above
   experiment.selection_bar (per-step rates against the noisier per-request oracle are
   reported in a table).
5. The learned intent model routes held-out paraphrase families better than keyword rules
   (route accuracy, paired, greater than 0.05).

Preconditions: the encoder and the intent model converged (over the last 20 % of training
the loss moved ≤ plateau_tol of its total decrease, worst seed); the encoder reads (colour,
subject) zero-shot at ≥ 0.8 (else the quality and completion metrics cannot see the subject);
claim 4 needs (style, seed) cells of both sorts (≥ 3 each).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from shared.results import (
    at_least,
    at_most,
    make_claim,
    mean_interval,
    paired,
    protocol_note,
    write_results,
)

ABLATIONS = ("agent_keywords", "agent_no_selection", "random_tool", "fixed_route")
ROUTE_MARGIN = 0.05
MIN_STYLES = 3  # (style, seed) cells of each sort: on average one per seed


def _v(methods, method, metric):
    return methods[method][metric]["values"]


def _converged(methods, tol):
    a = methods["agent"]
    return [at_most("converged: encoder loss", max(a["encoder plateau"]["values"]), tol,
                    "change over the last 20 % of training / total decrease, worst seed"),
            at_most("converged: intent-model loss", max(a["intent plateau"]["values"]), tol,
                    "change over the last 20 % of training / total decrease, worst seed"),
            at_least("encoder reads (colour, subject) zero-shot", min(a["encoder zero-shot"]["values"]), 0.8,
                     "held-out procedural images, worst seed")]


def build_claims(methods: dict, exp: dict) -> list[dict]:
    pre = _converged(methods, exp["plateau_tol"])
    singles = [m for m in methods if m.startswith("single:")]
    q = lambda m: _v(methods, m, "quality")  # noqa: E731
    claims = [
        make_claim("The agent's final videos beat every single fixed model", "agent > each single model (qualitative)",
                   metric="request-weighted quality, agent − model", direction="greater", min_effect=exp["min_effect"],
                   cases={m.removeprefix("single:"): paired(q("agent"), q(m)) for m in singles}, preconditions=pre),
        make_claim("The agent's final videos beat every ablation", "each component helps (qualitative)",
                   metric="request-weighted quality, agent − ablation", direction="greater", min_effect=exp["min_effect"],
                   cases={m: paired(q("agent"), q(m)) for m in ABLATIONS}, preconditions=pre),
        make_claim("The agent completes every task kind", "completes general video generation and editing",
                   metric="completion rate per (E_T, E_V)", direction="greater", min_effect=exp["completion_bar"],
                   cases={k.removeprefix("completion "): mean_interval(v["values"])
                          for k, v in methods["agent"].items() if k.startswith("completion ") and "/" in k},
                   preconditions=pre),
    ]
    a = methods["agent_expanded"]
    n_best, n_other = sum(a["style where best n"]["values"]), sum(a["style only where best n"]["values"])
    claims.append(make_claim(
        "After self-assessment the agent picks the new tool where, and only where, it is best",
        "a new model is assessed and added without a person", metric="selection rate per request style",
        direction="greater", min_effect=exp["selection_bar"],
        cases={"styles where it is the measured best": mean_interval(a["style where best"]["values"]),
               "styles where another tool is": mean_interval(a["style only where best"]["values"])},
        preconditions=[*pre, at_least("styles where the new tool is the measured best", n_best, MIN_STYLES,
                                      "over the seeds"),
                       at_least("styles where another tool is the measured best", n_other, MIN_STYLES,
                                "over the seeds")],
        detail="the measured best of a style: the highest mean weighted score over that style's held-out i2v steps, "
               "every tool run on each step's actual input; the per-step rates are in the expansion table"))
    claims.append(make_claim(
        "The learned intent model routes unseen paraphrases better than keyword rules",
        "decoupled intent recognition (fine-tuned on the annotated set)", metric="route accuracy, model − rules",
        direction="greater", min_effect=ROUTE_MARGIN,
        estimate=paired(_v(methods, "agent", "route accuracy"), _v(methods, "agent_keywords", "route accuracy")),
        preconditions=pre))
    return claims


def build_notes(methods: dict) -> list[dict]:
    ev = methods["agent"]["intent e_v"]["values"]
    return [protocol_note("E_V is read from what is attached (none / image / video), so its accuracy is 1 "
                          "by construction", gap=mean_interval(ev))]


def rerender(results: dict) -> dict:
    out = dict(results)
    out["claims"] = build_claims(results["methods"], results["experiment"])
    out["protocol_notes"] = build_notes(results["methods"])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m papers.spagent.claims")
    parser.add_argument("command", choices=["rerender"])
    parser.add_argument("dir", help="a directory holding results.json (e.g. papers/spagent/results/small)")
    args = parser.parse_args(argv)
    path = Path(args.dir) / "results.json"
    if not path.is_file():
        print(f"error: {path} does not exist", file=sys.stderr)
        return 2
    try:
        results = json.loads(path.read_text())
        write_results(args.dir, rerender(results))
    except (json.JSONDecodeError, KeyError, ValueError) as exc:
        print(f"error: {path}: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
