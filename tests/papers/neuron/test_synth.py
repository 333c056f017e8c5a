"""Skeleton layout, forward kinematics and the synthetic NTU-format action generator."""

from __future__ import annotations

import numpy as np
import pytest

from papers.neuron import skeleton as sk
from papers.neuron import synth
from papers.neuron.classes import all_classes
from papers.neuron.config import DataConfig
from shared import UserError

CLASSES = all_classes()
BY_NAME = {c.name: c for c in CLASSES}


def small(**overrides) -> DataConfig:
    """Short sequences so the tests stay fast."""
    return DataConfig(**{"frames": 80, "min_length": 30, "max_length": 60, **overrides})


def person(x: np.ndarray, which: int) -> np.ndarray:
    """(N, T, 150) -> (N, T, 25, 3) of person 0 or 1."""
    return x[..., 75 * which:75 * (which + 1)].reshape(x.shape[:-1] + (25, 3)).astype(np.float64)


# ---------------------------------------------------------------- layout and kinematics


def test_tree_has_24_bones_rooted_at_spine_base():
    assert len(sk.PARENTS) == 25 and len(sk.BONES) == 24
    assert [j for j, p in enumerate(sk.PARENTS) if p < 0] == [0]
    assert sorted(sk.ORDER) == list(range(25))
    seen = {0}
    for j in sk.ORDER[1:]:
        assert sk.PARENTS[j] in seen  # parents come first, so every joint is reachable from 0
        seen.add(j)
    assert all(child == k + 1 and parent == sk.PARENTS[child] for k, (child, parent) in enumerate(sk.BONES))
    # the brief's tree
    assert (sk.PARENTS[20], sk.PARENTS[2], sk.PARENTS[4], sk.PARENTS[8]) == (1, 20, 20, 20)
    assert (sk.PARENTS[12], sk.PARENTS[16]) == (0, 0)
    assert (sk.PARENTS[21], sk.PARENTS[22], sk.PARENTS[23], sk.PARENTS[24]) == (7, 6, 11, 10)
    # CTR-GCN's list: the same undirected edges except the 4 hand edges
    ours = {frozenset(b) for b in sk.BONES}
    theirs = {frozenset(b) for b in sk.CTRGCN_BONES}
    assert len(theirs) == 24 and len(ours & theirs) == 20
    assert ours - theirs == {frozenset(e) for e in ((21, 7), (22, 6), (23, 11), (24, 10))}


def test_rest_pose_is_an_upright_adult():
    pose = sk.rest_pose()
    assert np.allclose(sk.bone_lengths(pose), sk.REST_LENGTHS, atol=1e-12)
    assert 1.45 < pose[3, 1] - pose[14, 1] < 1.75  # ankle to head centre
    for left, right in sk.LEFT_RIGHT:
        assert pose[left, 0] > 0 and np.allclose(pose[right], pose[left] * [-1, 1, 1])
    assert pose[15, 2] > pose[14, 2] and pose[22, 2] > pose[6, 2]  # feet and thumbs point forward


def test_axis_angle_to_matrix():
    rot = sk.axis_angle_to_matrix(np.array([0.0, 0.0, np.pi / 2]))
    assert np.allclose(rot @ [1.0, 0.0, 0.0], [0.0, 1.0, 0.0])
    assert np.allclose(sk.axis_angle_to_matrix(np.zeros(3)), np.eye(3))
    many = sk.axis_angle_to_matrix(np.random.default_rng(0).normal(size=(50, 3)) * 2)
    assert np.allclose(many @ np.swapaxes(many, 1, 2), np.eye(3), atol=1e-12)
    assert np.allclose(np.linalg.det(many), 1.0)
    assert np.allclose(sk.yaw_matrix(np.pi / 2) @ [0.0, 0.0, 1.0], [1.0, 0.0, 0.0])


def test_forward_kinematics_preserves_bone_lengths():
    rng = np.random.default_rng(1)
    rotvec = rng.normal(size=(4, 7, 25, 3)) * 1.5
    lengths = sk.REST_LENGTHS * rng.uniform(0.7, 1.3, size=(4, 1, 24))  # broadcast over frames
    root = rng.normal(size=(4, 7, 3))
    joints = sk.forward_kinematics(sk.axis_angle_to_matrix(rotvec), root, lengths)
    assert joints.shape == (4, 7, 25, 3)
    assert np.abs(sk.bone_lengths(joints) - lengths).max() < 1e-9
    assert np.allclose(joints[..., 0, :], root)
    assert np.allclose(sk.forward_kinematics_rotvec(rotvec, root, lengths), joints, atol=1e-12)


def test_forward_kinematics_rotation_moves_only_descendants():
    rot = np.broadcast_to(np.eye(3), (25, 3, 3)).copy()
    rot[4] = sk.axis_angle_to_matrix(np.array([-np.pi / 2, 0.0, 0.0]))  # left shoulder, forward
    joints = sk.forward_kinematics(rot, np.zeros(3), sk.REST_LENGTHS)
    rest = sk.rest_pose()
    moved = np.flatnonzero(np.linalg.norm(joints - rest, axis=1) > 1e-9)
    assert set(moved) == {5, 6, 7, 21, 22}
    assert joints[6, 2] > 0.4 and abs(joints[6, 1] - rest[4, 1]) < 1e-9  # arm straight ahead


