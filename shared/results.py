"""One `results.json` schema for every paper, the verdict of each claim, its markdown
rendering and a PNG plot helper.

A **claim** is a small, checkable object: the paper's statement and number, the metric, the
paper's direction and the smallest effect of interest, a test with a 95 % interval, and the
preconditions under which the experiment can show the effect at all. Its verdict is

- ``holds``: every case's interval lies beyond the smallest effect, in the paper's direction;
- ``fails``: some case's interval excludes it (the effect is smaller, or reversed);
- ``inconclusive``: a precondition failed, or an interval contains the smallest effect (the
  test is underpowered: `seeds_needed` says how many seeds would resolve it at the observed
  variance), or there is no interval (one seed).

A precondition that failed can never give ``holds`` or ``fails``. Checks that hold by
construction (an oracle fusion is never below its branches, a γ tuned on the test set is never
worse than one tuned on held-out classes) are **protocol notes**: the size of a gap between two
protocols, never counted in the verdict counts.

Intervals: Student-t on the per-seed values (`paired` for methods that share seeds, `welch`
for independent groups, `mean_interval` for one sample), or the OLS slope's t interval over
every (x, seed) point (`slope`, with `log=True` a power-law exponent). 95 % two-sided.

results.json (schema 2):
    schema, paper, title, config, command, created, wall_time_s, git {commit, dirty}, versions,
    seeds: [int],
    methods: {method: {metric: {mean, std, n, values}}},
    claims: [claim dicts, see `make_claim`],
    protocol_notes: [note dicts, see `protocol_note`],
    tables: [{title, columns, rows}], plots: [relative PNG paths], notes: [str]
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from shared.runs import command_line, elapsed_s, git_commit, package_versions

SCHEMA_VERSION = 2
REQUIRED = ("schema", "paper", "config", "git", "seeds", "methods", "claims", "protocol_notes")
VERDICTS = ("holds", "fails", "inconclusive")
LEVEL = 0.95
POWER = 0.8  # the power `seeds_needed` plans for
CLAIM_KEYS = ("claim", "paper", "ours", "metric", "direction", "min_effect", "cases",
              "preconditions", "verdict", "reason", "seeds_needed")


def summarize(values: Sequence[float]) -> dict:
    """mean ± sample std (ddof=1) over seeds; std is 0 for a single value."""
    arr = np.asarray([float(v) for v in values], dtype=np.float64)
    std = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    return {"mean": float(arr.mean()), "std": std, "n": int(arr.size),
            "values": [float(v) for v in arr]}


# ---------------------------------------------------------------------------------------------
# Estimates with intervals


def _t(dof: int) -> float:
    from scipy.stats import t

    return float(t.ppf(0.5 + LEVEL / 2, dof))


def estimate(value: float, se: float | None, dof: int | None, *, kind: str, n: int,
             seeds: int | None = None) -> dict:
    """An estimate with its 95 % t interval (none when `se` or `dof` is missing or dof < 1).

    `n` is the number of values behind it, `seeds` the number of seeds (for `seeds_needed`;
    defaults to n)."""
    value = float(value)
    ok = se is not None and dof is not None and dof >= 1 and math.isfinite(se) \
        and math.isfinite(value)
    half = _t(dof) * se if ok else float("nan")
    return {"kind": kind, "value": value, "lo": value - half if ok else None,
            "hi": value + half if ok else None, "se": float(se) if ok else None,
            "n": int(n), "seeds": int(seeds if seeds is not None else n), "level": LEVEL}


def mean_interval(values: Sequence[float], kind: str = "mean") -> dict:
    """The mean of per-seed values with its t interval."""
    arr = np.asarray(values, dtype=np.float64)
    n = arr.size
    if n == 0:
        raise ValueError("mean_interval needs at least one value")
    se = float(arr.std(ddof=1) / math.sqrt(n)) if n > 1 else None
    return estimate(float(arr.mean()), se, n - 1 if n > 1 else None, kind=kind, n=n)


def paired(a: Sequence[float], b: Sequence[float]) -> dict:
    """mean(a − b) over seeds shared by the two methods, with its paired t interval."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired needs equally many values ({a.size} vs {b.size})")
    return mean_interval(a - b, kind="paired difference")


