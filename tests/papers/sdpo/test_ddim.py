import math

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler

from papers.sdpo.ddim import alpha_bar, ddim_step, sample_trajectories, timesteps_for


def make_scheduler(**kw) -> DDIMScheduler:
    return DDIMScheduler(num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085,
                         beta_end=0.012, prediction_type="epsilon", timestep_spacing="trailing",
                         clip_sample=False, set_alpha_to_one=False, **kw)


def test_trailing_schedule_and_previous_timesteps():
    sched = make_scheduler()
    t, prev = timesteps_for(sched, 4)
    assert t.tolist() == [999, 749, 499, 249]
    assert prev.tolist() == [749, 499, 249, -1]
    t3, prev3 = timesteps_for(sched, 3)
    assert t3.tolist() == [999, 666, 332]
    assert prev3.tolist() == [666, 332, -1]
    # the released code's t - 1000 // N misses the schedule when N does not divide 1000
    assert timesteps_for(sched, 3, "released")[1].tolist() == [666, 333, -1]


def test_log_prob_equals_independent_gaussian_density():
    sched = make_scheduler()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 4, 4, generator=gen)
    eps = torch.randn(2, 3, 4, 4, generator=gen)
    noise = torch.randn(2, 3, 4, 4, generator=gen)
    t, t_prev, eta = 749, 499, 0.7
    prev, x0, logp = ddim_step(sched, eps, t, t_prev, x, eta, noise=noise)
    # independent computation in float64 numpy from the brief's formulas
    ab = sched.alphas_cumprod.double().numpy()
    a_t, a_p = ab[t], ab[t_prev]
    xn, en, nn_ = (v.double().numpy() for v in (x, eps, noise))
    x0_ref = (xn - math.sqrt(1 - a_t) * en) / math.sqrt(a_t)
    sigma = eta * math.sqrt((1 - a_p) / (1 - a_t)) * math.sqrt(1 - a_t / a_p)
    mu = math.sqrt(a_p) * x0_ref + math.sqrt(1 - a_p - sigma**2) * en
    sample = mu + sigma * nn_
    dens = -((sample - mu) ** 2) / (2 * sigma**2) - math.log(sigma) - 0.5 * math.log(2 * math.pi)
    np.testing.assert_allclose(x0.numpy(), x0_ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(prev.numpy(), sample, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(logp.numpy(), dens.reshape(2, -1).mean(1), rtol=1e-5)
    # and torch's Normal agrees on a different sample given as prev_sample
    other = torch.randn(2, 3, 4, 4, generator=gen)
    _, _, logp_other = ddim_step(sched, eps, t, t_prev, x, eta, prev_sample=other)
    normal = torch.distributions.Normal(torch.from_numpy(mu).float(), sigma)
    torch.testing.assert_close(logp_other, normal.log_prob(other).flatten(1).mean(1), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("eta", [1.0, 0.3])
def test_step_reproduces_diffusers_ddim_step_with_same_noise(eta):
    sched = make_scheduler()
    timesteps, prev = timesteps_for(sched, 10)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(3, 3, 8, 8, generator=gen)
    for t, tp in zip(timesteps.tolist(), prev.tolist(), strict=True):
        eps = torch.randn(3, 3, 8, 8, generator=gen)
        noise = torch.randn(3, 3, 8, 8, generator=gen)
        ours, x0, _ = ddim_step(sched, eps, t, tp, x, eta, noise=noise)
        ref = sched.step(eps, t, x, eta=eta, variance_noise=noise)
        torch.testing.assert_close(ours, ref.prev_sample, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(x0, ref.pred_original_sample, rtol=1e-5, atol=1e-5)
        x = ours


def test_final_step_uses_final_alpha():
    sched = make_scheduler()
    assert alpha_bar(sched, torch.tensor([-1])).item() == pytest.approx(float(sched.alphas_cumprod[0]))
    assert alpha_bar(make_scheduler(), torch.tensor([999])).item() == pytest.approx(
        float(sched.alphas_cumprod[999]))


def test_sample_trajectories_records_a_consistent_chain():
    sched = make_scheduler()
    gen = torch.Generator().manual_seed(2)
    weight = torch.randn(3, 3, 1, 1, generator=gen) * 0.1

    def eps_fn(x, t, cond):
        return torch.nn.functional.conv2d(x, weight) + cond.mean() * 0

    x_T = torch.randn(4, 3, 6, 6, generator=gen)
    traj = sample_trajectories(eps_fn, sched, torch.zeros(4, 2, 5), x_T, 5, 1.0,
                               generator=torch.Generator().manual_seed(3))
    assert traj.latents.shape == (4, 6, 3, 6, 6) and traj.x0_preds.shape == (4, 5, 3, 6, 6)
    assert traj.log_probs.shape == (4, 5)
    # replaying each recorded transition gives back the recorded log-probabilities
    for i, (t, tp) in enumerate(zip(traj.timesteps.tolist(), traj.prev_timesteps.tolist(), strict=True)):
        x = traj.latents[:, i]
        _, _, logp = ddim_step(sched, eps_fn(x, None, torch.zeros(1)), t, tp, x, 1.0,
                               prev_sample=traj.latents[:, i + 1])
        torch.testing.assert_close(logp, traj.log_probs[:, i])
    # the same generator seed gives the same chain
    again = sample_trajectories(eps_fn, sched, torch.zeros(4, 2, 5), x_T, 5, 1.0,
                                generator=torch.Generator().manual_seed(3))
    assert torch.equal(again.latents, traj.latents)


def test_a_scheduler_with_set_alpha_to_one_is_corrected():
    from papers.sdpo.ddim import checked_scheduler

    bad = DDIMScheduler(num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085,
                        beta_end=0.012, timestep_spacing="trailing", clip_sample=False,
                        set_alpha_to_one=True)
    assert float(bad.final_alpha_cumprod) == 1.0
    fixed, corrected = checked_scheduler(bad)
    assert corrected and not fixed.config.set_alpha_to_one
    assert float(fixed.final_alpha_cumprod) == pytest.approx(float(bad.alphas_cumprod[0]))
    torch.testing.assert_close(fixed.alphas_cumprod, bad.alphas_cumprod)
    same, again = checked_scheduler(fixed)
    assert same is fixed and not again
    # the last step of a 2-step chain: a finite, sensible log-prob after the correction
    x = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    eps = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(1))
    times, prev = timesteps_for(fixed, 2)
    _, _, logp = ddim_step(fixed, eps, times[-1], prev[-1], x, 1.0,
                           generator=torch.Generator().manual_seed(2))
    assert bool(torch.isfinite(logp).all()) and float(logp.min()) > -100
    times, prev = timesteps_for(bad, 2)
    sample = torch.randn(2, 3, 4, 4)
    _, _, bad_logp = ddim_step(bad, eps, times[-1], prev[-1], x, 1.0, prev_sample=sample)
    assert float(bad_logp.max()) < -1e10  # what the correction avoids (MIN_STD hides a −∞)


def test_chunked_sampling_matches_unchunked_shapes_and_is_seeded():
    from papers.sdpo.ddim import sample_in_chunks

    sched = make_scheduler()
    gen = torch.Generator().manual_seed(0)
    x_T, cond = torch.randn(5, 3, 4, 4, generator=gen), torch.zeros(5, 1, 1)

    def eps(x, t, c):  # a fixed smooth "denoiser"
        return 0.5 * x

    whole = sample_trajectories(eps, sched, cond, x_T, 3, 1.0, torch.Generator().manual_seed(1))
    runs = [sample_in_chunks(eps, sched, cond, x_T, 3, 1.0, torch.Generator().manual_seed(1), chunk=2)
            for _ in range(2)]
    assert runs[0].latents.shape == whole.latents.shape and runs[0].log_probs.shape == whole.log_probs.shape
    torch.testing.assert_close(runs[0].latents, runs[1].latents)
    torch.testing.assert_close(runs[0].latents[:, 0], x_T)
    same = sample_in_chunks(eps, sched, cond, x_T, 3, 1.0, torch.Generator().manual_seed(1), chunk=5)
    torch.testing.assert_close(same.latents, whole.latents)  # one chunk = unchunked, draw for draw
