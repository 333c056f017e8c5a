"""The vectorised Local-(D)SGDA simulation against hand-written per-client loops, on a toy
min-max problem whose gradients are obvious:
    f(x, y; z) = ½‖x − z‖² + x·y − ½‖y‖²,  ∇_x f = x − z + y,  ∇_y f = x − y,  Y = [−r, r]²."""

import torch

from papers.dsgda.algorithm import Replicas, draw, horizons, sample, simulate
from papers.dsgda.measures import pair_distance, training_set
from papers.dsgda.topology import as_tensor, mixing_matrix


class Toy:
    setting, dim_x, dim_y, dim_z = "toy", 2, 2, 2

    def __init__(self, radius=100.0):
        self.radius = radius

    def grads(self, x, y, z):
        return x - z.mean(-2) + y, x - y

    def project_x(self, x):
        return x

    def project_y(self, y):
        return y.clamp(-self.radius, self.radius)


def _replicas(z, K=1, topology="full", lr=0.1, n=None, streams=None):
    R, m = z.shape[:2]
    W = as_tensor(mixing_matrix(topology, m))
    gen = torch.Generator().manual_seed(5)
    return Replicas(
        z=z, n=torch.full((R,), z.shape[2]) if n is None else n,
        stream=torch.arange(R) // 2 if streams is None else streams,
        lr_x=torch.full((R,), lr, dtype=torch.float64), lr_y=torch.full((R,), lr / 2, dtype=torch.float64),
        K=torch.full((R,), K), W=W.expand(R, m, m).clone(),
        x0=torch.randn(R // 2, 2, generator=gen, dtype=torch.float64).repeat_interleave(2, 0),
        y0=torch.randn(R // 2, 2, generator=gen, dtype=torch.float64).repeat_interleave(2, 0),
        num_streams=int((torch.arange(R) // 2).max()) + 1 if streams is None else int(streams.max()) + 1)


def _data(R=2, m=4, n=6, seed=0):
    return torch.randn(R, m, n, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_horizons_are_log_spaced_and_end_at_T():
    hs = horizons(1000, 5)
    assert hs[-1] == 1000 and hs == sorted(set(hs)) and hs[0] == 10
    assert horizons(3, 8) == [1, 2, 3]


def test_K1_full_W_is_minibatch_sgda():
    toy, z, steps, b = Toy(), _data(), 30, 2
    reps = _replicas(z, K=1, topology="full")
    trace = simulate(toy, reps, steps, b, list(range(1, steps + 1)), seed=3)
    # minibatch SGDA: one iterate, a minibatch of m·b samples (b from every client's data)
    gen = torch.Generator().manual_seed(3)
    x, y = reps.x0.clone(), reps.y0.clone()
    for t in range(steps):
        u = draw(gen, reps.num_streams, 4, b, torch.float64)[reps.stream]
        batch = sample(z, reps.n, u).reshape(2, 4 * b, 2)  # (R, m·b, dz)
        gx, gy = toy.grads(x, y, batch)
        x, y = x - 0.1 * gx, toy.project_y(y + 0.05 * gy)
        assert torch.allclose(trace["x"][:, t], x, atol=1e-13, rtol=0)
        assert torch.allclose(trace["y"][:, t], y, atol=1e-13, rtol=0)


def test_sparse_W_every_K_steps_matches_a_per_client_loop():
    toy, z, steps, K = Toy(radius=0.3), _data(R=2, m=5), 12, 3  # projection active
    reps = _replicas(z, K=K, topology="ring")
    trace = simulate(toy, reps, steps, 1, [steps], seed=1)
    W = reps.W[0]
    gen = torch.Generator().manual_seed(1)
    xs = [reps.x0.clone() for _ in range(5)]
    ys = [reps.y0.clone() for _ in range(5)]
    for t in range(1, steps + 1):
        u = draw(gen, reps.num_streams, 5, 1, torch.float64)[reps.stream]
        for i in range(5):
            batch = sample(z[:, i:i + 1], reps.n, u[:, i:i + 1])[:, 0]
            gx, gy = toy.grads(xs[i], ys[i], batch)
            xs[i], ys[i] = xs[i] - 0.1 * gx, toy.project_y(ys[i] + 0.05 * gy)
        if t % K == 0:
            xs = [sum(W[i, j] * xs[j] for j in range(5)) for i in range(5)]
            ys = [sum(W[i, j] * ys[j] for j in range(5)) for i in range(5)]
    assert torch.allclose(trace["x"][:, -1], sum(xs) / 5, atol=1e-13, rtol=0)
    assert torch.allclose(trace["y"][:, -1], sum(ys) / 5, atol=1e-13, rtol=0)
    spread = sum(((xs[i] - sum(xs) / 5) ** 2).sum(-1) + ((ys[i] - sum(ys) / 5) ** 2).sum(-1) for i in range(5))
    assert torch.allclose(trace["consensus"][:, -1], (spread / 5).sqrt(), atol=1e-13)


def test_mixing_keeps_the_consensus_average():
    z = _data(m=6)
    first = [simulate(Toy(), _replicas(z, K=1, topology=t), 1, 1, [1], seed=0)["x"] for t in ("full", "ring", "star")]
    assert torch.allclose(first[0], first[1], atol=1e-14) and torch.allclose(first[0], first[2], atol=1e-14)


def test_time_average_is_the_mean_of_consensus_iterates():
    trace = simulate(Toy(), _replicas(_data(), K=2, topology="ring"), 20, 1, list(range(1, 21)), seed=0)
    for t in range(1, 21):
        assert torch.allclose(trace["x_avg"][:, t - 1], trace["x"][:, :t].mean(1), atol=1e-13)
        assert torch.allclose(trace["y_avg"][:, t - 1], trace["y"][:, :t].mean(1), atol=1e-13)


def test_identical_datasets_give_zero_stability_distance():
    z = _data(R=1).repeat(2, 1, 1, 1)  # S′ = S
    trace = simulate(Toy(), _replicas(z, K=2, topology="ring"), 50, 1, [10, 50], seed=0)
    assert pair_distance(trace, "last").shape == (1, 2)
    assert (pair_distance(trace, "last") == 0).all() and (pair_distance(trace, "avg") == 0).all()


def test_neighbouring_datasets_give_positive_distance():
    z = _data(R=1).repeat(2, 1, 1, 1)
    z[1, 2, 3] += 1.0  # one sample of one client replaced
    trace = simulate(Toy(), _replicas(z, K=2, topology="ring"), 200, 1, [200], seed=0)
    assert pair_distance(trace, "last").item() > 0


def test_replicas_do_not_interact():
    z = _data(R=4)
    reps = _replicas(z, K=2, topology="ring")
    before = simulate(Toy(), reps, 25, 2, [25], seed=4)
    reps.z = reps.z.clone()
    reps.z[2:] += 5.0  # change the second pair's data only
    after = simulate(Toy(), reps, 25, 2, [25], seed=4)
    assert torch.equal(before["x"][:2], after["x"][:2]) and not torch.equal(before["x"][2:], after["x"][2:])


def test_sampling_stays_within_each_replicas_n():
    z, n = _data(R=2, n=8), torch.tensor([8, 3])
    u = torch.rand(2, 4, 50, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    picked = sample(z, n, u)  # (R, m, b, dz)
    assert (picked[1][:, :, None, :] == z[1][:, None, :3, :]).all(-1).any(-1).all()
    assert not (picked[0][:, :, None, :] == z[0][:, None, :3, :]).all(-1).any(-1).all()


def test_training_set_weights_ignore_padding():
    z = _data(R=2, n=5)
    reps = _replicas(z, n=torch.tensor([5, 2]))
    zs, w = training_set(reps)
    assert zs.shape == (2, 20, 2)
    assert torch.allclose(w.sum(1), torch.ones(2, dtype=w.dtype))
    assert (w[1].reshape(4, 5)[:, 2:] == 0).all() and torch.allclose(w[1].reshape(4, 5)[:, :2], torch.tensor(1 / 8, dtype=w.dtype))
