"""Tables, plots and notes of a `reproduce` run from its run summaries."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from papers.prompt_diffuser.claims import FROZEN, display
from papers.prompt_diffuser.config import PromptDiffuserConfig
from shared.results import fmt, plateau_change, summarize

PAPER_REACH = {"pd": 555.7, "ptdt": 472.5}  # the paper's reach-v2 returns (Table 1)
PAPER_AVG = {"pd": 474.4, "ptdt": 450.3, "finetune": 450.0, "upper": 496.6}


def _by_seed(rows: list[dict], seeds: list[int]) -> list[dict]:
    index = {r["seed"]: r for r in rows}
    return [index[s] for s in seeds if s in index]


def _relative(curve: list, key) -> np.ndarray:
    vals = np.asarray([c[key] if isinstance(c, dict) else c[1] for c in curve], np.float64)
    return vals / vals[0] if vals.size and vals[0] != 0 else vals


def method_entries(cfg: PromptDiffuserConfig, stage1: list[dict], tuned: list[dict]) -> dict:
    """results.json `methods`: per display name, each metric over seeds (seed order)."""
    seeds, out = cfg.seeds, {}
    pre = _by_seed([r for r in stage1 if r["method"] == "pretrain"], seeds)
    if pre:
        out[FROZEN] = {
            "train_success": summarize([r["train_goals"]["success"] for r in pre]),
            "train_return": summarize([r["train_goals"]["return"] for r in pre]),
            "train_return_ratio": summarize([r["train_goals"]["return"] / r["train_goals"]["demo_return"]
                                             for r in pre]),
            "tail_change_loss": summarize([plateau_change(_relative(r["curve"], 1)) for r in pre]),
            "params": summarize([r["params"] for r in pre])}
    upper = _by_seed([r for r in stage1 if r["method"] == "upper"], seeds)
    if upper:
        out[display("upper")] = {
            "heldout_return": summarize([r["heldout"]["return"] for r in upper]),
            "heldout_success": summarize([r["heldout"]["success"] for r in upper]),
            "train_success": summarize([r["train_goals"]["success"] for r in upper])}
    names = dict.fromkeys(display(r["method"], r["quality"]) for r in tuned)
    for name in names:
        runs = _by_seed([r for r in tuned if display(r["method"], r["quality"]) == name], seeds)
        entry = {"heldout_return": summarize([r["heldout"]["return"] for r in runs]),
                 "heldout_success": summarize([r["heldout"]["success"] for r in runs]),
                 "trainable_params": summarize([r["trainable_params"] for r in runs]),
                 "prompt_s_per_episode": summarize([r["prompt_seconds_per_episode"] for r in runs])}
        for key in runs[0]["curves"]:
            entry[f"tail_change_{key}"] = summarize([plateau_change(_relative(r["curve"], key)) for r in runs])
        rates = [r["steps_per_s"] for r in runs if r["steps_per_s"]]
        if rates:
            entry["steps_per_s"] = summarize(rates)
        out[name] = entry
    return out


def _ms(entry: dict | None, key: str, digits: int = 1) -> str:
    if not entry or key not in entry:
        return "—"
    return f"{entry[key]['mean']:.{digits}f} ± {entry[key]['std']:.{digits}f}"


def tables(cfg: PromptDiffuserConfig, stage1: list[dict], tuned: list[dict]) -> tuple[dict, list]:
    methods = method_entries(cfg, stage1, tuned)
    frozen = methods.get(FROZEN, {})
    rows = []
    for m in ("pd", "pd-dm", "pd-guidance", "pd-sum", "ptdt", "finetune", "prompt-dt", "upper"):
        e = methods.get(display(m))
        if e is None:
            continue
        params = e.get("trainable_params", {}).get("mean")
        share = f"{int(params):,} ({100 * params / frozen['params']['mean']:.1f} %)" \
            if params is not None and frozen else ("0" if m == "upper" else "—")
        rows.append([display(m), PAPER_REACH.get(m, ""), PAPER_AVG.get(m, ""), _ms(e, "heldout_return"),
                     _ms(e, "heldout_success", 2), share])
    main = {"title": f"Held-out goals ({cfg.data.task} ML1 test split, {cfg.data.test_goals} goals, "
                     f"{len(cfg.seeds)} seeds; mean ± std over seeds)",
            "columns": ["method", "paper reach-v2", "paper avg", "ours return", "ours success",
                        "tunable params (of the policy)"], "rows": rows}
    robust = []
    for m in ("pd", "ptdt", "prompt-dt"):
        cells = [_ms(methods.get(display(m, q)), "heldout_return") for q in cfg.tune.init_qualities]
        if any(c != "—" for c in cells):
            robust.append([display(m), *cells])
    out = [main]
    if robust:
        out.append({"title": "Robustness to the initial demonstration's quality (held-out return)",
                    "columns": ["method", *cfg.tune.init_qualities], "rows": robust})
    if frozen:
        out.append({"title": "Frozen Prompt-DT on its training goals with its own prompts (precondition)",
                    "columns": ["success", "return", "return / demonstrations'", "parameters"],
                    "rows": [[_ms(frozen, "train_success", 2), _ms(frozen, "train_return"),
                              _ms(frozen, "train_return_ratio", 3),
                              f"{int(frozen['params']['mean']):,}"]]})
    return methods, out


def plots(cfg: PromptDiffuserConfig, stage1: list[dict], tuned: list[dict], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = method_entries(cfg, stage1, tuned)
    names = [n for n in methods if "heldout_return" in methods[n]]
    written = []
    fig, ax = plt.subplots(figsize=(7, 3.8), dpi=110)
    means = [methods[n]["heldout_return"]["mean"] for n in names]
    stds = [methods[n]["heldout_return"]["std"] for n in names]
    ax.bar(range(len(names)), means, yerr=stds, color="tab:blue", alpha=0.8)
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("held-out return")
    ax.set_title("Return per method on held-out goals (mean ± std over seeds)", fontsize=9)
    fig.tight_layout()
    (out / "plots").mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "plots" / "heldout_return.png")
    plt.close(fig)
    written.append("plots/heldout_return.png")
    pd = [r for r in tuned if r["method"] == "pd" and r["quality"] == "expert"]
    pt = [r for r in tuned if r["method"] == "ptdt" and r["quality"] == "expert"]
    if pd:
        written.append(_prompt_plot(pd, pt, out / "plots" / "prompts_2d.png"))
    return written


def _vectors(prompts: dict) -> np.ndarray:
    s, a = np.asarray(prompts["prompt_states"]), np.asarray(prompts["prompt_actions"])
    return np.concatenate([s, a], -1).reshape(len(s), -1)


def _prompt_plot(pd: list[dict], pt: list[dict], path: Path) -> str:
    """Generated (Prompt Diffuser), tuned (PTDT) and real (demonstration) prompts, PCA to 2-D."""
    import matplotlib.pyplot as plt

    real = _vectors(pd[0]["demo_prompts"])
    gen = np.concatenate([_vectors(r["prompts"]) for r in pd])
    tuned = np.concatenate([_vectors(r["prompts"]) for r in pt]) if pt else np.zeros((0, real.shape[1]))
    allv = np.concatenate([real, gen, tuned])
    mean = allv.mean(0)
    _, _, vt = np.linalg.svd(real - real.mean(0) if len(real) > 1 else allv - mean, full_matrices=False)
    proj = lambda x: (x - mean) @ vt[:2].T  # noqa: E731 - the real prompts' principal axes
    goals = len(real)
    fig, ax = plt.subplots(figsize=(5.5, 4), dpi=110)
    colors = plt.cm.tab10(np.arange(goals) % 10)
    for label, x, marker in (("real (demonstration)", real, "*"), ("Prompt Diffuser", gen, "o"),
                             ("Prompt-Tuning DT", tuned, "x")):
        if len(x):
            p = proj(x)
            ax.scatter(p[:, 0], p[:, 1], c=[colors[i % goals] for i in range(len(x))], marker=marker,
                       s=90 if marker == "*" else 30, label=label, edgecolors="k" if marker == "*" else None)
    ax.set(xlabel="PC 1 of the real prompts", ylabel="PC 2", title="Prompts per held-out goal (colour)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return f"plots/{path.name}"


def notes(cfg: PromptDiffuserConfig, stage1: list[dict], tuned: list[dict]) -> list[str]:
    frozen_ok = all(r["frozen_unchanged"] for r in tuned)
    out = [f"Frozen policy bit-identical after every tuning run (sha256 of all weights): {frozen_ok}.",
           f"x̂0 estimate: {cfg.diffuser.x0_estimate} [recon]; projection: {cfg.diffuser.projection} "
           f"[recon]; N = {cfg.diffuser.steps} diffusion steps ({cfg.diffuser.beta_schedule}); "
           f"λ = {fmt(cfg.diffuser.guidance_weight)}.",
           "Returns are Meta-World v3 rewards summed over data.max_steps steps with scripted-policy "
           "data; they are not comparable with the paper's reach-v2 numbers: compare orderings."]
    rates = [r["steps_per_s"] for r in tuned if r["method"] == "pd" and r["steps_per_s"]]
    gen = [r["prompt_seconds_per_episode"] for r in tuned if r["method"] == "pd"]
    if rates:
        out.append(f"Prompt Diffuser: {np.mean(rates):.2f} tuning steps/s ({cfg.data.test_goals} goals "
                   f"per step), {1000 * np.mean(gen):.2f} ms prompt generation per episode "
                   "(machine shared with other jobs).")
    return out
