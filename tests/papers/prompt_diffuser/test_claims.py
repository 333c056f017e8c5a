"""The claims' preconditions on hand-made per-seed returns: a "beats" claim needs room below
the full-data upper bound for the smallest effect."""

from papers.prompt_diffuser import claims
from papers.prompt_diffuser.claims import MIN_EFFECT, display, paper_claims
from papers.prompt_diffuser.config import PromptDiffuserConfig
from shared.results import summarize


def _methods(ptdt: float, upper: float) -> dict:
    """Converged runs with per-seed returns: PD beats PTDT by 30 on every seed."""
    seeds = [0.0, 1.0, -1.0, 0.5]

    def entry(mean):
        return {"heldout_return": summarize([mean + s for s in seeds]),
                "tail_change_loss": summarize([0.0] * len(seeds))}

    return {display("pd"): entry(ptdt + 30), display("ptdt"): entry(ptdt),
            display("upper"): entry(upper)}


def _claim(methods):
    (c,) = [c for c in paper_claims(PromptDiffuserConfig(), methods)
            if c["claim"].startswith("Prompt Diffuser > Prompt-Tuning DT")]
    return c


def test_a_beats_claim_holds_with_room_below_the_upper_bound():
    c = _claim(_methods(ptdt=700.0, upper=800.0))
    (room,) = [p for p in c["preconditions"] if p["name"].startswith("room above")]
    assert room["ok"] and room["value"] == 100.0
    assert c["verdict"] == "holds"


def test_a_baseline_at_the_upper_bound_leaves_no_room_and_the_claim_inconclusive():
    c = _claim(_methods(ptdt=795.0, upper=800.0))  # only 5 < MIN_EFFECT below the ceiling
    (room,) = [p for p in c["preconditions"] if p["name"].startswith("room above")]
    assert not room["ok"] and room["value"] == 5.0 and MIN_EFFECT == 10.0
    assert c["verdict"] == "inconclusive" and "room above Prompt-Tuning DT" in c["reason"]
    # without an upper-bound run there is no room check (nothing to compare against)
    methods = _methods(ptdt=795.0, upper=800.0)
    del methods[display("upper")]
    assert not any(p["name"].startswith("room") for p in _claim(methods)["preconditions"])
    assert claims._room(methods, [display("ptdt")]) == []