def welch(a: Sequence[float], b: Sequence[float]) -> dict:
    """mean(a) − mean(b) for independent groups, with Welch's t interval."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    diff = float(a.mean() - b.mean())
    if a.size < 2 or b.size < 2:
        return estimate(diff, None, None, kind="difference", n=min(a.size, b.size))
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    se = math.sqrt(va + vb)
    dof = (va + vb) ** 2 / (va ** 2 / (a.size - 1) + vb ** 2 / (b.size - 1)) if se > 0 \
        else a.size + b.size - 2
    return estimate(diff, se, max(1, int(math.floor(dof))), kind="difference",
                    n=min(a.size, b.size))


def slope(x: Sequence[float], y: Sequence[float], *, log: bool = False,
          seeds: int | None = None) -> dict:
    """OLS slope of y on x over every point (seeds × grid), with its t interval; with
    `log=True` the exponent of a power law (slope of log y on log x). Non-finite and, with
    `log`, non-positive points are dropped."""
    x, y = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    keep = np.isfinite(x) & np.isfinite(y)
    if log:
        keep &= (x > 0) & (y > 0)
        x, y = np.log(x[keep]), np.log(y[keep])
    else:
        x, y = x[keep], y[keep]
    kind = "power-law exponent" if log else "slope"
    n = x.size
    if n < 2 or np.ptp(x) == 0:
        return estimate(float("nan"), None, None, kind=kind, n=n, seeds=seeds)
    xc = x - x.mean()
    b = float(xc @ (y - y.mean()) / (xc @ xc))
    if n < 3:
        return estimate(b, None, None, kind=kind, n=n, seeds=seeds)
    resid = y - y.mean() - b * xc
    se = math.sqrt(float(resid @ resid) / (n - 2) / float(xc @ xc))
    return estimate(b, se, n - 2, kind=kind, n=n, seeds=seeds)


def fixed(value: float, kind: str = "value") -> dict:
    """A number with no interval (one run): a claim on it is always inconclusive."""
    return estimate(value, None, None, kind=kind, n=1)


def interval_text(est: Mapping, digits: int = 3) -> str:
    if est.get("lo") is None:
        return f"{fmt(est['value'], digits)} (no interval, n={est['n']})"
    return f"{fmt(est['value'], digits)} [{fmt(est['lo'], digits)}, {fmt(est['hi'], digits)}]"


# ---------------------------------------------------------------------------------------------
# Preconditions


def precondition(name: str, ok: bool, value: Any, requirement: str, detail: str = "") -> dict:
    """A named check that the experiment is in the regime where the claim can show."""
    if isinstance(value, np.generic):
        value = value.item()
    return {"name": name, "ok": bool(ok), "value": value, "requirement": requirement,
            "detail": detail}


def at_most(name: str, value: float, limit: float, detail: str = "") -> dict:
    return precondition(name, bool(value <= limit), float(value), f"≤ {fmt(limit)}", detail)


def at_least(name: str, value: float, limit: float, detail: str = "") -> dict:
    return precondition(name, bool(value >= limit), float(value), f"≥ {fmt(limit)}", detail)


def plateau_change(curve: Sequence, tail: float = 0.2) -> float:
    """|metric at the end − metric at the start of the last `tail` of training|, on the mean
    curve over seeds (`curve` is one curve, or one per seed, in training order)."""
    arr = np.asarray(curve, dtype=np.float64)
    mean = arr.mean(axis=0) if arr.ndim == 2 else arr
    if mean.size < 2:
        return float("nan")
    start = int(round((mean.size - 1) * (1 - tail)))
    start = min(start, mean.size - 2)
    return float(abs(mean[-1] - mean[start]))


def plateaued(name: str, curve: Sequence, tol: float, tail: float = 0.2, detail: str = "") -> dict:
    """Converged: the metric moved by at most `tol` over the last `tail` of training."""
    change = plateau_change(curve, tail)
    return precondition(f"converged: {name}", bool(math.isfinite(change) and change <= tol),
                        change, f"moved ≤ {fmt(tol)} over the last {round(tail * 100)} % of "
                        "training", detail)


# ---------------------------------------------------------------------------------------------
# Claims and their verdicts


def seeds_needed(est: Mapping, direction: int, threshold: float, limit: int = 10000) -> int | None:
    """Seeds for the interval to clear `threshold` with 80 % power at the observed variance:
    the smallest n > seeds with (t_{0.975, n−1} + t_{0.8, n−1}) · sd / √n ≤ |estimate − threshold|,
    where sd = se · √seeds is the per-seed spread. None when there is no variance estimate, the
    estimate sits on the threshold, or more than `limit` seeds would be needed."""
    if est.get("se") is None:
        return None
    distance = abs(direction * est["value"] - threshold)
    if distance == 0 or not math.isfinite(distance):
        return None
    from scipy.stats import t

    sd = est["se"] * math.sqrt(est["seeds"])
    n = int(est["seeds"]) + 1
    while n <= limit:
        if (t.ppf(0.5 + LEVEL / 2, n - 1) + t.ppf(POWER, n - 1)) * sd / math.sqrt(n) <= distance:
            return n
        n = n + 1 if n < 100 else int(n * 1.05) + 1
    return None


def _case_verdict(est: Mapping, direction: int, threshold: float) -> tuple[str, str, int | None]:
    if est.get("lo") is None:
        return "inconclusive", f"no interval ({est['n']} value{'s' if est['n'] != 1 else ''})", None
    lo, hi = sorted((direction * est["lo"], direction * est["hi"]))
    if lo > threshold:
        return "holds", "", None
    if hi < threshold:
        return "fails", "", None
    need = seeds_needed(est, direction, threshold)
    zero = "0 and " if lo <= 0 <= hi and threshold != 0 else ""
    tail = f"~{need} seeds needed at the observed variance" if need else \
        "the estimate sits on the threshold: more seeds alone will not resolve it"
    return "inconclusive", (f"underpowered: the 95 % interval contains {zero}the smallest "
                            f"effect {fmt(direction * threshold + 0.0)}; {tail}"), need


def make_claim(
    claim: str, paper: str, *, metric: str, direction: str, min_effect: float = 0.0,
    estimate: Mapping | None = None, cases: Mapping[str, Mapping] | None = None,
    preconditions: Sequence[Mapping] = (), ours: str | None = None, detail: str = "",
) -> dict:
    """A claim with its verdict.

    `direction` is the paper's: "greater" (the estimate is positive) or "less" (negative).
    `min_effect` is the smallest effect of interest in that direction (0: any effect; negative:
    a non-inferiority margin, for claims of the form "not worse than"). Give one `estimate`
    or several named `cases` (the claim says the effect holds in every case: it holds only if
    every case holds and fails if any case fails)."""
    if direction not in ("greater", "less"):
        raise ValueError(f"direction must be 'greater' or 'less', not {direction!r}")
    if (estimate is None) == (cases is None):
        raise ValueError("give exactly one of estimate and cases")
    cases = {"": estimate} if estimate is not None else dict(cases)
    if not cases:
        raise ValueError("a claim needs at least one case")
    sign = 1 if direction == "greater" else -1
    out_cases, needs = {}, []
    for label, est in cases.items():
        verdict, reason, need = _case_verdict(est, sign, float(min_effect))
        out_cases[label] = {**est, "verdict": verdict, "reason": reason, "seeds_needed": need}
        needs.append(need)
    failed = [p for p in preconditions if not p["ok"]]
    labels = dict(out_cases)
    unresolved = [(k, c) for k, c in labels.items() if c["verdict"] == "inconclusive"]
    known = [c["seeds_needed"] for _, c in unresolved if c["seeds_needed"]]
    # seeds the test itself would need at the observed variance (also shown when a
    # precondition failed: meeting the precondition alone may not be enough)
    need = max(known) if unresolved and len(known) == len(unresolved) else None
    if failed:
        verdict = "inconclusive"
        reason = "; ".join(f"precondition failed: {p['name']} ({fmt(p['value'])}, needs "
                           f"{p['requirement']})" for p in failed)
    elif any(c["verdict"] == "fails" for c in labels.values()):
        verdict, reason, need = "fails", "", None
    elif all(c["verdict"] == "holds" for c in labels.values()):
        verdict, reason, need = "holds", "", None
    else:
        verdict = "inconclusive"
        reason = "; ".join(f"{k}: {c['reason']}" if k else c["reason"] for k, c in unresolved)
    if ours is None:
        ours = "; ".join(f"{k}: {interval_text(c)}" if k else interval_text(c)
                         for k, c in out_cases.items())
    return {"claim": claim, "paper": paper, "ours": ours, "metric": metric,
            "direction": direction, "min_effect": float(min_effect), "cases": out_cases,
            "preconditions": [dict(p) for p in preconditions], "verdict": verdict,
            "reason": reason, "seeds_needed": need, "detail": detail}


def protocol_note(note: str, *, gap: Mapping | None = None, ours: str | None = None,
                  detail: str = "") -> dict:
    """A check that holds by construction, reported as the size of the gap between two
    protocols (e.g. the released one against an honest one); never a claim."""
    if ours is None:
        ours = interval_text(gap) if gap is not None else ""
    return {"note": note, "gap": dict(gap) if gap is not None else None, "ours": ours,
            "detail": detail}


def verdict_counts(results: Mapping) -> dict[str, int]:
    counts = dict.fromkeys(VERDICTS, 0)
    for c in results["claims"]:
        counts[c["verdict"]] += 1
    return counts


def counts_text(results: Mapping) -> str:
    c = verdict_counts(results)
    return f"{c['holds']} holds · {c['fails']} fails · {c['inconclusive']} inconclusive"


# ---------------------------------------------------------------------------------------------
# results.json


def build_results(
    *, paper: str, title: str, config: str, seeds: list[int], methods: dict, claims: list,
    protocol_notes: list | None = None, tables: list | None = None, plots: list | None = None,
    notes: list | None = None, wall_time_s: float | None = None,
) -> dict:
    """The results dict. `wall_time_s` defaults to the time since the process started."""
    return {
        "schema": SCHEMA_VERSION, "paper": paper, "title": title, "config": config,
        "command": command_line(), "created": datetime.now(UTC).isoformat(),
        "wall_time_s": float(wall_time_s if wall_time_s is not None else elapsed_s()),
        "git": git_commit(), "versions": package_versions(), "seeds": list(seeds),
        "methods": methods, "claims": claims, "protocol_notes": protocol_notes or [],
        "tables": tables or [], "plots": plots or [], "notes": notes or [],
    }


def validate(results: dict) -> None:
    """Raise ValueError unless `results` follows schema 2 (see the module docstring)."""
    if not isinstance(results, dict):
        raise ValueError("results.json is not an object")
    missing = [key for key in REQUIRED if key not in results]
    if missing:
        raise ValueError(f"results.json lacks {', '.join(missing)}")
    if results["schema"] != SCHEMA_VERSION:
        raise ValueError(f"results.json has schema {results['schema']}, expected {SCHEMA_VERSION}")
    for method, metrics in results["methods"].items():
        for metric, summary in metrics.items():
            if not isinstance(summary, dict) or not {"mean", "std", "n"} <= set(summary):
                raise ValueError(f"results.json: {method}.{metric} is not a mean/std/n summary")
    for item in results["claims"]:
        if not isinstance(item, dict) or not set(CLAIM_KEYS) <= set(item):
            raise ValueError(f"results.json: malformed claim {str(item)[:120]}")
        if item["verdict"] not in VERDICTS:
            raise ValueError(f"results.json: claim {item['claim']!r} has verdict {item['verdict']!r}")
        if item["verdict"] != "inconclusive" and not all(p["ok"] for p in item["preconditions"]):
            raise ValueError(f"results.json: claim {item['claim']!r} is {item['verdict']} with a "
                             "failed precondition")
        if item["verdict"] == "inconclusive" and not item["reason"]:
            raise ValueError(f"results.json: inconclusive claim {item['claim']!r} gives no reason")
    for item in results["protocol_notes"]:
        if not isinstance(item, dict) or not {"note", "gap", "ours"} <= set(item):
            raise ValueError(f"results.json: malformed protocol note {str(item)[:120]}")


def fmt(value: Any, digits: int = 4) -> str:
    if isinstance(value, dict) and "mean" in value:
        return f"{fmt(value['mean'], digits)} ± {fmt(value['std'], digits)}"
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        if value == 0 or not math.isfinite(value) or 1e-3 <= abs(value) < 1e5:
            return f"{value:.{digits}g}"
        return f"{value:.3e}"
    return str(value)


def _cell(value: Any) -> str:
    return fmt(value).replace("|", "\\|").replace("\n", " ")


def _table(columns: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def verdict_mark(verdict: str) -> str:
    return {"holds": "holds", "fails": "**fails**", "inconclusive": "*inconclusive*"}[verdict]


def wall_text(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h} h {m} min" if h else (f"{m} min {s} s" if m else f"{s} s")


def commit_text(git: Mapping, width: int = 12) -> str:
    return git["commit"][:width] + (" (uncommitted changes)" if git.get("dirty") else "")


def render_markdown(results: dict, plot_prefix: str = "") -> str:
    out = [
        f"# {results.get('title', results['paper'])}: results ({results['config']})",
        "",
        f"**{counts_text(results)}** (protocol notes are not claims and are not counted)",
        "",
        f"- command: `{results.get('command', '')}`",
        f"- commit: `{commit_text(results['git'])}`; created {results.get('created', '')}; "
        f"wall time {wall_text(results.get('wall_time_s'))}",
        f"- seeds: {', '.join(str(s) for s in results['seeds'])} (mean ± sample std over seeds; "
        "intervals are 95 %)",
        "",
        "## Claims",
        "",
    ]
    out += _table(["#", "Claim", "Paper / theory", "Ours: estimate [95 % interval]", "Verdict",
                   "Why inconclusive"], [
        [i + 1, c["claim"], c["paper"], c["ours"], verdict_mark(c["verdict"]),
         c["reason"] + (f" (seeds the test needs at the observed variance: {c['seeds_needed']})"
                        if c["seeds_needed"] and c["verdict"] == "inconclusive" else "")]
        for i, c in enumerate(results["claims"])
    ])
    checks = [(i + 1, p) for i, c in enumerate(results["claims"]) for p in c["preconditions"]]
    if checks:
        out += ["", "### Preconditions", ""]
        out += _table(["Claim", "Precondition", "Measured", "Needs", "Met", "Detail"], [
            [i, p["name"], p["value"], p["requirement"], "yes" if p["ok"] else "**no**",
             p.get("detail", "")] for i, p in checks])
    tests = [(i + 1, c) for i, c in enumerate(results["claims"])]
    out += ["", "### Tests", ""]
    out += _table(["Claim", "Metric", "Paper's direction: estimate ...", "Case", "Test", "n",
                   "Estimate [95 % interval]", "Case verdict", "Seeds needed"], [
        [i, c["metric"], _threshold_text(c), label or "-", case["kind"], case["n"],
         interval_text(case), case["verdict"], case.get("seeds_needed") or "-"]
        for i, c in tests for label, case in c["cases"].items()])
    if results["protocol_notes"]:
        out += ["", "## Protocol notes", "",
                "Checks that hold by construction: the size of a gap between two protocols, "
                "not claims.", ""]
        out += _table(["Note", "Gap: estimate [95 % interval]", "Detail"], [
            [n["note"], n["ours"], n.get("detail", "")] for n in results["protocol_notes"]])
    metrics = sorted({m for per in results["methods"].values() for m in per})
    if metrics:
        out += ["", "## Methods", ""]
        out += _table(["Method", *metrics], [
            [name, *(per.get(m, "") for m in metrics)] for name, per in results["methods"].items()
        ])
    for table in results.get("tables", []):
        out += ["", f"## {table['title']}", ""] + _table(table["columns"], table["rows"])
    if results.get("notes"):
        out += ["", "## Notes", ""] + [f"- {note}" for note in results["notes"]]
    if results.get("plots"):
        out += ["", "## Plots", ""]
        out += [f"![{Path(p).stem}]({plot_prefix}{p})" for p in results["plots"]]
    return "\n".join(out) + "\n"


def _threshold_text(claim: Mapping) -> str:
    """The decision threshold in the estimate's own sign: "> 0.2", "< −0.2"."""
    sign = 1 if claim["direction"] == "greater" else -1
    return f"{'>' if sign > 0 else '<'} {fmt(sign * claim['min_effect'])}"


