"""Tuning on a tiny random policy and fake episodes: the frozen policy stays bit-identical,
the guidance gradient reaches θ through x̂0 (and vanishes with λ = 0), and Prompt-Tuning DT
learns a tiny problem."""

import numpy as np
import pytest
import torch

from papers.prompt_diffuser.pretrain import build_policy
from papers.prompt_diffuser.tune import weights_digest
from papers.prompt_diffuser.tuning import PromptDiffuser, TuningData, make_method
from shared.offline_rl.segments import Normaliser
from tests.papers.prompt_diffuser.helpers import fake_episodes, smoke_config


def _setup(*extra):
    cfg = smoke_config(*extra)
    torch.manual_seed(0)
    policy = build_policy(cfg, 39, 4).eval().requires_grad_(False)
    fewshot = [fake_episodes(1, 20, g, 10 + g) for g in range(2)]
    demos = [fake_episodes(2, 20, g, 20 + g) for g in range(2)]
    norm = Normaliser.fit([e for d in demos for e in d])
    return cfg, policy, TuningData(cfg, norm, fewshot, demos)


@pytest.mark.parametrize("method", ["pd", "pd-sum", "pd-guidance", "ptdt", "finetune"])
def test_the_frozen_policy_is_bit_identical_after_tuning(method):
    cfg, policy, data = _setup()
    before = weights_digest(policy)
    snapshot = {k: v.clone() for k, v in policy.state_dict().items()}
    m = make_method(method, cfg, policy, data)
    rng, gen = np.random.default_rng(0), torch.Generator().manual_seed(0)
    for _ in range(3):
        m.step(rng, gen)
    assert weights_digest(policy) == before
    for k, v in policy.state_dict().items():
        assert torch.equal(v, snapshot[k]), k
    assert all(p.grad is None for p in policy.parameters())


@pytest.mark.parametrize("estimate", ["one-step", "chain"])
def test_the_guidance_gradient_reaches_theta_through_x0_hat(estimate):
    cfg, policy, data = _setup(f"diffuser.x0_estimate={estimate}")
    pd = PromptDiffuser(cfg, policy, data)
    for lam, nonzero in ((1.0, True), (0.0, False)):
        _, l_pdt = pd.losses(np.random.default_rng(0), torch.Generator().manual_seed(0))
        grads = torch.autograd.grad(lam * l_pdt, pd.params, allow_unused=False)
        total = sum(float(g.abs().sum()) for g in grads)
        assert (total > 0) == nonzero, (lam, total)
        assert all(torch.isfinite(g).all() for g in grads)


def test_a_pd_step_with_lambda_zero_is_a_dm_only_step():
    def after_step(rule, lam):
        cfg, policy, data = _setup(f"diffuser.guidance_weight={lam}")
        torch.manual_seed(3)
        pd = PromptDiffuser(cfg, policy, data, rule)
        pd.step(np.random.default_rng(0), torch.Generator().manual_seed(0))
        return [p.detach().clone() for p in pd.params]

    for a, b in zip(after_step("projection", 0.0), after_step("dm", 1.0)):
        assert torch.equal(a, b)


def test_the_diffuser_learns_to_reconstruct_a_tiny_prompt_set():
    cfg, policy, data = _setup("tune.lr=3e-3", "tune.batch_size=16")
    m = make_method("pd-dm", cfg, policy, data)
    rng, gen = np.random.default_rng(0), torch.Generator().manual_seed(0)
    losses = [m.step(rng, gen)["l_dm"] for _ in range(60)]
    # the skip path starts at the unit-variance floor (~mean ᾱ); the MLP then fits the windows
    assert np.mean(losses[:10]) < 0.45 and np.mean(losses[-10:]) < 0.9 * np.mean(losses[:10])


def test_pd_samples_a_prompt_per_goal_with_the_demo_condition():
    cfg, policy, data = _setup()
    pd = PromptDiffuser(cfg, policy, data)
    a = pd.eval_prompts(torch.Generator().manual_seed(0))
    b = pd.eval_prompts(torch.Generator().manual_seed(1))
    assert a["prompt_states"].shape == (2, 5, 39) and a["prompt_actions"].shape == (2, 5, 4)
    assert torch.equal(a["prompt_rtg"], data.demo["prompt_rtg"])
    assert torch.equal(a["prompt_timesteps"], data.demo["prompt_timesteps"])
    assert not torch.equal(a["prompt_states"], b["prompt_states"])  # sampled per episode


def test_benchmark_runs_on_the_smoke_config(capsys):
    from papers.prompt_diffuser.benchmark import main

    assert main(["--config", "smoke", "--steps", "2"]) == 0
    out = capsys.readouterr().out
    assert "tuning steps/s" in out and "ms prompt generation per episode" in out
