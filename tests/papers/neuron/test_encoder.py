"""Skeleton encoders (CPU shifts, shapes), the input pipeline, and encoder pre-training
(determinism, resume after a kill, checkpoint reuse, learning a separable toy task)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from papers.neuron import pretrain as pretrain_mod
from papers.neuron.config import EncoderConfig, NeuronExperimentConfig
from papers.neuron.encoder import (
    NTU_BONES,
    ShiftGCN,
    build_encoder,
    crop_resize,
    ntu_adjacency,
    random_rotate,
    spatial_shift,
    spatial_shift_index,
    temporal_shift,
    to_tensor,
)
from papers.neuron.pretrain import encoder_accuracy, extract_features, pretrain


def fake_data(classes: int = 3, per_class: int = 8, seed: int = 0) -> dict:
    """Class k: person 1's joints oscillate along axis k (easily separable); person 2
    absent; 20-40 valid frames of 300."""
    rng = np.random.default_rng(seed)
    n = classes * per_class
    x = np.zeros((n, 300, 150), np.float32)
    y = np.repeat(np.arange(classes), per_class).astype(np.int64)
    length = rng.integers(20, 41, n).astype(np.int64)
    for i in range(n):
        t = np.arange(length[i])
        pose = rng.normal(0, 0.2, (1, 25, 3))
        move = np.zeros((length[i], 1, 3))
        move[:, 0, y[i] % 3] = np.sin(2 * np.pi * t / length[i] * (1 + y[i] // 3))
        x[i, : length[i], :75] = (pose + move).reshape(length[i], 75)
    return {"x": x, "y": y, "length": length}


def tiny_cfg(**encoder) -> NeuronExperimentConfig:
    cfg = NeuronExperimentConfig(device="cpu")
    settings = {"width": 8, "in_frames": 16, "out_frames": 4, "steps": 6, "batch_size": 8,
                "milestones": [4], "eval_points": 2, **encoder}
    cfg.encoder = EncoderConfig(**settings)
    return cfg


def weights(model) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def assert_same_weights(a, b) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k


# -- shifts --------------------------------------------------------------------------------
@pytest.mark.parametrize("sign", [1, -1])
def test_spatial_shift_matches_per_channel_loop(sign):
    x = torch.randn(2, 3, 25, 30)  # (N, T, V, C) with more channels than joints
    ref = torch.empty_like(x)
    for c in range(30):
        for v in range(25):
            ref[..., v, c] = x[..., (v + sign * c) % 25, c]
    assert torch.equal(spatial_shift(x, sign), ref)
    block = ShiftGCN(5, width=32).layers[1].gcn  # 8 -> 8 channels
    assert torch.equal(block.index_in, spatial_shift_index(8, 25, 1))
    assert torch.equal(block.index_out, spatial_shift_index(8, 25, -1))


@pytest.mark.parametrize("stride", [1, 2])
def test_temporal_shift_matches_per_channel_loop(stride):
    x = torch.randn(2, 11, 3, 6)  # (N, T, V, C)
    shift = torch.tensor([-2.5, -1.0, -0.25, 0.0, 0.7, 3.2])
    t_out = (11 - 1) // stride + 1
    ref = torch.zeros(2, t_out, 3, 6)

    def frame(p, c):
        return x[:, p, :, c] if 0 <= p < 11 else torch.zeros(2, 3)

    for c in range(6):
        k = math.floor(shift[c].item())
        f = shift[c] - k
        for i in range(t_out):
            p = i * stride + k
            ref[:, i, :, c] = torch.lerp(frame(p, c), frame(p + 1, c), f)
    out = temporal_shift(x, shift, stride)
    assert torch.equal(out, ref)
    # an integer shift of +1 is a plain shift with a zero frame at the end
    one = temporal_shift(x, torch.ones(6))
    assert torch.equal(one[:, :-1], x[:, 1:]) and torch.equal(one[:, -1], torch.zeros(2, 3, 6))
    # the shift amounts are learnable
    s = shift.clone().requires_grad_()
    temporal_shift(x, s, stride).square().sum().backward()
    assert s.grad is not None and s.grad.abs().sum() > 0


# -- encoders ------------------------------------------------------------------------------
@pytest.mark.parametrize("arch", ["shiftgcn", "stgcn"])
def test_encoder_shapes(arch):
    model = build_encoder(EncoderConfig(arch=arch, width=16), num_classes=7)
    x = torch.randn(3, 3, 64, 25, 2)
    model.eval()
    with torch.no_grad():  # persons go through the same backbone and are then averaged
        torch.testing.assert_close(model.features(x), model.features(x.flip(-1)))
    model.train()
    feats = model.features(x)
    assert feats.shape == (3, 16, 16, 25)
    assert model(x).shape == (3, 7)


def test_ntu_graph():
    assert len(NTU_BONES) == 24
    children = [c for c, _ in NTU_BONES]
    assert len(set(children)) == 24 and set(range(25)) - set(children) == {20}  # a tree
    a = ntu_adjacency()
    assert a.shape == (3, 25, 25)
    torch.testing.assert_close(a[1].sum(0)[a[1].sum(0) > 0], torch.ones(int((a[1].sum(0) > 0).sum())))


# -- input pipeline ------------------------------------------------------------------------
def test_to_tensor_layout():
    x = np.arange(2 * 4 * 150, dtype=np.float32).reshape(2, 4, 150)
    xt, length = to_tensor(x, np.array([3, 0]))
    assert xt.shape == (2, 3, 4, 25, 2)
    # person 2, joint 1, z of frame 2 of sequence 0 = column 75 + 3 + 2
    assert xt[0, 2, 2, 1, 1] == x[0, 2, 75 + 3 + 2]
    assert length.tolist() == [3, 1]


@pytest.mark.parametrize("train", [True, False])
def test_crop_resize_reads_only_valid_frames(train):
    n, t = 6, 50
    ramp = torch.arange(t, dtype=torch.float32).view(1, 1, t, 1, 1).expand(n, 3, t, 25, 2).clone()
    length = torch.tensor([50, 40, 33, 20, 7, 1])
    for i, L in enumerate(length.tolist()):
        ramp[i, :, L:] = float("nan")  # padding that must never be read
    gen = torch.Generator().manual_seed(0)
    out = crop_resize(ramp, length, 16, train=train, gen=gen)
    assert out.shape == (n, 3, 16, 25, 2)
    assert not torch.isnan(out).any()
    for i, L in enumerate(length.tolist()):
        frames = out[i, 0, :, 0, 0]
        assert frames.min() >= 0 and frames.max() <= L - 1
        assert (frames.diff() >= 0).all()
        assert frames.max() - frames.min() >= min(0.5 * L, L - 1) - 1.5  # a ≥ 50 % window
    if not train:  # the central 95 % resized exactly as F.interpolate does
        start = int(0.025 * 50)
        crop = ramp[0, :, start:50 - start].permute(0, 2, 3, 1).reshape(1, -1, 50 - 2 * start)
        ref = F.interpolate(crop, size=16, mode="linear", align_corners=False)
        torch.testing.assert_close(out[0].permute(0, 2, 3, 1).reshape(1, -1, 16), ref)


def test_crop_resize_is_deterministic_for_a_generator():
    x, length = to_tensor(fake_data()["x"][:5], fake_data()["length"][:5])
    a = crop_resize(x, length, 16, True, torch.Generator().manual_seed(3))
    b = crop_resize(x, length, 16, True, torch.Generator().manual_seed(3))
    c = crop_resize(x, length, 16, True, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_rotation_preserves_bone_lengths():
    x = torch.randn(4, 3, 10, 25, 2)
    x[1, ..., 1] = 0  # an absent second person stays absent
    rot = random_rotate(x, 0.3, torch.Generator().manual_seed(0))
    assert not torch.allclose(rot, x)
    for a, b in [(0, 1), (4, 5), (20, 8), (13, 14)]:
        torch.testing.assert_close((rot[:, :, :, a] - rot[:, :, :, b]).norm(dim=1),
                                   (x[:, :, :, a] - x[:, :, :, b]).norm(dim=1))
    assert torch.equal(rot[1, ..., 1], torch.zeros_like(rot[1, ..., 1]))


# -- pre-training --------------------------------------------------------------------------
def test_pretrain_deterministic_and_resume_equals_uninterrupted(tmp_path):
    cfg, data, seen = tiny_cfg(), fake_data(), [0, 2]
    a = pretrain(cfg, data, seen, seed=1, ckpt_dir=tmp_path / "a", progress=False)
    b = pretrain(cfg, data, seen, seed=1, ckpt_dir=tmp_path / "b", progress=False)
    assert_same_weights(a, b)
    assert a.history == b.history and len(a.history) == 3  # 2 batches per epoch, 6 steps
    assert [r["lr"] for r in a.history] == pytest.approx([0.1, 0.1, 0.01])  # × 0.1 at step 4
    assert [r["step"] for r in a.history] == [2, 4, 6]

    def kill(epoch, record):
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        pretrain(cfg, data, seen, seed=1, ckpt_dir=tmp_path / "c", progress=False, on_epoch=kill)
    epochs = []
    c = pretrain(cfg, data, seen, seed=1, ckpt_dir=tmp_path / "c", progress=False,
                 on_epoch=lambda e, r: epochs.append(e))
    assert epochs == [2, 3]  # resumed after epoch 1
    assert_same_weights(a, c)
    assert c.history == a.history
    other = pretrain(cfg, data, seen, seed=2, ckpt_dir=tmp_path / "a", progress=False)
    assert not torch.equal(weights(other)["fc.weight"], weights(a)["fc.weight"])


def test_pretrain_reuses_stored_weights(tmp_path, monkeypatch):
    cfg, data = tiny_cfg(steps=2, milestones=[]), fake_data()
    first = pretrain(cfg, data, [0, 1], seed=0, ckpt_dir=tmp_path, progress=False)

    def no_training(*args, **kwargs):
        raise AssertionError("trained again instead of loading")

    monkeypatch.setattr(pretrain_mod, "_train_epoch", no_training)
    again = pretrain(cfg, data, [0, 1], seed=0, ckpt_dir=tmp_path, progress=False)
    assert_same_weights(first, again)
    assert not again.training and not any(p.requires_grad for p in again.parameters())
    cfg.encoder.test_augment = True  # extraction-only setting: same weights
    pretrain(cfg, data, [0, 1], seed=0, ckpt_dir=tmp_path, progress=False)
    with pytest.raises(AssertionError, match="trained again"):  # other seen classes: new key
        pretrain(cfg, data, [0, 2], seed=0, ckpt_dir=tmp_path, progress=False)


def test_pretrain_learns_a_separable_task(tmp_path):
    torch.set_num_threads(1)
    cfg = tiny_cfg(width=16, steps=48, milestones=[40])  # 6 passes of 8 batches
    train = fake_data(classes=4, per_class=16, seed=0)
    test = fake_data(classes=4, per_class=8, seed=1)
    model = pretrain(cfg, train, [0, 1, 2, 3], seed=0, ckpt_dir=tmp_path, progress=False)
    acc = encoder_accuracy(model, test, [0, 1, 2, 3], cfg)
    assert acc > 0.5, acc  # chance is 0.25


def test_pretrain_schedule_is_in_steps_with_a_cut_last_epoch_and_a_monitor_curve(tmp_path):
    cfg, data, seen = tiny_cfg(steps=5, warmup_steps=2, milestones=[3], eval_points=2), fake_data(), [0, 2]
    lrs = []
    orig = torch.optim.SGD.step

    def spy(self, *a, **k):
        lrs.append(self.param_groups[0]["lr"])
        return orig(self, *a, **k)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch.optim.SGD, "step", spy)
        model = pretrain(cfg, data, seen, seed=0, ckpt_dir=tmp_path, progress=False, monitor=data)
    assert lrs == pytest.approx([0.05, 0.1, 0.1, 0.01, 0.01])  # warm-up 2, × 0.1 at step 3
    assert [r["step"] for r in model.history] == [2, 4, 5]  # the last epoch cut at 5 steps
    measured = [r["epoch"] for r in model.history if "seen_acc" in r]
    assert measured == [2, 3] and all(0 <= r["seen_acc"] <= 1 for r in model.history if "seen_acc" in r)
    assert model.history[-1]["seen_acc"] == encoder_accuracy(model, data, seen, cfg)  # the final weights


def test_extract_features(tmp_path):
    cfg, data = tiny_cfg(steps=2, milestones=[]), fake_data()
    model = pretrain(cfg, data, [0, 1], seed=0, ckpt_dir=tmp_path, progress=False)
    assert 0 <= encoder_accuracy(model, data, [0, 1]) <= 1  # pipeline from the encoder itself
    feats = extract_features(model, data, cfg, batch_size=5)
    assert feats.shape == (24, 8, 4, 25) and feats.dtype == torch.float16
    assert torch.equal(feats, extract_features(model, data, cfg, batch_size=7))
    model.test_augment = cfg.encoder.test_augment = True
    aug5 = extract_features(model, data, cfg, batch_size=5)
    assert not torch.equal(aug5, feats)
    assert torch.equal(aug5, extract_features(model, data, cfg, batch_size=7))  # fixed per sequence


# -- Shift-GCN's spatial batch norm ---------------------------------------------------------
def test_spatial_bn_per_joint_and_channel_as_shift_gcn_or_per_channel():
    from papers.neuron.encoder import ShiftGraphConv

    assert EncoderConfig().spatial_bn == "joint"  # the default is the paper's
    joint, channel = ShiftGraphConv(4, 6, spatial_bn="joint"), ShiftGraphConv(4, 6, spatial_bn="channel")
    assert joint.bn.num_features == 25 * 6 and channel.bn.num_features == 6
    y = torch.randn(3, 5, 25, 6) * torch.arange(1, 26.0)[:, None] + torch.arange(25.0)[:, None]
    joint.bn.train()
    out = joint.bn(y)  # every (joint, channel) column normalised over batch × time
    flat = y.reshape(-1, 25, 6)
    want = (flat - flat.mean(0)) / torch.sqrt(flat.var(0, unbiased=False) + joint.bn.eps)
    torch.testing.assert_close(out.reshape(-1, 25, 6), want, atol=1e-5, rtol=1e-5)
    channel.bn.train()
    per_channel = channel.bn(y).reshape(-1, 6)  # one statistic per channel over joints as well
    torch.testing.assert_close(per_channel.mean(0), torch.zeros(6), atol=1e-5, rtol=0)
    assert not torch.allclose(channel.bn(y), out, atol=1e-3)
    with pytest.raises(ValueError, match="spatial_bn"):
        ShiftGraphConv(4, 6, spatial_bn="frame")
    model = build_encoder(EncoderConfig(width=16, spatial_bn="channel"), num_classes=7)
    assert {m.gcn.bn.num_features for m in model.layers} == {4, 8, 16}
    model = build_encoder(EncoderConfig(width=16), num_classes=7)
    assert {m.gcn.bn.num_features for m in model.layers} == {25 * 4, 25 * 8, 25 * 16}
    assert model(torch.randn(2, 3, 64, 25, 2)).shape == (2, 7)
