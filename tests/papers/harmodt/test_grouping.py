import math

import pytest
import torch

from papers.harmodt.grouping import (
    GatingNetwork,
    cluster_tasks,
    flatten_grads,
    gating_loss,
    gradient_cosine_matrix,
)


def grads(vector):
    """A two-parameter gradient dict whose flattening is `vector`."""
    return {"a": torch.tensor(vector[:1]), "b": torch.tensor([vector[1:]])}


def test_flatten_grads_in_key_order():
    assert flatten_grads(grads([1.0, 2.0, 3.0])).tolist() == [1.0, 2.0, 3.0]


def test_gradient_cosine_matrix_exact():
    cos = gradient_cosine_matrix([grads([1.0, 0.0]), grads([0.0, 1.0]), grads([1.0, 1.0]),
                                  grads([-2.0, 0.0])])
    r = 1 / math.sqrt(2)
    expected = torch.tensor([[1, 0, r, -1], [0, 1, r, 0], [r, r, 1, -r], [-1, 0, -r, 1]],
                            dtype=torch.float64)
    assert torch.allclose(cos, expected, atol=1e-15)


def two_directions(order):
    vectors = {"a": [1.0, 0.1], "b": [0.9, 0.0], "c": [0.0, 1.0], "d": [0.1, 1.2]}
    return gradient_cosine_matrix([grads(vectors[t]) for t in order])


def test_cluster_tasks_two_directions():
    assert cluster_tasks(two_directions("abcd"), 2) == [0, 0, 1, 1]
    assert cluster_tasks(two_directions("cadb"), 2) == [0, 1, 0, 1]  # canonical relabelling


def test_cluster_tasks_edge_cases():
    sim = two_directions("abcd")
    assert cluster_tasks(sim, 4) == [0, 1, 2, 3]
    assert cluster_tasks(sim, 9) == [0, 1, 2, 3]
    assert cluster_tasks(sim, 1) == [0, 0, 0, 0]
    with pytest.raises(ValueError):
        cluster_tasks(sim, 0)


def test_gating_output_shape_and_empty_window():
    net = GatingNetwork(obs_dim=3, act_dim=2, n_groups=4, hidden=8, context=5)
    logits = net(torch.randn(7, 5, 6), torch.ones(7, 5, dtype=torch.bool))
    assert logits.shape == (7, 4)
    empty = net(torch.randn(2, 0, 6), torch.ones(2, 0, dtype=torch.bool))
    assert torch.equal(empty, net.head.bias.expand(2, 4))
    with pytest.raises(ValueError):
        net(torch.randn(1, 6, 6), torch.ones(1, 6, dtype=torch.bool))


def test_gating_padding_invariance():
    torch.manual_seed(0)
    net = GatingNetwork(obs_dim=3, act_dim=2, n_groups=4, hidden=8, context=6)
    steps = torch.randn(1, 3, 6)
    short = net(steps, torch.ones(1, 3, dtype=torch.bool))
    valid = torch.tensor([[False] * 3 + [True] * 3])
    padded = [net(torch.cat([fill, steps], dim=1), valid)
              for fill in (torch.zeros(1, 3, 6), 100 * torch.randn(1, 3, 6))]
    assert torch.allclose(padded[0], short, atol=1e-6)
    assert torch.equal(padded[0], padded[1])
    # the check can fail: marking the padding valid changes the logits
    assert not torch.allclose(net(torch.cat([100 * torch.randn(1, 3, 6), steps], 1),
                                  torch.ones(1, 6, dtype=torch.bool)), short, atol=1e-3)


def toy_contexts(n, gen, context=4):
    """Three groups whose states are drawn around different means; windows of 1..4 steps."""
    groups = torch.randint(0, 3, (n,), generator=gen)
    means = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    states = means[groups][:, None] + 0.3 * torch.randn(n, context, 3, generator=gen)
    window = torch.cat([states, torch.randn(n, context, 3, generator=gen)], dim=-1)
    lengths = torch.randint(1, context + 1, (n,), generator=gen)
    valid = torch.arange(context)[None] >= context - lengths[:, None]
    return window, valid, groups


@pytest.fixture
def one_thread():
    """Tiny GRU steps run faster on one thread, and far faster when other jobs load the CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_gating_learns_separable_groups(one_thread):
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    net = GatingNetwork(obs_dim=3, act_dim=2, n_groups=3, hidden=32, context=4)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(150):
        window, valid, groups = toy_contexts(64, gen)
        loss = gating_loss(net(window, valid), groups)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    window, valid, groups = toy_contexts(1000, gen)
    with torch.no_grad():
        accuracy = (net(window, valid).argmax(-1) == groups).float().mean()
    assert accuracy > 0.9


def test_gating_loss_is_cross_entropy():
    logits = torch.tensor([[0.0, math.log(3.0)]])
    assert gating_loss(logits, torch.tensor([1])).item() == pytest.approx(-math.log(0.75))
