import math

import numpy as np
import pytest
import torch

from papers.sdpo.baselines import (
    d3po_loss,
    ddpo_loss,
    preference_signs,
    rebel_residual,
    rebel_step_surrogate,
)
from papers.sdpo.sdpo import (
    StepPromptStatTracker,
    anchor_similarities,
    discounted_returns,
    interpolate_rewards,
    query_steps,
    sdpo_loss,
    sparse_rewards,
    step_weights,
)


def test_anchor_is_the_step_least_similar_to_both_ends():
    # 4 steps of 2-d "images": ends along x, step 2 orthogonal to both, step 1 in between
    x0 = torch.tensor([[[1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 0.1]]])
    anchor, sims = anchor_similarities(x0, "raw")
    assert anchor.tolist() == [2]
    torch.testing.assert_close(sims[0, 1], torch.nn.functional.cosine_similarity(x0[0], x0[0, 2:3], dim=1))
    assert query_steps(anchor, 4).tolist() == [[0, 2, 3]]


def test_interpolated_rewards_exact_at_queries_and_convex_elsewhere():
    gen = torch.Generator().manual_seed(0)
    x0 = torch.randn(5, 7, 3, 4, 4, generator=gen)
    anchor, sims = anchor_similarities(x0)
    ref = torch.randn(5, 3, generator=gen)
    dense = interpolate_rewards(ref, anchor, sims)
    rows = torch.arange(5)
    torch.testing.assert_close(dense[:, 0], ref[:, 0])
    torch.testing.assert_close(dense[:, -1], ref[:, 2])
    torch.testing.assert_close(dense[rows, anchor], ref[:, 1])
    lo, hi = ref.min(1).values[:, None], ref.max(1).values[:, None]
    assert bool(((dense >= lo - 1e-6) & (dense <= hi + 1e-6)).all())


def test_interpolation_hand_made_weights():
    ref = torch.tensor([[1.0, 4.0, 10.0]])
    sims = torch.tensor([[[1.0, 0.5, 0.0], [0.0, 1.0, 0.0], [0.0, 0.5, 1.0]]])
    dense = interpolate_rewards(ref, torch.tensor([1]), sims)
    torch.testing.assert_close(dense, torch.tensor([[1.0, 4.0, 10.0]]))
    sims = torch.tensor([[[1.0, 0.25, 0.5, 0.0], [0.0, 0.5, 1.0, 0.0], [0.0, 0.25, -0.3, 1.0]]])
    dense = interpolate_rewards(ref, torch.tensor([2]), sims)
    # step 1: (1·0.25 + 4·0.5 + 10·0.25) / 1.0; negative cosines are clamped to 0
    torch.testing.assert_close(dense, torch.tensor([[1.0, 4.75, 4.0, 10.0]]))
    raw = interpolate_rewards(ref, torch.tensor([1]), torch.tensor(
        [[[1.0, 0.5, 0.0], [0.0, 1.0, 0.6], [0.0, 0.0, 1.0]]]), clamped=False)
    assert raw[0, 1].item() == 4.0  # exact at the anchor in both modes


def test_all_negative_similarities_fall_back_to_the_mean():
    ref = torch.tensor([[0.0, 3.0, 6.0]])
    sims = torch.tensor([[[1.0, -0.2, 0.0, 0.1], [0.0, -0.1, 1.0, 0.2], [0.0, -0.5, 0.0, 1.0]]])
    dense = interpolate_rewards(ref, torch.tensor([2]), sims)
    assert dense[0, 1].item() == pytest.approx(3.0)


def test_sparse_rewards_and_discounted_returns():
    r = sparse_rewards(torch.tensor([2.0]), 3)
    torch.testing.assert_close(r, torch.tensor([[0.0, 0.0, 2.0]]))
    g = discounted_returns(torch.tensor([[1.0, 2.0, 4.0]]), 0.5)
    torch.testing.assert_close(g, torch.tensor([[1.0 + 0.5 * 4.0, 2.0 + 0.5 * 4.0, 4.0]]))
    torch.testing.assert_close(discounted_returns(torch.tensor([[1.0, 2.0]]), 0.0), torch.tensor([[1.0, 2.0]]))


