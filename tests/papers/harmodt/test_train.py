"""The trainer: masked inner steps on real data, determinism, resume after a kill, G-HarmoDT."""

import math
from pathlib import Path

import pytest
import torch

import papers.harmodt
from papers.harmodt.data import load_task_data
from papers.harmodt.train import Trainer, train
from shared.checkpoint import list_checkpoints
from shared.cli import Context
from shared.runs import is_done
from shared.tracking import read_metrics

CTX = Context("harmodt", "smoke", [], Path(papers.harmodt.__file__).parent)


def _without_time(records):
    return [{k: v for k, v in r.items() if k != "time"} for r in records]


def test_a_harmodt_iteration_leaves_the_tasks_masked_out_weights_unchanged(tmp_path, make_cfg):
    cfg = make_cfg(tmp_path, "train.warmup=1")
    trainer = Trainer(cfg, "harmodt-f", load_task_data(cfg, "near-optimal"), seed=0)
    trainer.iteration = 1  # task 1, and not a mask-update iteration
    mask = trainer.harmony.masks[1]
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.step()
    moved_in = 0
    for name, p in trainer.model.named_parameters():
        if name in mask:
            assert torch.equal(p[~mask[name]], before[name][~mask[name]]), name
            moved_in += int((p[mask[name]] != before[name][mask[name]]).sum())
    assert moved_in > 0


def test_mask_updates_keep_every_tasks_density(tmp_path, make_cfg):
    cfg = make_cfg(tmp_path, "harmo.k_max=5")
    trainer = Trainer(cfg, "harmodt-m", load_task_data(cfg, "near-optimal"), seed=0)
    counts = [sum(int(m.sum()) for m in mask.values()) for mask in trainer.harmony.masks]
    old = [{n: m.clone() for n, m in mask.items()} for mask in trainer.harmony.masks]
    k = trainer.harmony.update_masks(trainer.loss_on, 2, progress=0.5)
    assert k == 10
    for mask, count, before in zip(trainer.harmony.masks, counts, old):
        assert sum(int(m.sum()) for m in mask.values()) == count
        changed = sum(int((mask[n] != before[n]).sum()) for n in mask)
        assert changed == 2 * k  # k pruned + k revived


def test_the_random_mask_reference_matches_untrained_masks_and_leaves_the_rng_alone(tmp_path, make_cfg):
    from papers.harmodt.claims import mask_iou_excess

    cfg = make_cfg(tmp_path, "model.hidden=64")
    data = load_task_data(cfg, "near-optimal")
    for seed in range(3):
        trainer = Trainer(cfg, "harmodt-f", data, seed=seed)
        state = torch.get_rng_state()
        reference = trainer.random_overlap()
        assert torch.equal(state, torch.get_rng_state())
        assert abs(mask_iou_excess(trainer.overlap(), reference)) < 0.005  # untrained = random
        assert reference == trainer.random_overlap()
    assert Trainer(cfg, "prompt-dt", data, seed=0).random_overlap() is None


def test_training_is_deterministic_for_a_seed(tmp_path, make_cfg):
    a = train(make_cfg(tmp_path / "a"), CTX, "harmodt-f", "near-optimal", seed=0)
    b = train(make_cfg(tmp_path / "b"), CTX, "harmodt-f", "near-optimal", seed=0)
    drop = ("run_dir",)
    assert {k: v for k, v in a.items() if k not in drop} == {k: v for k, v in b.items() if k not in drop}
    assert _without_time(read_metrics(Path(a["run_dir"]))) == _without_time(read_metrics(Path(b["run_dir"])))


