"""The held-out sweep's extension rule (tune.extend): a choice gets its missing neighbours
along each axis until it is inside the sweep, the same rule for every head; and the claims'
"tuned inside its sweep" check reads each axis at the choice."""

import math
from pathlib import Path

import pytest

from papers.neuron import reproduce
from papers.neuron.claims import SWEEP_TITLE, same_sweep, tuned_inside
from papers.neuron.config import NeuronExperimentConfig
from papers.neuron.heads import extend_points
from shared.cli import Context

GRID = [(a, s) for s in (5.0, 20.0, 80.0) for a in (0.03, 0.1, 0.3)]


def test_extend_points_adds_the_missing_neighbours_beyond_an_edge():
    # a corner choice: one lr beyond (×3, the axis' last ratio) and one scale beyond (×4)
    assert extend_points(GRID, (0.3, 80.0)) == [(0.9, 80.0), (0.3, 320.0)]
    # the low corner: ÷3.33 for the lr, ÷4 for the scale
    assert extend_points(GRID, (0.03, 5.0)) == [(0.009, 5.0), (0.03, 1.25)]
    # an interior choice has a swept neighbour on both sides of both axes: nothing to add
    assert extend_points(GRID, (0.1, 20.0)) == []
    # a choice on a newly added point gets the neighbours it lacks at its own scale
    grown = GRID + [(0.9, 80.0), (0.3, 320.0)]
    assert extend_points(grown, (0.3, 320.0)) == [(0.1, 320.0), (0.9, 320.0), (0.3, 1280.0)]
    # SMIE's critic (no scale) extends its lrs only; an axis with one value is not extended
    assert extend_points([(0.03, None), (0.1, None), (0.3, None)], (0.03, None)) == [(0.009, None)]
    assert extend_points([(0.1, 0.1), (0.1, 1.0)], (0.1, 1.0)) == [(0.1, 10.0)]


@pytest.mark.parametrize("peak,expected", [((0.9, 320.0), (0.9, 320.0)), ((0.1, 20.0), (0.1, 20.0))])
def test_run_sweep_follows_the_peak_until_it_is_inside(monkeypatch, peak, expected):
    cfg = NeuronExperimentConfig()
    cfg.tune.lrs, cfg.tune.logit_scales, cfg.tune.extend = [0.03, 0.1, 0.3], [5.0, 20.0, 80.0], 3
    cfg.experiment.methods = ["neuron", "smie"]

    def score(lr, scale):  # a smooth landscape with its peak at `peak`
        out = -math.log(lr / peak[0]) ** 2
        return out - (0 if scale is None else math.log(scale / peak[1]) ** 2)

    calls = []

    def fake_jobs(fn, jobs, processes, desc=""):
        calls.append(len(jobs))
        return [{"method": j.method, "split": j.split, "unseen": j.unseen, "seed": j.seed, "lr": j.lr,
                 "scale": j.scale, "val_zsl": score(j.lr, j.scale)} for j in jobs]

    monkeypatch.setattr(reproduce, "run_jobs", fake_jobs)
    sweep = reproduce.run_sweep(cfg, Context("neuron", "t", [], Path(".")), [("u12-0", list(range(12)))], 2)
    picks = reproduce.chosen(sweep)
    assert picks[("neuron", "u12-0")] == expected
    assert picks[("smie", "u12-0")][0] == expected[0]
    assert calls[0] == 9 + 3 and len(calls) <= 4  # the starting grid, then ≤ tune.extend rounds
    table = reproduce.sweep_table(sweep, picks)
    results = {"tables": [{**table, "title": SWEEP_TITLE}]}
    for method in ("neuron", "smie"):
        assert tuned_inside(method, 12, results["tables"][0])["ok"]
    assert same_sweep("neuron", "smie", 12, results["tables"][0])["ok"]  # same starting lrs


def test_run_sweep_stops_after_extend_rounds_and_the_edge_is_reported(monkeypatch):
    cfg = NeuronExperimentConfig()
    cfg.tune.lrs, cfg.tune.logit_scales, cfg.tune.extend = [0.03, 0.1, 0.3], [5.0, 20.0, 80.0], 1
    cfg.experiment.methods = ["neuron"]
    monkeypatch.setattr(reproduce, "run_jobs", lambda fn, jobs, p, desc="": [
        {"method": j.method, "split": j.split, "unseen": j.unseen, "seed": j.seed, "lr": j.lr,
         "scale": j.scale, "val_zsl": j.lr * j.scale} for j in jobs])  # rises without end
    sweep = reproduce.run_sweep(cfg, Context("neuron", "t", [], Path(".")), [("u12-0", list(range(12)))], 2)
    assert len(sweep) == 9 + 2 and {r["round"] for r in sweep} == {0, 1}
    table = {**reproduce.sweep_table(sweep, reproduce.chosen(sweep)), "title": SWEEP_TITLE}
    pre = tuned_inside("neuron", 12, table)
    assert not pre["ok"] and "scale 320" in pre["value"] and "extended in 1 round" in pre["detail"]


def test_a_diverged_point_is_never_chosen():
    rows = [{"method": "neuron", "split": "s", "lr": lr, "scale": 1.0, "val_zsl": v}
            for lr, v in ((0.1, float("nan")), (0.3, 0.2), (1.0, float("nan")))]
    assert reproduce.chosen(rows)[("neuron", "s")] == (0.3, 1.0)


def test_tuned_inside_reads_each_axis_at_the_choice():
    def row(lr, scale, chosen=""):
        return ["neuron", 12, "u12-0", lr, scale, 0.5, chosen, 0]
    # lr 0.3 is inside [0.1, 0.9] at scale 320, scale 320 inside [80, 1280] at lr 0.3, although
    # 0.3 is not inside the lrs swept at scale 80 ... only the choice's own lines count
    rows = [row(0.1, 320.0), row(0.3, 320.0, "yes"), row(0.9, 320.0), row(0.3, 80.0), row(0.3, 1280.0),
            row(0.1, 80.0)]
    assert tuned_inside("neuron", 12, {"title": SWEEP_TITLE, "rows": rows})["ok"]
    rows = [row(0.1, 320.0), row(0.3, 320.0, "yes"), row(0.3, 80.0), row(0.3, 1280.0)]
    pre = tuned_inside("neuron", 12, {"title": SWEEP_TITLE, "rows": rows})
    assert not pre["ok"] and "lr 0.3" in pre["value"]
