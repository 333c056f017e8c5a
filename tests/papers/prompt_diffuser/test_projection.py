"""The gradient combination: projection orthogonal to g_DM, the conflict-only mode, ablations."""

import pytest
import torch

from papers.prompt_diffuser.projection import (
    clip_by_goal,
    combine,
    flat_by_goal,
    project_out,
    unflat_by_goal,
)


def _pair(seed=0, goals=4, dim=50):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(goals, dim, generator=gen, dtype=torch.float64), \
        torch.randn(goals, dim, generator=gen, dtype=torch.float64)


def test_projected_gradient_is_orthogonal_to_g_dm_and_is_g_pdts_orthogonal_part():
    g_dm, g_pdt = _pair()
    g = combine(g_dm, g_pdt, "projection", 1.0, "always")
    guide = g - g_dm
    assert torch.allclose((guide * g_dm).sum(1), torch.zeros(4, dtype=torch.float64), atol=1e-12)
    unit = g_dm / g_dm.norm(dim=1, keepdim=True)
    orthogonal = g_pdt - (g_pdt * unit).sum(1, keepdim=True) * unit
    torch.testing.assert_close(guide, orthogonal)
    torch.testing.assert_close(project_out(g_pdt, g_dm), orthogonal)
    # by hand in 2-D: g_DM = (1, 0), g_PDT = (-3, 2), λ = 0.5 -> g = (1, 0) + 0.5 (0, 2)
    g2 = combine(torch.tensor([[1.0, 0.0]]), torch.tensor([[-3.0, 2.0]]), "projection", 0.5, "always")
    assert torch.equal(g2, torch.tensor([[1.0, 1.0]]))


def test_conflict_only_mode_leaves_non_conflicting_gradients_untouched():
    g_dm = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    g_pdt = torch.tensor([[3.0, 1.0], [-3.0, 1.0], [5.0, 0.0]])  # agree, conflict, orthogonal
    g = combine(g_dm, g_pdt, "projection", 1.0, "conflict")
    assert torch.equal(g[0], g_dm[0] + g_pdt[0])  # untouched
    assert torch.equal(g[1], torch.tensor([1.0, 1.0]))  # projected
    assert torch.equal(g[2], g_dm[2] + g_pdt[2])  # dot = 0: no conflict
    always = combine(g_dm, g_pdt, "projection", 1.0, "always")
    assert torch.equal(always[0], torch.tensor([1.0, 1.0]))


@pytest.mark.parametrize("rule", ["dm", "guidance", "sum"])
def test_ablations(rule):
    g_dm, g_pdt = _pair(1)
    expected = {"dm": g_dm, "guidance": 0.7 * g_pdt, "sum": g_dm + 0.7 * g_pdt}[rule]
    torch.testing.assert_close(combine(g_dm, g_pdt, rule, 0.7), expected)


def test_lambda_zero_is_reconstruction_only_and_zero_g_dm_is_safe():
    g_dm, g_pdt = _pair(2)
    assert torch.equal(combine(g_dm, g_pdt, "projection", 0.0, "always"), g_dm)
    g = combine(torch.zeros(1, 3), torch.tensor([[1.0, 2.0, 3.0]]), "projection", 1.0, "always")
    assert torch.equal(g, torch.tensor([[1.0, 2.0, 3.0]]))
    with pytest.raises(ValueError):
        combine(g_dm, g_pdt, "other", 1.0)


def test_flatten_round_trip_and_per_goal_clip():
    params = [torch.randn(3, 4, 5), torch.randn(3, 1, 5)]
    flat = flat_by_goal(params)
    assert flat.shape == (3, 25)
    for a, b in zip(unflat_by_goal(flat, params), params):
        assert torch.equal(a, b)
    rows = torch.tensor([[3.0, 4.0], [0.3, 0.4]])
    clipped = clip_by_goal(rows, 1.0)
    torch.testing.assert_close(clipped.norm(dim=1), torch.tensor([1.0, 0.5]), atol=1e-5, rtol=0)