# ---------------------------------------------------------------- generator


def test_generate_layout_labels_and_padding():
    cfg = DataConfig(min_length=30, max_length=60)  # 300 stored frames, as in CTR-GCN's files
    classes = CLASSES[::7]
    data = synth.generate(cfg, classes, 3, seed=0)
    x, y, length = data["x"], data["y"], data["length"]
    assert x.shape == (3 * len(classes), 300, 150) and x.dtype == np.float32
    assert y.dtype == np.int64 and length.dtype == np.int64
    assert list(y) == [c.index for c in classes for _ in range(3)]
    assert length.min() >= 30 and length.max() <= 60
    frames = np.arange(300)[None, :]
    assert not x[frames >= length[:, None]].any()  # padding is zero
    assert (np.abs(x[..., :75]).sum(-1)[frames < length[:, None]] > 0).all()  # person 1 always there
    assert np.allclose(person(x, 0)[:, 0, 1], 0.0)  # origin: spine mid of frame 0 (CTR-GCN)
    assert np.abs(x).max() < 3.0


def test_generated_sequences_keep_bone_lengths():
    cfg = small(jitter=0.0, second_person=1.0)
    data = synth.generate(cfg, CLASSES, 2, seed=3, return_bones=True)
    first, second = person(data["x"], 0), person(data["x"], 1)
    for i, n in enumerate(data["length"]):
        assert np.abs(sk.bone_lengths(first[i, :n]) - data["bones"][i]).max() < 1e-5
        lengths2 = sk.bone_lengths(second[i, :n])
        assert np.abs(lengths2 - lengths2[0]).max() < 1e-5  # the second person is rigid-boned too
    ratio = data["bones"] / sk.REST_LENGTHS
    assert ratio.min() >= (1 - 0.1) * (1 - 0.05) - 1e-12 and ratio.max() <= 1.1 * 1.05 + 1e-12
    assert np.allclose(data["bones"], data["bones"][:, sk.MIRROR_BONE])  # left = right


def test_second_person_rate_and_absence():
    def present(cfg):
        x = synth.generate(cfg, CLASSES, 4, seed=0)["x"]
        return np.abs(x[..., 75:]).sum(axis=(1, 2)) > 0, x

    mask, x = present(small(second_person=0.5))
    assert 0.35 < mask.mean() < 0.65
    assert not x[~mask][..., 75:].any()  # absent = zeros
    assert not present(small(second_person=0.0))[0].any()
    assert present(small(second_person=1.0))[0].all()
    # a present second person stands beside the first, about a metre away
    both = person(x[mask], 0)[:, 0, 0], person(x[mask], 1)[:, 0, 0]
    gap = np.linalg.norm(both[0] - both[1], axis=-1)
    assert gap.min() > 0.5 and gap.max() < 1.8


def test_generate_is_deterministic_per_seed():
    cfg = small()
    a = synth.generate(cfg, CLASSES[:6], 3, seed=5)
    b = synth.generate(cfg, CLASSES[:6], 3, seed=5)
    c = synth.generate(cfg, CLASSES[:6], 3, seed=6)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["x"], c["x"])
    alone = synth.generate(cfg, CLASSES[4:5], 3, seed=5)  # a class's sequences do not depend on the others
    assert np.array_equal(alone["x"], a["x"][12:15])


def test_yaw_changes_coordinates_not_bone_lengths():
    base = synth.generate(small(jitter=0.0, yaw_deg=0.0), CLASSES[:8], 2, seed=2, return_bones=True)
    turned = synth.generate(small(jitter=0.0, yaw_deg=90.0), CLASSES[:8], 2, seed=2, return_bones=True)
    assert np.array_equal(base["length"], turned["length"])
    p0, p1 = person(base["x"], 0), person(turned["x"], 0)
    assert np.abs(p0[..., 0] - p1[..., 0]).max() > 0.1  # x and z change
    assert np.abs(p0[..., 1] - p1[..., 1]).max() < 1e-5  # a turn about the vertical keeps heights
    for i, n in enumerate(base["length"]):
        assert np.abs(sk.bone_lengths(p1[i, :n]) - base["bones"][i]).max() < 1e-5
        assert np.abs(sk.bone_lengths(p0[i, :n]) - sk.bone_lengths(p1[i, :n])).max() < 1e-5


def _motion(data) -> np.ndarray:
    """Mean over valid frames of each joint's displacement from frame 0, relative to the
    spine base (removes the body's sway): (N, 25)."""
    joints = person(data["x"], 0)
    rel = joints - joints[:, :, :1]
    disp = np.linalg.norm(rel - rel[:, :1], axis=-1)
    valid = np.arange(joints.shape[1])[None, :] < data["length"][:, None]
    return (disp * valid[..., None]).sum(1) / data["length"][:, None]


