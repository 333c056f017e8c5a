"""SPIDER's claims as checkable objects (shared.results schema 2), computed only from what a
results.json holds: the per-seed `values` in `methods` and the tables. `reproduce` and the
re-render of a recorded run (`python -m papers.spider.claims rerender DIR`) share this code.

Per downstream task, four claims:
1. SPIDER keeps more upstream ability than full fine-tuning: paired difference of upstream VQA
   accuracy over seeds, greater than MIN_EFFECT;
2. full fine-tuning gives the best downstream score: for every other method, the paired
   difference full FT − method of the downstream score, non-inferior at margin MIN_EFFECT
   (no method beats full FT by a point or more);
3. SPIDER has the best (or near-best) H: for every baseline, SPIDER − baseline of H,
   non-inferior at margin MIN_EFFECT;
4. the soft mask (released code) is at least as good as the hard mask (paper text) in H:
   non-inferior at margin MIN_EFFECT.

H is the one the results' task tables carry: on the tiny model the relative H of `reproduce`
(upstream as a % of the pre-trained model's, downstream as a % of full FT's;
`pipeline.relative_h`), on the paper path the paper's H of the raw scores.

MIN_EFFECT is one point on the 0-100 scales (accuracy %, CIDEr-D × 100, H): the paper
publishes no machine-readable numbers (papers/spider.md), so the smallest effect of interest
is ours, about two of the 200 downstream test questions.

Preconditions (the regime where the claim can show):
- the downstream vocabulary is known to the pre-trained model: every target token type of the
  downstream training answers occurs somewhere in the pre-training text (for a released MLLM
  it does; in the tiny model an unseen token's embedding and LM-head rows are untrained and
  frozen, so learning it takes large weight changes, which the masks shrink: issue 23);
- the methods compared learned the task (downstream gain over the pre-trained model) and,
  for claim 1, full FT forgot something (upstream drop);
- claims 2 and 3, which compare against L2-SP, DARE and Grafting: those baselines were tuned
  on equal terms (each hyper-parameter chosen from at least two values);
- every compared method converged: over the last 20 % of the steps its training loss (mean
  over seeds) moved by at most PLATEAU_FRACTION of its total decrease. The schedule is cosine
  to zero, so this is a weak check: it catches a loss still falling fast, not a run that
  would learn more with more steps.
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
    paired,
    plateau_change,
    precondition,
    write_results,
)

MIN_EFFECT = 1.0  # points on a 0-100 scale (see the module docstring)
PLATEAU_FRACTION = 0.1  # the last 20 % of the steps moved the loss ≤ 10 % of its total decrease
CURVE_BINS = 10  # the training loss is kept as means over tenths of the steps
MIN_TRIED = 2  # "tuned": at least two values tried for every free baseline hyper-parameter
SPIDERS = ("spider", "spider_hard")
METHOD_NAMES = ("full_ft", "spider", "spider_hard", "l2sp", "magnitude", "random", "half_ft", "dare", "grafting")
BASE_ROW = "pre-trained (no fine-tuning)"
RERUN = "rerun `make reproduce PAPER=spider`"

# titles of the tables build_claims reads (reproduce writes them)
VOCAB_TABLE = "Downstream target tokens seen in the pre-training text"
TUNING_TABLE = "Free hyper-parameters of the baselines (values tried)"
CURVE_TABLE = "Fine-tuning training loss, mean over seeds, per tenth of the steps"
RERENDER_NOTE = "claims re-rendered into schema 2 at {commit} from the run recorded at {orig}; " \
                "the measurements are unchanged"


REDERIVED_NOTE = "claims re-derived at {commit}: the current shared.results derives them differently " \
               "from the previous render (the measurements are unchanged)"


def task_table_title(task: str) -> str:
    return f"{task}: downstream score, upstream VQA accuracy (%), H"


# ---------------------------------------------------------------------------------------------
# The tables of the claim inputs (reproduce writes them; build_claims reads them back)


TUNED = (("l2sp", "λ (finetune.l2sp_weight)", "l2sp_weight", "l2sp_weights"),
         ("dare", "p (finetune.dare_drop)", "dare_drop", "dare_drops"),
         ("grafting", "s (finetune.graft_keep)", "graft_keep", "graft_keeps"))
SWEEP_TABLE = "Baseline sweeps on the validation split (first seed)"


def tuning_table(cfg, methods: Sequence[str], chosen: Mapping | None = None, seed: int = 0) -> dict:
    """The baselines' free hyper-parameters, the values tried and how the reported one was
    chosen (`chosen`: {task: {method: value}} from reproduce's sweep)."""
    chosen = chosen or {}
    rows = []
    for m, name, key, listed in TUNED:
        if m not in methods:
            continue
        values = list(dict.fromkeys(getattr(cfg.experiment, listed, []) or [])) or [getattr(cfg.finetune, key)]
        picks = {t: c[m] for t, c in chosen.items() if m in c}
        if len(values) > 1 and picks:
            how = (f"best validation H on seed {seed} (held-out split): "
                   + ", ".join(f"{t} {v:g}" for t, v in picks.items()))
        else:
            how = "set once: no sweep, no held-out split"
        rows.append([m, name, values, how])
    return {"title": TUNING_TABLE, "columns": ["method", "hyper-parameter", "values tried", "how chosen"],
            "rows": rows}


def sweep_table(runs: Sequence[Mapping], chosen: Mapping) -> dict:
    """Every sweep run's validation scores (and its test scores, for reference)."""
    rows = [[r["task"], r["method"], r["value"], r["val"]["upstream"], r["val"]["downstream"], r["val"]["H"],
             r["H"], "chosen" if chosen.get(r["task"], {}).get(r["method"]) == r["value"] else ""]
            for r in runs]
    return {"title": SWEEP_TABLE,
            "columns": ["task", "method", "value", "val upstream", "val downstream", "val H", "test H", ""],
            "rows": rows}


def vocabulary_table(rows: list[list]) -> dict:
    return {"title": VOCAB_TABLE,
            "columns": ["task", "target token types", "never in pre-training text",
                        "share of target tokens unseen", "share of training answers with one",
                        "unseen tokens"],
            "rows": rows}


def curve_table(curves: Mapping[tuple[str, str], Sequence[float]]) -> dict:
    """{(task, method): mean curve} → the table of the loss per tenth of the steps."""
    n = max((len(c) for c in curves.values()), default=CURVE_BINS)
    return {"title": CURVE_TABLE,
            "columns": ["task", "method", *(f"{round(100 * (i + 1) / n)} %" for i in range(n))],
            "rows": [[task, method, *map(float, curve)] for (task, method), curve in curves.items()]}


def binned_curve(losses: Sequence[float], bins: int = CURVE_BINS) -> list[float]:
    """The mean of the per-step losses over `bins` consecutive, nearly equal shares of steps
    (every step when there are fewer)."""
    arr = np.asarray(losses, dtype=np.float64)
    if arr.size < bins:
        return [float(v) for v in arr]
    return [float(part.mean()) for part in np.array_split(arr, bins)]


def loss_curve(metrics: Sequence[Mapping], bins: int = CURVE_BINS) -> list[float]:
    """The binned training loss of a run from its metrics.jsonl records (the last record of a
    step wins, so a resumed run that logged a step twice counts it once)."""
    by_step = {int(r["step"]): float(r["train/loss"]) for r in metrics if "train/loss" in r}
    return binned_curve([by_step[s] for s in sorted(by_step)], bins)


def _table(tables: Sequence[Mapping], title: str) -> Mapping | None:
    return next((t for t in tables if t["title"] == title), None)


# ---------------------------------------------------------------------------------------------
# Claims


def _values(methods: Mapping, method: str, task: str, key: str) -> list[float]:
    return list(methods[method][f"{task} {key}"]["values"])


def _mean(methods, method, task, key) -> float:
    return float(np.mean(_values(methods, method, task, key)))


class _Inputs:
    """What the claims of one results.json read: per-seed values, the pre-trained model's
    scores, the vocabulary coverage, the baselines' tuning and the training curves."""

    def __init__(self, methods: Mapping, tables: Sequence[Mapping], released_model: bool):
        self.methods, self.released_model = methods, released_model
        self.base = {}
        for t in tables:
            for row in t["rows"]:
                if t["title"].endswith(": downstream score, upstream VQA accuracy (%), H") and row[0] == BASE_ROW:
                    self.base[t["title"].split(":", 1)[0]] = {"downstream": float(row[1]), "upstream": float(row[2])}
        vocab = _table(tables, VOCAB_TABLE)
        self.vocab = {r[0]: r for r in vocab["rows"]} if vocab else None
        tuning = _table(tables, TUNING_TABLE)
        self.tuning = tuning["rows"] if tuning else None
        curves = _table(tables, CURVE_TABLE)
        self.curves = {(r[0], r[1]): r[2:] for r in curves["rows"]} if curves else None

    # -- preconditions

    def vocabulary(self, task: str) -> list[dict]:
        name = "downstream vocabulary known to the pre-trained model"
        if self.released_model:
            return []  # a released MLLM has seen every token of its vocabulary
        if self.vocab is None or task not in self.vocab:
            return [precondition(name, False, "not measured", "every target token type occurs in "
                                 f"pre-training text (no coverage table; {RERUN})")]
        _, types, unseen, token_share, answer_share, words = self.vocab[task]
        return [at_least(name + " (share of target token types seen in pre-training)",
                         (types - unseen) / types, 1.0,
                         detail=f"{unseen} of {types} target token types never occur in the "
                                f"pre-training text ({100 * token_share:.1f} % of target tokens, "
                                f"{100 * answer_share:.0f} % of training answers): {words}")]

    def learned(self, method: str, task: str) -> dict:
        name = f"{method} learned the task: downstream gain over the pre-trained model"
        if task not in self.base:
            return precondition(name, False, "not measured", f"≥ {MIN_EFFECT:g} points (the "
                                "pre-trained model was not evaluated on this path)")
        return at_least(name, _mean(self.methods, method, task, "downstream") - self.base[task]["downstream"],
                        MIN_EFFECT)

    def forgot(self, task: str) -> dict:
        name = "full FT forgot: upstream drop from the pre-trained model"
        if task not in self.base:
            return precondition(name, False, "not measured", f"≥ {MIN_EFFECT:g} points (the "
                                "pre-trained model was not evaluated on this path)")
        return at_least(name, self.base[task]["upstream"] - _mean(self.methods, "full_ft", task, "upstream"),
                        MIN_EFFECT)

    def tuned(self, compared: Sequence[str]) -> list[dict]:
        rows = [r for r in (self.tuning or []) if r[0] in compared]
        free = [m for m in ("l2sp", "dare", "grafting") if m in compared]
        if not free:
            return []
        name = "baselines tuned on equal terms: fewest values tried for " + ", ".join(free)
        if self.tuning is None:
            return [precondition(name, False, "not recorded", f"≥ {MIN_TRIED} values, chosen on a "
                                 f"held-out split (no tuning table; {RERUN})")]
        return [at_least(name, min((len(r[2]) for r in rows), default=0), MIN_TRIED,
                         detail="; ".join(f"{r[0]} {r[1].split(' ')[0]} ∈ {r[2]}: {r[3]}" for r in rows)
                         + ". SPIDER exposes no hyper-parameter of its own; the learning rate and "
                           "schedule are shared by every method")]

    def converged(self, task: str, compared: Sequence[str]) -> dict:
        name = "converged: every compared method's training loss"
        requirement = (f"the last 20 % of the steps moved it by ≤ {PLATEAU_FRACTION:g} of its "
                       "total decrease")
        if self.curves is None or any((task, m) not in self.curves for m in compared):
            return precondition(name, False, "not recorded",
                                f"per-seed loss curves, which this run did not keep; {RERUN}",
                                detail=requirement)
        worst, who = -1.0, ""
        for m in compared:
            curve = np.asarray(self.curves[(task, m)], dtype=np.float64)
            drop = abs(curve[0] - curve[-1])
            ratio = plateau_change(curve) / drop if drop > 0 else float("inf")
            if ratio > worst:
                worst, who = ratio, m
        return precondition(name, bool(worst <= PLATEAU_FRACTION), float(worst), requirement,
                            detail=f"worst: {who}")


def build_claims(methods: Mapping, tables: Sequence[Mapping], tasks: Sequence[str],
                 method_names: Sequence[str], released_model: bool = False) -> list[dict]:
    """Every claim of the paper from a results.json's `methods` and `tables`."""
    x = _Inputs(methods, tables, released_model)
    out = []
    point = f"the smallest effect, {MIN_EFFECT:g} point on a 0-100 scale, is ours: the paper publishes no machine-readable numbers"
    for task in tasks:
        def vals(m, key, task=task):
            return _values(methods, m, task, key)

        def mean(m, key, task=task):
            return _mean(methods, m, task, key)

        vocab = x.vocabulary(task)
        others = [m for m in method_names if m != "full_ft"]
        baselines = [m for m in method_names if m not in SPIDERS]
        if "spider" in method_names and "full_ft" in method_names:
            est = paired(vals("spider", "upstream"), vals("full_ft", "upstream"))
            out.append(make_claim(
                f"{task}: SPIDER keeps more upstream ability than full fine-tuning",
                "masks keep upstream; full FT forgets most",
                metric="upstream VQA accuracy (%), SPIDER − full FT", direction="greater",
                min_effect=MIN_EFFECT, estimate=est,
                preconditions=[*vocab, x.learned("spider", task), x.forgot(task),
                               x.converged(task, ["spider", "full_ft"])],
                ours=f"upstream {mean('spider', 'upstream'):.1f} vs {mean('full_ft', 'upstream'):.1f} %; "
                     f"paired difference {_interval(est)}",
                detail=f"paired t over seeds; {point}"))
        if "full_ft" in method_names and others:
            out.append(make_claim(
                f"{task}: full fine-tuning gives the best downstream score",
                "full FT is the specialisation upper end",
                metric="downstream score, full FT − method", direction="greater",
                min_effect=-MIN_EFFECT,
                cases={m: paired(vals("full_ft", "downstream"), vals(m, "downstream")) for m in others},
                preconditions=[*vocab, x.learned("full_ft", task), *x.tuned(others),
                               x.converged(task, method_names)],
                detail=f"non-inferiority: no method's downstream score exceeds full FT's by "
                       f"{MIN_EFFECT:g} point or more (paired t over seeds, one case per method); {point}"))
        if "spider" in method_names and baselines:
            best = max(baselines, key=lambda m: mean(m, "H"))
            out.append(make_claim(
                f"{task}: SPIDER has the best harmonic mean H of upstream and downstream",
                "SPIDER best or near-best H",
                metric="H, SPIDER − baseline", direction="greater", min_effect=-MIN_EFFECT,
                cases={m: paired(vals("spider", "H"), vals(m, "H")) for m in baselines},
                preconditions=[*vocab, x.learned("spider", task), *x.tuned(baselines),
                               x.converged(task, ["spider", *baselines])],
                ours=f"SPIDER {mean('spider', 'H'):.1f} vs best baseline {best} {mean(best, 'H'):.1f}; "
                     f"paired difference {_interval(paired(vals('spider', 'H'), vals(best, 'H')))}",
                detail=f"best or near-best = non-inferiority: no baseline's H exceeds SPIDER's by "
                       f"{MIN_EFFECT:g} point or more (paired t over seeds, one case per baseline); {point}"))
        if "spider" in method_names and "spider_hard" in method_names:
            est = paired(vals("spider", "H"), vals("spider_hard", "H"))
            out.append(make_claim(
                f"{task}: the soft mask is at least as good as the hard mask (H)",
                "the released rule is soft; the paper states a hard mask",
                metric="H, soft − hard mask", direction="greater", min_effect=-MIN_EFFECT,
                estimate=est,
                preconditions=[*vocab, x.learned("spider", task), x.learned("spider_hard", task),
                               x.converged(task, list(SPIDERS))],
                ours=f"soft {mean('spider', 'H'):.1f} vs hard {mean('spider_hard', 'H'):.1f}; "
                     f"paired difference {_interval(est)}",
                detail=f"non-inferiority at a margin of {MIN_EFFECT:g} point (paired t over seeds); {point}"))
    return out


def skipped_claims(method_names: Sequence[str]) -> list[str]:
    """The claims `build_claims` leaves out for lack of a method they compare (one per kind)."""
    have = set(method_names)
    needs = [("SPIDER keeps more upstream than full FT", "spider and full_ft", {"spider", "full_ft"} <= have),
             ("full FT gives the best downstream score", "full_ft and another method",
              "full_ft" in have and bool(have - {"full_ft"})),
             ("SPIDER has the best H", "spider and a baseline (not spider_hard)",
              "spider" in have and bool(have - set(SPIDERS))),
             ("the soft mask is at least as good as the hard mask", "spider and spider_hard", set(SPIDERS) <= have)]
    return [f"'{claim}' needs {need}" for claim, need, ok in needs if not ok]


def skipped_note(method_names: Sequence[str]) -> str | None:
    """A results note (None when every claim is checked)."""
    skipped = skipped_claims(method_names)
    if not skipped:
        return None
    head = "no claim is checked" if len(skipped) == 4 else f"{len(skipped)} of the 4 claims per task {'is' if len(skipped) == 1 else 'are'} not checked"
    return (f"{head} with experiment.methods={list(method_names)}: " + "; ".join(skipped)
            + f" (the methods: {', '.join(METHOD_NAMES)})")


def _interval(est: Mapping) -> str:
    if est.get("lo") is None:
        return f"{est['value']:.2f} (no interval)"
    return f"{est['value']:.2f} [{est['lo']:.2f}, {est['hi']:.2f}]"


def tasks_and_methods(results: Mapping) -> tuple[list[str], list[str]]:
    """The downstream tasks (in table order) and the methods of a results.json."""
    tasks = [t["title"].split(":", 1)[0] for t in results["tables"]
             if t["title"] == task_table_title(t["title"].split(":", 1)[0])]
    return tasks, list(results["methods"])


def claims_of(results: Mapping, released_model: bool = False) -> list[dict]:
    tasks, methods = tasks_and_methods(results)
    return build_claims(results["methods"], results["tables"], tasks, methods, released_model)


# ---------------------------------------------------------------------------------------------
# Re-rendering a recorded results.json


def rerender(results: dict, *, commit: str, wall_time_s: float | None = None,
             vocabulary_rows: list[list] | None = None, tuning: dict | None = None) -> dict:
    """A recorded results.json (schema 1 or 2) in schema 2 with the claims computed afresh (a
    schema-2 record whose claims the current code derives differently gets a note saying so).

    The measurements (`methods`, the recorded tables, `plots`) and the run's own `git`,
    `command`, `created`, `versions` and `seeds` are kept. The tables the claims read and the
    recorded run lacks are added from `vocabulary_rows` (computed from the code) and `tuning`
    (from the run's config), when given; a table already present is kept. The re-render note
    is added once (with `commit`) to a schema-1 record, so re-rendering a re-rendered file, or
a record written in schema 2, changes nothing."""
    out = dict(results)
    tables = list(results["tables"])
    if vocabulary_rows is not None and _table(tables, VOCAB_TABLE) is None:
        tables.append(vocabulary_table(vocabulary_rows))
    if tuning is not None and _table(tables, TUNING_TABLE) is None:
        tables.append(tuning)
    notes = list(results.get("notes", []))
    if results.get("schema") != 2 and not any(n.startswith("claims re-rendered into schema 2") for n in notes):
        notes.append(RERENDER_NOTE.format(commit=commit[:7], orig=results["git"]["commit"][:7]))
    added = [t["title"] for t in tables[len(results["tables"]):]]
    if added:
        notes.append(f"added at the re-render, derived from the code and configs/{results['config']}.yaml "
                     f"at {commit[:7]}, not measured by the recorded run: "
                     + "; ".join(f"the table '{t}'" for t in added))
    if results.get("schema") != 2 and wall_time_s is None:
        raise ValueError("a schema-1 record needs wall_time_s (the recorded wall time)")
    out.update({
        "schema": 2, "tables": tables, "notes": notes,
        "wall_time_s": float(wall_time_s if wall_time_s is not None else results["wall_time_s"]),
        "protocol_notes": list(results.get("protocol_notes", [])),
    })
    out["claims"] = claims_of(out)
    if results.get("schema") == 2 and json.dumps(out["claims"], sort_keys=True) != json.dumps(
            results.get("claims"), sort_keys=True):
        out["notes"] = [*notes, REDERIVED_NOTE.format(commit=commit[:7])]
    order = ("schema", "paper", "title", "config", "command", "created", "wall_time_s", "git",
             "versions", "seeds", "methods", "claims", "protocol_notes", "tables", "plots", "notes")
    return {k: out[k] for k in order if k in out} | {k: v for k, v in out.items() if k not in order}


def rerender_dir(out_dir: str | Path, *, wall_time_s: float | None = None,
                 compute_missing: bool = True) -> Path:
    """Re-render `out_dir`/results.json and RESULTS.md in place. With `compute_missing` the
    vocabulary coverage (about a minute at the small config) and the tuning table are derived
    from the code and the run's config when the record lacks them."""
    from papers.spider import pipeline

    out_dir = Path(out_dir)
    results = json.loads((out_dir / "results.json").read_text())
    vocab = tuning = None
    if compute_missing and (_table(results["tables"], VOCAB_TABLE) is None
                            or _table(results["tables"], TUNING_TABLE) is None):
        cfg = pipeline.config(results["config"])
        tasks, methods = tasks_and_methods(results)
        if _table(results["tables"], VOCAB_TABLE) is None:
            vocab = pipeline.vocabulary_coverage(cfg, pipeline.tokenizer_for(cfg), tasks)
        tuning = tuning_table(cfg, methods)
    new = rerender(results, commit=code_commit(), wall_time_s=wall_time_s,
                   vocabulary_rows=vocab, tuning=tuning)
    return write_results(out_dir, new)


def code_commit() -> str:
    """The latest commit of the code a re-render runs (this paper and shared/results.py)."""
    import subprocess

    from shared.runs import REPO_ROOT

    out = subprocess.run(["git", "log", "-1", "--format=%H", "--", "papers/spider", "shared/results.py"],
                         cwd=REPO_ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
    return out or "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m papers.spider.claims",
                                     description="Re-render a recorded SPIDER results.json into "
                                                 "schema 2 (claims computed afresh, measurements unchanged).")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("rerender", help="re-render DIR/results.json and DIR/RESULTS.md in place")
    p.add_argument("dir", type=Path)
    p.add_argument("--wall-time-s", type=float, default=None,
                   help="the recorded run's wall time (needed for a schema-1 record)")
    args = parser.parse_args(argv)
    rerender_dir(args.dir, wall_time_s=args.wall_time_s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
