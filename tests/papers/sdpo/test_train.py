"""The trainer: every method updates only the policy's trainable weights, runs are
deterministic for a seed, a killed run resumes to the same final metrics, and the LoRA
reference really is the frozen base model."""

import json
from pathlib import Path

import pytest
import torch

import papers.sdpo
from papers.sdpo.train import Trainer, train, variant
from shared import UserError
from shared.checkpoint import list_checkpoints
from shared.cli import Context
from shared.runs import is_done
from shared.tracking import read_metrics

CTX = Context("sdpo", "smoke", [], Path(papers.sdpo.__file__).parent)


def _without_time(records):
    return [{k: v for k, v in r.items() if k != "time"} for r in records]


@pytest.mark.parametrize("method", ["sdpo", "ddpo", "d3po", "rebel"])
def test_an_epoch_moves_only_the_lora_weights(tmp_path, make_cfg, method):
    trainer = Trainer(make_cfg(tmp_path), method, seed=0)
    before = {n: p.detach().clone() for n, p in trainer.policy.unet.named_parameters()}
    logs = trainer.run_epoch()
    assert logs["samples"] == 4 and torch.isfinite(torch.tensor(logs["loss"]))
    changed = {n for n, p in trainer.policy.unet.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all("lora" in n for n in changed)
    assert any("lora_B" in n for n in changed)


def test_reference_is_the_base_model_after_training(tmp_path, make_cfg):
    trainer = Trainer(make_cfg(tmp_path), "d3po", seed=0)
    x = torch.randn(2, *trainer.policy.backbone.latent_shape)
    t = torch.tensor([999, 500])
    cond = trainer.policy.backbone.encode_prompts(["a red circle", "a blue square"])
    with torch.no_grad():
        base = trainer.policy.eps(x, t, cond)
    for _ in range(2):
        trainer.run_epoch()
    with torch.no_grad():
        with trainer.policy.reference() as reference:
            ref = reference(x, t, encoder_hidden_states=cond).sample
        now = trainer.policy.eps(x, t, cond)
    torch.testing.assert_close(ref, base)
    assert not torch.allclose(now, base)


def _reproduce_run(smoke_reproduce, method: str, seed: int) -> dict:
    """The summary of the session's smoke reproduce run of `method` and `seed` (a `train`
    of the same smoke config in this process, on the same base model)."""
    (run,) = sorted((smoke_reproduce[0] / "sdpo" / "smoke" / method).glob(f"seed{seed}-*"))
    return json.loads((run / "summary.json").read_text())


def test_training_is_deterministic_for_a_seed(tmp_path, make_cfg, smoke_reproduce):
    a = _reproduce_run(smoke_reproduce, "sdpo", 0)
    b = train(make_cfg(tmp_path / "b"), CTX, "sdpo", "", seed=0)
    drop = ("run_dir",)
    assert {k: v for k, v in a.items() if k not in drop} == {k: v for k, v in b.items() if k not in drop}
    assert _without_time(read_metrics(Path(a["run_dir"]))) == _without_time(read_metrics(Path(b["run_dir"])))
    c = _reproduce_run(smoke_reproduce, "sdpo", 1)
    assert c["final_1"] != a["final_1"]


@pytest.mark.parametrize("method", ["sdpo", "rebel"])
def test_a_killed_run_resumes_to_the_same_final_metrics(tmp_path, make_cfg, monkeypatch, method,
                                                        smoke_reproduce):
    # the uninterrupted run: the session's smoke reproduce ran it (2 epochs, same config)
    uninterrupted = _reproduce_run(smoke_reproduce, method, 0)
    real_step, calls = torch.optim.AdamW.step, {"n": 0}
    # smoke: 1 micro-batch of pairs × 3 denoising steps; REBEL steps once per micro-batch
    steps_per_epoch = 3 if method == "sdpo" else 1

    def crash_in_the_second_epoch(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == steps_per_epoch + min(2, steps_per_epoch):
            raise RuntimeError("simulated kill")
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", crash_in_the_second_epoch)
    with pytest.raises(RuntimeError, match="simulated kill"):
        train(make_cfg(tmp_path / "b"), CTX, method, "", seed=0)
    monkeypatch.undo()
    (killed,) = (tmp_path / "b" / "runs" / "sdpo" / "smoke" / method).iterdir()
    assert not is_done(killed)
    assert list_checkpoints(killed / "checkpoints")[-1].name == "step_000000001"
    resumed = train(make_cfg(tmp_path / "b", "resume=latest"), CTX, method, "", seed=0)
    assert resumed["run_dir"] == str(killed) and is_done(killed)
    drop = ("run_dir",)
    assert {k: v for k, v in resumed.items() if k not in drop} == \
        {k: v for k, v in uninterrupted.items() if k not in drop}
    assert _without_time(read_metrics(killed)) == _without_time(read_metrics(Path(uninterrupted["run_dir"])))


def test_ablations_change_one_setting_each(tmp_path, make_cfg):
    cfg = make_cfg(tmp_path)
    assert variant(cfg, "sparse").sdpo.dense == "sparse"
    assert variant(cfg, "oracle").sdpo.dense == "oracle"
    assert variant(cfg, "gamma0").sdpo.gamma == 0.0
    assert variant(cfg, "lambda1").sdpo.lam == 1.0
    assert variant(cfg, "no-shuffle").sdpo.shuffle is False
    assert cfg.sdpo.dense == "interpolate" and cfg.sdpo.shuffle is True  # the original is untouched


def test_bad_batching_and_ablation_of_a_baseline_are_user_errors(tmp_path, make_cfg):
    with pytest.raises(UserError, match="multiple of train.batch_size"):
        Trainer(make_cfg(tmp_path, "sample.pairs_per_epoch=3"), "sdpo", seed=0)
    with pytest.raises(UserError, match="grad_accum"):
        Trainer(make_cfg(tmp_path, "train.grad_accum=2"), "sdpo", seed=0)
    with pytest.raises(UserError, match="SDPO ablation"):
        train(make_cfg(tmp_path), CTX, "ddpo", "sparse", seed=0)


def test_rebel_update_is_one_exact_gradient_step_per_residual(tmp_path, make_cfg):
    """REBEL on one micro-batch of both smoke pairs with plain SGD (no clipping in effect):
    the update equals −lr · ∇ mean_pairs(e²) of the REBEL loss, computed by autograd over
    whole trajectories; and with two micro-batches the optimiser steps twice (once each)."""
    from papers.sdpo.baselines import rebel_residual

    cfg = make_cfg(tmp_path, "train.batch_size=2", "train.grad_clip=1e9")
    trainer = Trainer(cfg, "rebel", seed=0)
    lr = 0.05
    params = trainer.policy.parameters()
    trainer.optimizer = torch.optim.SGD(params, lr=lr)
    samples = trainer.sample_epoch()
    pairs, steps = samples.pairs, cfg.sample.steps
    rows = torch.arange(2 * pairs)
    old = samples.traj.log_probs
    rho = torch.stack([trainer._log_probs(samples, rows, torch.full((2 * pairs,), j)) for j in range(steps)],
                      dim=1) - old
    e = rebel_residual(rho[:pairs].sum(1), rho[pairs:].sum(1), samples.advantages[:pairs],
                       samples.advantages[pairs:], cfg.baselines.rebel_eta, cfg.sdpo.adv_clip)
    grads = torch.autograd.grad((e**2).mean(), params)
    assert max(g.abs().max().item() for g in grads) > 0
    before = [p.detach().clone() for p in params]
    trainer.update_rebel(samples)
    for p, p0, g in zip(params, before, grads, strict=True):
        torch.testing.assert_close(p.detach() - p0, -lr * g, rtol=1e-4, atol=1e-7)

    calls = []
    trainer2 = Trainer(make_cfg(tmp_path, "train.batch_size=1"), "rebel", seed=0)
    step = trainer2.optimizer.step
    trainer2.optimizer.step = lambda *a, **k: (calls.append(1), step(*a, **k))[1]
    trainer2.update_rebel(trainer2.sample_epoch())
    assert len(calls) == 2  # 2 pairs in micro-batches of 1: one step per residual, not per (pair, step)