@pytest.mark.parametrize("name, moving, still", [
    ("once raise left arm", [6], [10, 14, 18]),
    ("repeat swing right arm", [10], [6, 14, 18]),
    ("once bend left leg", [14], [18, 6, 10]),
    ("repeat swing right leg", [18], [14, 6, 10]),
    ("once raise both arms", [6, 10], [14, 18]),
    ("once twist both arms", [21, 23], [14, 18]),
    ("once raise upper body", [3], [14, 18]),
    ("once swing upper body", [3], [14, 18]),
    ("once twist upper body", [4, 8], [14, 18]),
])
def test_the_named_part_moves(name, moving, still):
    motion = _motion(synth.generate(small(jitter=0.0), [BY_NAME[name]], 4, seed=0))
    assert motion[:, moving].min() > 2 * motion[:, still].max(), motion[:, moving + still]


def test_squat_lowers_the_body_and_patterns_differ():
    data = synth.generate(small(jitter=0.0), [BY_NAME["once bend upper body"]], 3, seed=0)
    head = person(data["x"], 0)[:, :, 3, 1]
    drop = head[:, :1] - head.min(axis=1, keepdims=True)
    assert drop.min() > 0.2
    # "once" ends where it started; "repeat" ends at the peak
    for pattern, back in (("once", True), ("repeat", False)):
        d = synth.generate(small(jitter=0.0), [BY_NAME[f"{pattern} raise left arm"]], 3, seed=0)
        wrist = person(d["x"], 0)[:, :, 6]
        end = np.linalg.norm(wrist[np.arange(3), d["length"] - 1] - wrist[:, 0], axis=-1)
        assert (end < 0.15).all() if back else (end > 0.5).all()


def test_classes_are_separable_by_a_nearest_centroid():
    """A crude check that the 48 classes are learnable: per-joint displacement profiles at 6
    time points, nearest class centroid, fit on one seed and scored on another."""

    def features(data):
        joints = person(data["x"], 0)
        rel = joints - joints[:, :, :1]
        idx = (np.linspace(0, 1, 6)[None, :] * (data["length"][:, None] - 1)).round().astype(int)
        picked = rel[np.arange(len(rel))[:, None], idx]  # (N, 6, 25, 3)
        return np.linalg.norm(picked - picked[:, :1], axis=-1).reshape(len(rel), -1)

    cfg = small()
    train = synth.generate(cfg, CLASSES, 4, seed=0)
    test = synth.generate(cfg, CLASSES, 2, seed=1)
    ftrain, ftest = features(train), features(test)
    centroids = np.stack([ftrain[train["y"] == c.index].mean(0) for c in CLASSES])
    pred = np.argmin(((ftest[:, None] - centroids[None]) ** 2).sum(-1), axis=1)
    assert (pred == test["y"]).mean() > 0.6  # chance is 1/48


def test_invalid_lengths_are_user_errors():
    with pytest.raises(UserError, match="min_length"):
        synth.generate(small(min_length=70), CLASSES[:1], 1, seed=0)
    with pytest.raises(UserError, match="frames"):
        synth.generate(small(max_length=90), CLASSES[:1], 1, seed=0)
    with pytest.raises(UserError, match="speed"):
        synth.generate(small(speed=1.0), CLASSES[:1], 1, seed=0)


# ---------------------------------------------------------------- cache


def test_load_or_generate_reuses_the_cache(tmp_path, monkeypatch):
    cfg = small(train_per_class=2, test_per_class=1)
    classes = CLASSES[:3]
    calls = []
    real = synth.generate

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(synth, "generate", counting)
    first = synth.load_or_generate(cfg, tmp_path, classes, "train")
    assert len(calls) == 1 and first["x"].shape == (6, 80, 150)
    files = sorted((tmp_path / "neuron").glob("synthetic-*-train.npz"))
    assert len(files) == 1

    def refuse(*args, **kwargs):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(synth, "generate", refuse)
    again = synth.load_or_generate(cfg, tmp_path, classes, "train")
    assert all(np.array_equal(first[k], again[k]) for k in first)

    monkeypatch.setattr(synth, "generate", counting)
    test = synth.load_or_generate(cfg, tmp_path, classes, "test")
    assert len(calls) == 2 and test["x"].shape == (3, 80, 150)
    assert calls[-1][2:] == (1, cfg.data_seed + 1)  # per_class and seed of the test split
    assert not np.array_equal(test["x"], first["x"][::2])

    data = bytearray(files[0].read_bytes())
    data[len(data) // 2] ^= 0xFF
    files[0].write_bytes(bytes(data))
    with pytest.raises(UserError, match="corrupt"):
        synth.load_or_generate(cfg, tmp_path, classes, "train")


def test_load_or_generate_key_follows_the_config(tmp_path):
    classes = CLASSES[:2]
    synth.load_or_generate(small(train_per_class=1), tmp_path, classes, "train")
    synth.load_or_generate(small(train_per_class=1, yaw_deg=10.0), tmp_path, classes, "train")
    synth.load_or_generate(small(train_per_class=1, path="/elsewhere"), tmp_path, classes, "train")
    assert len(list((tmp_path / "neuron").glob("*.npz"))) == 2  # data.path is not part of the key
