import pytest
import torch
from torch import nn

from papers.fwa.averaging import Averagers, WindowBuffer


def _iterates(count, shape=(3, 2)):
    gen = torch.Generator().manual_seed(0)
    return [[torch.randn(shape, generator=gen, dtype=torch.float64),
             torch.randn(4, generator=gen, dtype=torch.float64)] for _ in range(count)]


@pytest.mark.parametrize("capacity, pushes, k", [(5, 3, 3), (5, 7, 3), (5, 12, 5), (1, 4, 1)])
def test_window_mean_equals_mean_of_the_last_k_stored_iterates(capacity, pushes, k):
    its = _iterates(pushes)
    buf = WindowBuffer(capacity, its[0])
    for w in its:
        buf.push(w)
    expected = [torch.stack([w[i] for w in its[-k:]]).mean(0) for i in range(2)]
    for got, want in zip(buf.mean(k), expected):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-15)


def test_window_of_one_is_the_last_iterate_exactly():
    its = _iterates(6)
    buf = WindowBuffer(4, its[0])
    for w in its:
        buf.push(w)
    assert all(torch.equal(a, b) for a, b in zip(buf.mean(1), its[-1]))


def test_window_larger_than_what_is_stored_is_an_error():
    buf = WindowBuffer(3, _iterates(1)[0])
    buf.push(_iterates(1)[0])
    with pytest.raises(ValueError):
        buf.mean(2)


def test_pushed_snapshots_do_not_alias_the_live_tensors():
    w = [torch.zeros(2)]
    buf = WindowBuffer(2, w)
    buf.push(w)
    w[0].add_(1.0)
    assert torch.equal(buf.mean(1)[0], torch.zeros(2))


def _train(module, averagers, steps, per_epoch):
    history = []
    for t in range(1, steps + 1):
        with torch.no_grad():
            for p in module.parameters():
                p.add_(float(t))  # deterministic "SGD step": w_t = w_0 + t(t+1)/2
        averagers.on_step(module)
        history.append([p.detach().clone() for p in module.parameters()])
        if t % per_epoch == 0:
            averagers.on_epoch(module)
    return history


def test_averagers_fwa1_is_sgd_and_each_method_matches_its_definition():
    module = nn.Linear(2, 1)
    with torch.no_grad():
        for p in module.parameters():
            p.zero_()
    avg = Averagers(module, step_windows=[1, 3], epoch_windows=[2], swa_every="step", ema_decay=0.5)
    history = _train(module, avg, steps=8, per_epoch=2)
    assert avg.methods == ["sgd", "fwa1", "fwa3", "lawa2", "swa", "ema"]
    w = [h[0][0, 0].item() for h in history]  # 1, 3, 6, 10, 15, 21, 28, 36
    assert w == [1, 3, 6, 10, 15, 21, 28, 36]

    def first(method):
        return avg.weights(method, module)[0][0, 0].item()

    assert first("sgd") == first("fwa1") == 36
    assert first("fwa3") == pytest.approx((21 + 28 + 36) / 3, abs=1e-6)
    assert first("lawa2") == pytest.approx((21 + 36) / 2, abs=1e-6)  # epoch ends: 3, 10, 21, 36
    assert first("swa") == pytest.approx(sum(w) / 8, abs=1e-5)
    ema = w[0]
    for value in w[1:]:
        ema = 0.5 * ema + 0.5 * value
    assert first("ema") == pytest.approx(ema, abs=1e-5)


def test_fwa_needs_k_at_most_half_of_T():
    module = nn.Linear(1, 1)
    avg = Averagers(module, step_windows=[3], swa_every=None)
    _train(module, avg, steps=5, per_epoch=100)
    assert not avg.ready("fwa3")  # 2k = 6 > T = 5
    _train(module, avg, steps=1, per_epoch=100)
    assert avg.ready("fwa3")


def test_state_round_trip_restores_every_average():
    module = nn.Linear(2, 2)
    avg = Averagers(module, step_windows=[2], epoch_windows=[2], ema_decay=0.9)
    _train(module, avg, steps=6, per_epoch=2)
    tensors, counts = avg.state()
    clone_module = nn.Linear(2, 2)
    clone_module.load_state_dict(module.state_dict())
    clone = Averagers(clone_module, step_windows=[2], epoch_windows=[2], ema_decay=0.9)
    clone.load_state(tensors, counts)
    for method in avg.methods:
        for a, b in zip(avg.weights(method, module), clone.weights(method, clone_module)):
            assert torch.equal(a, b)


def test_horizon_windows_equal_the_ring_buffer_mean_at_every_horizon():
    from papers.fwa.averaging import HorizonWindows

    torch.manual_seed(0)
    its = [[torch.randn(3, dtype=torch.float64), torch.randn(2, 2, dtype=torch.float64)]
           for _ in range(40)]
    horizons = [7, 20, 40]
    hw = HorizonWindows(horizons, its[0], windows=[3], fractions=[0.5, 0.25])
    assert hw.names == ["fwa3", "fwaT0.25", "fwaT0.5"]
    ring = WindowBuffer(20, its[0])
    for t, w in enumerate(its, start=1):
        hw.push(w)
        ring.push(w)
        for name in hw.names:
            k = hw.window(name, t)
            assert hw.ready(name) == (t in horizons and 2 * k <= t)
            if hw.ready(name):
                for got, want in zip(hw.mean(name), ring.mean(k)):
                    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-14)
        if t in horizons:
            hw.forget(t)
    assert hw.window("fwaT0.5", 7) == 3 and hw.window("fwaT0.25", 7) == 1
    assert not hw.open and not hw.done  # every running sum closed and freed


def test_swa_averages_only_the_epoch_ends_after_its_start():
    module = nn.Linear(2, 1)
    with torch.no_grad():
        for p in module.parameters():
            p.zero_()
    avg = Averagers(module, swa_every="epoch", swa_start=2)
    _train(module, avg, steps=8, per_epoch=2)  # epoch ends: 3, 10, 21, 36
    assert avg.weights("swa", module)[0][0, 0].item() == pytest.approx((21 + 36) / 2, abs=1e-5)