@pytest.mark.parametrize("method", ["harmodt-f", "g-harmodt"])
def test_a_killed_run_resumes_to_the_same_final_metrics(tmp_path, make_cfg, monkeypatch, method):
    uninterrupted = train(make_cfg(tmp_path / "a"), CTX, method, "near-optimal", seed=0)
    real_step, calls = torch.optim.AdamW.step, {"n": 0}

    def crash_at_iteration_nine(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 9:
            raise RuntimeError("simulated kill")
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", crash_at_iteration_nine)
    with pytest.raises(RuntimeError, match="simulated kill"):
        train(make_cfg(tmp_path / "b"), CTX, method, "near-optimal", seed=0)
    monkeypatch.undo()
    (killed,) = (tmp_path / "b" / "runs" / "harmodt" / "smoke" / f"{method}-near-optimal").iterdir()
    assert not is_done(killed)
    assert list_checkpoints(killed / "checkpoints")[-1].name == "step_000000006"
    resumed = train(make_cfg(tmp_path / "b", "resume=latest"), CTX, method, "near-optimal", seed=0)
    assert resumed["run_dir"] == str(killed) and is_done(killed)
    drop = ("run_dir",)
    assert {k: v for k, v in resumed.items() if k not in drop} == \
        {k: v for k, v in uninterrupted.items() if k not in drop}
    assert _without_time(read_metrics(killed)) == _without_time(read_metrics(Path(uninterrupted["run_dir"])))


def test_g_harmodt_clusters_tasks_and_evaluates_without_task_ids(tmp_path, make_cfg):
    summary = train(make_cfg(tmp_path), CTX, "g-harmodt", "sub-optimal", seed=1)
    assert summary["groups"] == [0, 1]  # two tasks, two groups: one task each
    assert summary["unseen_success"] is not None
    assert [c["iteration"] for c in summary["curve"]] == [6, 12]
    assert summary["final_success"] == summary["curve"][-1]["success"]
    assert summary["best_success"] == max(c["success"] for c in summary["curve"])


def _revived(before, after):
    flat = lambda m: torch.cat([m[n].flatten() for n in m])  # noqa: E731
    old, new = flat(before), flat(after)
    return torch.nonzero(new & ~old).flatten(), torch.nonzero(~old).flatten()


@pytest.mark.parametrize("revive_grad", ["masked", "dense"])
def test_revive_grad_flag_switches_between_the_released_and_the_fixed_revive(tmp_path, make_cfg, revive_grad):
    cfg = make_cfg(tmp_path, f"harmo.revive_grad={revive_grad}", "harmo.k_max=10")
    trainer = Trainer(cfg, "harmodt-f", load_task_data(cfg, "near-optimal"), seed=0)
    before = {n: m.clone() for n, m in trainer.harmony.masks[0].items()}
    k = trainer.harmony.update_masks(trainer.loss_on, 2, progress=0.25)
    revived, inactive = _revived(before, trainer.harmony.masks[0])
    assert k == 10 and len(revived) == 10
    first_inactive = inactive[:10]
    if revive_grad == "masked":  # every inactive score is 0: ties go to the lowest flat index
        assert torch.equal(revived, first_inactive)
    else:  # the dense gradient ranks the inactive entries
        assert not torch.equal(revived, first_inactive)


def test_learning_rate_schedule_warms_up_then_is_constant_or_cosine_to_zero():
    from papers.harmodt.train import lr_factor

    # released: linear warm-up, then constant (as before issue 21's decay option)
    assert [lr_factor(s, warmup=4, total=10) for s in (0, 1, 3, 4, 9, 50)] == [0.25, 0.5, 1.0, 1.0, 1.0, 1.0]
    # cosine: 1 at the end of the warm-up, 1/2 half-way, 0 at `total`
    cos = [lr_factor(s, warmup=2, total=10, decay="cosine") for s in (0, 1, 2, 6, 10)]
    assert cos[:3] == [0.5, 1.0, 1.0] and cos[3] == pytest.approx(0.5) and cos[4] == pytest.approx(0.0)
    assert lr_factor(4, warmup=2, total=10, decay="cosine") == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    # no warm-up is allowed by the range (ge=0) and no longer divides by zero
    assert lr_factor(0, warmup=0, total=10) == 1.0


def test_the_trainer_steps_its_learning_rate_on_the_cosine(tmp_path, make_cfg):
    cfg = make_cfg(tmp_path, "train.decay=cosine", "train.warmup=2", "train.iterations=6", "train.lr=1e-3")
    trainer = Trainer(cfg, "prompt-dt", load_task_data(cfg, "near-optimal"), seed=0)
    lrs = []
    for _ in range(6):
        lrs.append(trainer.optimizer.param_groups[0]["lr"])
        trainer.step()
    assert lrs == pytest.approx([1e-3 * f for f in (0.5, 1.0, 1.0, 0.5 * (1 + math.cos(math.pi / 4)),
                                                      0.5, 0.5 * (1 + math.cos(3 * math.pi / 4)))])
