"""The DDPM pieces: the one-step x̂0, the noise batch against diffusers' own add_noise, the
x0 <-> prompt packing, the reverse chain through DDPMScheduler.step, the parameter count."""

import numpy as np
import torch

from papers.prompt_diffuser.config import DiffuserConfig
from papers.prompt_diffuser.diffuser import (
    PromptDenoiser,
    diffusion_batch,
    make_scheduler,
    one_step_x0,
    pack_x0,
    pack_y,
    sample_chain,
    x0_to_prompt,
)


def test_one_step_x0_is_x0_when_the_predictor_returns_the_true_noise():
    sched = make_scheduler(DiffuserConfig(steps=10))
    gen = torch.Generator().manual_seed(0)
    x0 = torch.rand(3, 7, 12, generator=gen) * 4 - 2  # inside the clip range ±5
    x_k, eps, k = diffusion_batch(sched, x0, gen)
    assert k.min() >= 0 and k.max() <= 9 and not torch.equal(x_k, x0)
    torch.testing.assert_close(one_step_x0(sched, x_k, eps, k), x0, rtol=0, atol=2e-4)
    # the noisy batch is diffusers' add_noise row by row
    for g in range(3):
        torch.testing.assert_close(x_k[g], sched.add_noise(x0[g], eps[g], k[g]))


def test_one_step_x0_by_hand_and_clipped_like_the_scheduler():
    sched = make_scheduler(DiffuserConfig(steps=4, clip_x0=1.5))
    abar = sched.alphas_cumprod
    x_k, eps, k = torch.tensor([[[0.3, -0.2]]]), torch.tensor([[[0.1, 0.4]]]), torch.tensor([[2]])
    by_hand = (x_k - (1 - abar[2]).sqrt() * eps) / abar[2].sqrt()
    torch.testing.assert_close(one_step_x0(sched, x_k, eps, k), by_hand.clamp(-1.5, 1.5))
    big = one_step_x0(sched, torch.full((1, 1, 2), 50.0), torch.zeros(1, 1, 2), torch.tensor([[3]]))
    assert torch.equal(big, torch.full((1, 1, 2), 1.5))


def test_prompt_packing_round_trips():
    rng = np.random.default_rng(0)
    prompts = {"prompt_states": rng.normal(size=(2, 5, 39)).astype(np.float32),
               "prompt_actions": rng.uniform(-1, 1, (2, 5, 4)).astype(np.float32),
               "prompt_rtg": rng.uniform(0, 9, (2, 5, 1)).astype(np.float32),
               "prompt_timesteps": np.arange(10).reshape(2, 5) + 40, "prompt_mask": np.ones((2, 5))}
    x0, y = pack_x0(prompts, np.ones((2, 5), np.float32), 10.0), pack_y(prompts, 100)
    assert x0.shape == (2, 5 * 44) and y.shape == (2, 10)
    back = x0_to_prompt(torch.as_tensor(x0), torch.as_tensor(y), 39, 4, 100)
    np.testing.assert_array_equal(back["prompt_states"].numpy(), prompts["prompt_states"])
    np.testing.assert_array_equal(back["prompt_actions"].numpy(), prompts["prompt_actions"])
    np.testing.assert_array_equal(back["prompt_timesteps"].numpy(), prompts["prompt_timesteps"])
    np.testing.assert_allclose(back["prompt_rtg"].numpy(), prompts["prompt_rtg"])
    assert back["prompt_mask"].sum() == 10


def test_reverse_chain_is_the_schedulers_loop_and_differentiable():
    dc = DiffuserConfig(steps=5, hidden=16, layers=1, time_dim=4)
    model, sched = PromptDenoiser(2, 6, 4, dc), make_scheduler(dc)
    y = torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(1))
    x = sample_chain(model, sched, y, torch.Generator().manual_seed(2))
    gen = torch.Generator().manual_seed(2)  # the same loop written out with diffusers' API
    ref = torch.randn(2, 3, 6, generator=gen)
    sched.set_timesteps(5)
    for t in sched.timesteps:
        ref = sched.step(model(ref, y, torch.full((2, 3), int(t))), t, ref, generator=gen).prev_sample
    torch.testing.assert_close(x, ref)
    x.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_members_are_independent():
    dc = DiffuserConfig(hidden=8, layers=2, time_dim=4)
    model = PromptDenoiser(3, 5, 2, dc)
    x, y, k = torch.randn(3, 4, 5), torch.randn(3, 4, 2), torch.zeros(3, 4, dtype=torch.long)
    model(x, y, k)[1].sum().backward()
    for p in model.parameters():
        assert p.grad[0].abs().sum() == 0 and p.grad[2].abs().sum() == 0 and p.grad[1].abs().sum() > 0


def test_tunable_parameter_count():
    # x0 = 5 × (39 + 4 + 1) = 220, y = 2 × 5, k embedded in 16: 246 → 256 → 256 → 220
    model = PromptDenoiser(5, 220, 10, DiffuserConfig())
    per_goal = 246 * 256 + 256 + 256 * 256 + 256 + 256 * 220 + 220
    assert model.params_per_goal() == per_goal == 185_564  # the paper: 0.17M
    assert sum(p.numel() for p in model.parameters()) == 5 * per_goal