def summary_line(results: Mapping, path: str | Path) -> str:
    """The line `reproduce` ends with: `<slug> <config>: h holds · f fails · i inconclusive → path`."""
    return f"{results['paper']} {results['config']}: {counts_text(results)} → {path}"


def write_results(out_dir: str | Path, results: dict, announce: bool = True) -> Path:
    """Validate, write results.json and RESULTS.md, and print the summary line."""
    validate(results)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "results.json"
    path.write_text(json.dumps(results, indent=2, default=_json_default) + "\n")
    (out_dir / "RESULTS.md").write_text(render_markdown(results))
    if announce:
        print(summary_line(results, path), flush=True)
    return path


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def load_results(path: str | Path) -> dict:
    results = json.loads(Path(path).read_text())
    validate(results)
    return results


def line_plot(
    path: str | Path, series: dict[str, tuple], *, xlabel: str, ylabel: str, title: str = "",
    logx: bool = False, logy: bool = False, styles: dict[str, str] | None = None,
    colors: dict[str, str] | None = None,
) -> Path:
    """Plot `series[label] = (x, y)` or `(x, y, yerr)` as lines (with a ±err band) to a PNG.

    `styles` maps a label to a matplotlib format string, `colors` to a colour."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8), dpi=110)
    for label, data in series.items():
        x, y = np.asarray(data[0], float), np.asarray(data[1], float)
        color = {"color": colors[label]} if colors and label in colors else {}
        line, = ax.plot(x, y, (styles or {}).get(label, "-"), label=label, lw=1.6, **color)
        if len(data) > 2 and data[2] is not None:
            err = np.asarray(data[2], float)
            ax.fill_between(x, y - err, y + err, color=line.get_color(), alpha=0.15, lw=0)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