def test_tracker_switches_from_batch_to_buffer_statistics_at_min_count():
    tracker = StepPromptStatTracker(buffer_size=4, min_count=3)
    prompts = ["a", "a", "b", "b"]
    first = np.array([[1.0, 0.0], [3.0, 0.0], [10.0, 5.0], [14.0, 7.0]])
    adv = tracker.update(prompts, first)
    # buffers hold 2 < 3 values: statistics of the whole batch at each step
    col = first[:, 0]
    np.testing.assert_allclose(adv[:, 0], (col - col.mean()) / (col.std() + 1e-6))
    second = np.array([[5.0, 1.0], [7.0, 1.0], [0.0, 0.0], [0.0, 0.0]])
    adv = tracker.update(prompts, second)
    # now prompt "a", step 0 has [1, 3, 5, 7] >= 3 values: its own buffer's mean 4, std √5
    np.testing.assert_allclose(adv[:2, 0], (np.array([5.0, 7.0]) - 4.0) / (math.sqrt(5) + 1e-6))
    third = np.array([[9.0, 0.0], [9.0, 0.0], [1.0, 1.0], [1.0, 1.0]])
    tracker.update(prompts, third)
    assert list(tracker.buffers[("a", 0)]) == [5.0, 7.0, 9.0, 9.0]  # buffer keeps the newest 4
    state = tracker.state_dict()
    other = StepPromptStatTracker(4, 3)
    other.load_state_dict(state)
    np.testing.assert_allclose(other.update(prompts, first), tracker.update(prompts, first))
    # one column = DDPO's per-prompt tracker
    assert StepPromptStatTracker(4, 1).update(["a", "a"], np.array([1.0, 3.0])).shape == (2,)


def test_step_weights():
    torch.testing.assert_close(step_weights(3, 0.5, 2.0), torch.tensor([0.5, 0.25, 0.125]))


def test_sdpo_loss_is_zero_when_weighted_log_ratio_gap_matches_advantage_gap():
    old_a, old_b = torch.tensor([-1.0, -2.0]), torch.tensor([-1.5, -0.5])
    w = torch.tensor(0.5)
    adv_a, adv_b = torch.tensor([1.0, -1.0]), torch.tensor([0.0, 1.0])
    # choose log π_θ so that w Δρ = ΔÂ exactly (ρ_b = 0)
    logp_a = old_a + (adv_a - adv_b) / w
    loss, _ = sdpo_loss(logp_a, old_b, old_a, old_b, adv_a, adv_b, w, clip_range=0.0, adv_clip=5.0)
    assert loss.item() == pytest.approx(0.0, abs=1e-10)


def test_sdpo_gradient_raises_the_better_trajectorys_log_prob():
    old = torch.tensor([-1.0])
    logp_a = old.clone().requires_grad_(True)
    logp_b = old.clone().requires_grad_(True)
    loss, _ = sdpo_loss(logp_a, logp_b, old, old, torch.tensor([2.0]), torch.tensor([-1.0]),
                        torch.tensor(1.0), clip_range=1e-4, adv_clip=5.0)
    loss.backward()
    # L = (Δρ − 3)² at Δρ = 0: dL/dlogp_a = −6 (descent raises a), dL/dlogp_b = +6
    assert logp_a.grad.item() == pytest.approx(-6.0)
    assert logp_b.grad.item() == pytest.approx(6.0)
    assert loss.item() == pytest.approx(9.0)


def test_sdpo_clip_term_and_advantage_clip():
    old = torch.tensor([0.0])
    # log π_θ far above the clip range with a negative advantage gap: the clipped term
    # (w·1e-4 − ΔÂ)² is smaller, so max picks the unclipped one
    loss, info = sdpo_loss(torch.tensor([1.0]), old, old, old, torch.tensor([0.0]), torch.tensor([0.0]),
                           torch.tensor(1.0), clip_range=1e-4, adv_clip=5.0)
    assert loss.item() == pytest.approx(1.0)
    # advantages beyond ±5 are clipped: ΔÂ = 5 − (−5) = 10
    loss, _ = sdpo_loss(old, old, old, old, torch.tensor([9.0]), torch.tensor([-9.0]),
                        torch.tensor(1.0), clip_range=0.0, adv_clip=5.0)
    assert loss.item() == pytest.approx(100.0)


def test_ddpo_loss_hand_made():
    logp = torch.tensor([0.1, 0.0, -0.2])
    old = torch.zeros(3)
    adv = torch.tensor([1.0, 2.0, -1.0])
    loss, _ = ddpo_loss(logp, old, adv, clip_range=0.05, adv_clip=5.0)
    # sample 0: max(−e^0.1, −1.05) = −1.05; sample 1: −2; sample 2: max(e^−0.2, 0.95) = 0.95
    assert loss.item() == pytest.approx((-1.05 - 2.0 + 0.95) / 3, rel=1e-6)


def test_d3po_loss_hand_made():
    beta, c = 0.1, 0.1
    logp_a, ref_a = torch.tensor([0.05]), torch.tensor([0.0])
    logp_b, ref_b = torch.tensor([0.0]), torch.tensor([0.5])  # ratio e^-0.5 clamps to 0.9
    sign = preference_signs(torch.tensor([3.0]), torch.tensor([1.0]))
    loss, _ = d3po_loss(logp_a, logp_b, ref_a, ref_b, sign, beta, c)
    margin = 0.05 - math.log(0.9)
    assert loss.item() == pytest.approx(-math.log(1 / (1 + math.exp(-beta * margin))), rel=1e-6)
    # the loser's preference flips the sign; a tie gives log 2 and no gradient
    assert preference_signs(torch.tensor([1.0, 2.0]), torch.tensor([3.0, 2.0])).tolist() == [-1.0, 0.0]
    tie, _ = d3po_loss(logp_a, logp_b, ref_a, ref_b, torch.tensor([0.0]), beta, c)
    assert tie.item() == pytest.approx(math.log(2))


def test_rebel_per_step_surrogate_gives_the_gradient_of_the_trajectory_loss():
    gen = torch.Generator().manual_seed(0)
    theta = torch.randn(4, generator=gen, requires_grad=True)
    feats_a, feats_b = torch.randn(3, 5, 4, generator=gen), torch.randn(3, 5, 4, generator=gen)
    old_a, old_b = torch.randn(3, 5, generator=gen), torch.randn(3, 5, generator=gen)
    adv_a, adv_b = torch.randn(3, generator=gen), torch.randn(3, generator=gen)
    rho_a, rho_b = feats_a @ theta - old_a, feats_b @ theta - old_b
    full = (rebel_residual(rho_a.sum(1), rho_b.sum(1), adv_a, adv_b, 2.0, 5.0) ** 2).mean()
    expected = torch.autograd.grad(full, theta)[0]
    with torch.no_grad():
        e = rebel_residual(rho_a.sum(1), rho_b.sum(1), adv_a, adv_b, 2.0, 5.0)
    grad = torch.zeros(4)
    for t in range(5):
        ra, rb = feats_a[:, t] @ theta - old_a[:, t], feats_b[:, t] @ theta - old_b[:, t]
        grad += torch.autograd.grad(rebel_step_surrogate(e, ra, rb, 2.0), theta)[0]
    torch.testing.assert_close(grad, expected)


def test_centred_similarity_is_invariant_to_a_constant_background():
    # two different 4x4 "objects" (one channel) on the same background; adding a constant
    # background (per channel) to every image leaves the centred cosines unchanged, the raw
    # cosines move towards 1
    from papers.sdpo.sdpo import similarity_features

    a = torch.zeros(3, 4, 4)
    a[:, :2, :2] = 1.0  # a square at the top left
    b = torch.zeros(3, 4, 4)
    b[:, 2:, 1:3] = torch.tensor([0.5, -1.0, 0.2])[:, None, None]  # another object elsewhere
    x0 = torch.stack([a, b, 0.5 * a + 0.5 * b])[None]  # (1, T=3, C, H, W)
    background = torch.tensor([0.7, -0.4, 0.9])[None, None, :, None, None]
    _, sims = anchor_similarities(x0, "centred")
    _, sims_bg = anchor_similarities(x0 + background, "centred")
    torch.testing.assert_close(sims, sims_bg)
    _, raw = anchor_similarities(x0, "raw")
    _, raw_bg = anchor_similarities(x0 + background, "raw")
    assert (raw_bg[0, 0, 1] - raw[0, 0, 1]).abs() > 0.3  # raw: the background dominates
    feats = similarity_features(x0, "centred")
    torch.testing.assert_close(feats.reshape(1, 3, 3, 16).mean(-1), torch.zeros(1, 3, 3))
    # the hand-made pair: centred cosine of a and b by hand
    ca, cb = (a - a.mean((1, 2), keepdim=True)).flatten(), (b - b.mean((1, 2), keepdim=True)).flatten()
    expected = (ca @ cb) / (ca.norm() * cb.norm())
    torch.testing.assert_close(sims[0, 0, 1], expected)
