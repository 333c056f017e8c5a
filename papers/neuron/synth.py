"""Synthetic NTU-format skeleton actions, composed from `classes.py`'s part × primitive × phase
records and built by forward kinematics (`skeleton.py`), so every frame has exact bone
lengths before jitter.

One sequence:
1. A subject: adult rest bone lengths × a global factor uniform in 1 ± `bone_scale` × a
   per-bone factor uniform in 1 ± `bone_scale`/2 (left and right bones share their factor).
2. A timeline of `length` frames: base length uniform in 0.9-1.1 × the midpoint of
   [min_length, max_length], divided by a tempo factor uniform in 1 ± `speed`, clipped to
   [min_length, max_length] (and to `frames`). The action runs from a short rest at the start
   (0-10 % of the frames) to a short rest at the end (0-10 %); its three phases
   (`PATTERNS`) split that span in thirds (each inner boundary ± 4 % of the span), each a
   cosine ease from the previous phase's level to its own (move -> 1, hold -> 1, return -> 0). The peak angles are the
   primitive's × an amplitude factor uniform in 0.85-1.15.
3. The primitive at the part (angles from `PRIMITIVES`; α = `angle_deg` at the main joint,
   β = `secondary_deg` at the distal joint):
   - arms (main = shoulder, distal = elbow): flex_forward = raise forwards/up, abduct = swing
     out sideways, flex_distal = shoulder forwards by α with the elbow flexed by β (a curl),
     axial = external rotation of the upper arm about its long axis with the elbow flexed by
     β, so the forearm sweeps outwards. Elbows always flex forwards.
   - legs (main = hip, distal = knee): the same rotations at the hip; the knee flexes
     backwards (leg bend = heel lifted behind).
   - both_arms: both arms, the right one the mirror image of the left.
   - torso (a spine cannot take the arm angles, so the trunk gets fractions of α):
     flex_forward = a bow, trunk pitched forward by 0.6 α (0.4 α at the pelvis with the legs
     kept vertical, 0.1 α each at the spine mid and spine shoulder) and the neck by β;
     abduct = lean to the subject's left by 0.5 α (split over spine mid / spine shoulder);
     flex_distal = a squat, knees flexed by β, thighs forward by β/2, ankles keeping the feet
     flat and the trunk leaning forward by α; axial = twist to the left about the vertical by
     α (split over the spine) with the head turning β further.
   The lower ankle stays at a fixed height above the floor in every frame (so a squat lowers
   the body and a raised leg does not lift it).
4. Idle motion on every person: per-joint rotations of a few degrees (sinusoids of 0.15-0.6 Hz
   at 30 fps with random phases; largest at the wrists and hands) and a
   ~1.5 cm horizontal sway of the root.
5. The scene, emulating Kinect v2 camera space (x towards the sensor's left, y up, z away from
   the sensor, metres): the subject stands 2.5-3.5 m in front of the sensor, facing it, the
   sensor 0.7-1.0 m above the floor. With probability `second_person` a second, idle subject
   (own bone lengths, facing the sensor ± 15°) stands 0.8-1.3 m to one side, present in every
   valid frame; otherwise its 75 columns are zeros. The whole scene turns by a camera yaw
   uniform in ± `yaw_deg` about the vertical through the first subject's spine base.
6. Gaussian jitter (σ = `jitter`) on every joint coordinate of a present person, then the
   translation CTR-GCN's `seq_transformation.py` applies: the first subject's spine mid
   (joint 1) in frame 0 becomes the origin, for both persons.
7. Stored in CTR-GCN's NTU layout: (N, frames, 150) float32, per frame person 1's 25 joints ×
   xyz then person 2's; frames from `length` on are zeros.

Every class draws from its own random stream seeded by (seed, class index), so a class's
sequences do not depend on which other classes are generated.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np

from shared import UserError
from shared.cache import cache_key, cached_arrays

from .classes import PARTS, PRIMITIVES, ActionClass
from .config import DataConfig
from .skeleton import (
    MIRROR_BONE,
    NUM_BONES,
    NUM_JOINTS,
    REST_LENGTHS,
    forward_kinematics_rotvec,
    yaw_matrix,
)

VERSION = 1  # bump when the generator changes: it is part of the cache key
FPS = 30.0
ANKLE_HEIGHT = 0.08  # metres above the floor of the lower ankle
AMPLITUDE = 0.15  # peak angles vary uniformly in 1 ± this

_X = np.array([1.0, 0.0, 0.0])  # the subject's left
_Y = np.array([0.0, 1.0, 0.0])  # up
_Z = np.array([0.0, 0.0, 1.0])  # the subject's forward
_MIRROR_ROTVEC = np.array([1.0, -1.0, -1.0])  # a rotation's mirror image across the x = 0 plane

# idle rotation amplitude per joint (radians); leaves (head, foot, tips, thumbs) carry none
_IDLE = np.zeros(NUM_JOINTS)
_IDLE[[0]] = 0.01
_IDLE[[1, 20]] = 0.02
_IDLE[[2]] = 0.04
_IDLE[[4, 8]] = 0.03
_IDLE[[5, 9]] = 0.04
_IDLE[[6, 7, 10, 11]] = 0.08
_IDLE[[12, 16, 13, 17]] = 0.015
_IDLE[[14, 18]] = 0.02

# limb -> (main joint, distal joint, is a leg, is the mirrored side)
_LIMBS = {
    "left_arm": ((4, 5, False, False),),
    "right_arm": ((8, 9, False, True),),
    "both_arms": ((4, 5, False, False), (8, 9, False, True)),
    "left_leg": ((12, 13, True, False),),
    "right_leg": ((16, 17, True, True),),
}


def _check(cfg: DataConfig) -> None:
    if not 1 <= cfg.min_length <= cfg.max_length <= cfg.frames:
        raise UserError(f"data: need 1 <= min_length ({cfg.min_length}) <= max_length "
                        f"({cfg.max_length}) <= frames ({cfg.frames})")
    for name in ("bone_scale", "speed"):
        if not 0.0 <= getattr(cfg, name) < 1.0:
            raise UserError(f"config key 'data.{name}': must be in [0, 1), got {getattr(cfg, name)}")
    if not 0.0 <= cfg.second_person <= 1.0:
        raise UserError(f"config key 'data.second_person': a probability, got {cfg.second_person}")
    if cfg.jitter < 0:
        raise UserError(f"config key 'data.jitter': must be >= 0, got {cfg.jitter}")


def _ease(w: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 - np.cos(np.pi * np.clip(w, 0.0, 1.0)))


def _activation(rng, lengths: np.ndarray, steps: int, cls: ActionClass) -> np.ndarray:
    """Level of the action in [0, 1] per (sample, frame) following the class's phases, which
    split the action span into equal parts (± 12 % of a part)."""
    b, n = len(lengths), len(cls.phases)
    start = rng.uniform(0.0, 0.1, b)
    end = rng.uniform(0.9, 1.0, b)
    inner = (np.arange(1, n)[None, :] + rng.uniform(-0.12, 0.12, (b, n - 1))) / n
    cuts = np.concatenate([start[:, None], start[:, None] + (end - start)[:, None] * inner,
                           end[:, None]], axis=1)  # (B, n + 1) phase boundaries
    u = np.arange(steps)[None, :] / np.maximum(lengths[:, None] - 1, 1)  # (B, T), 1 at the last frame
    level = np.zeros((b, steps))
    previous = 0.0
    for k, (_, target) in enumerate(cls.phases):
        w = (u - cuts[:, k, None]) / (cuts[:, k + 1, None] - cuts[:, k, None])
        level += (target - previous) * _ease(w)
        previous = target
    return level


def _action_rotvecs(cls: ActionClass, level: np.ndarray, amp: np.ndarray) -> np.ndarray:
    """Local rotation vectors (B, T, 25, 3) of the class's primitive at the given levels."""
    prim = PRIMITIVES[cls.primitive]
    scale = level * amp[:, None]
    a = np.deg2rad(prim.angle_deg) * scale[..., None]  # (B, T, 1): main joint
    s = np.deg2rad(prim.secondary_deg) * scale[..., None]  # distal joint
    rv = np.zeros(level.shape + (NUM_JOINTS, 3))
    kind = prim.rotation
    if cls.part in _LIMBS:
        main = {"flex_forward": -a * _X, "abduct": a * _Z, "flex_distal": -a * _X, "axial": a * _Y}[kind]
        for main_j, distal_j, leg, mirrored in _LIMBS[cls.part]:
            distal = (s if leg else -s) * _X  # knees flex backwards, elbows forwards
            flip = _MIRROR_ROTVEC if mirrored else 1.0
            rv[..., main_j, :] += main * flip
            rv[..., distal_j, :] += distal * flip
    elif cls.part == "torso":
        if kind == "flex_forward":  # bow
            rv[..., 0, :] += -0.4 * a * _X
            rv[..., 12, :] += 0.4 * a * _X  # legs stay vertical
            rv[..., 16, :] += 0.4 * a * _X
            rv[..., 1, :] += -0.1 * a * _X
            rv[..., 20, :] += -0.1 * a * _X
            rv[..., 2, :] += -s * _X
        elif kind == "abduct":  # lean to the left
            rv[..., 1, :] += -0.25 * a * _Z
            rv[..., 20, :] += -0.25 * a * _Z
            rv[..., 2, :] += -s * _Z
        elif kind == "flex_distal":  # squat
            rv[..., 0, :] += -a * _X
            for hip, knee, ankle in ((12, 13, 14), (16, 17, 18)):
                rv[..., hip, :] += -(0.5 * s - a) * _X
                rv[..., knee, :] += s * _X
                rv[..., ankle, :] += -0.5 * s * _X
        elif kind == "axial":  # twist to the left
            rv[..., 1, :] += 0.5 * a * _Y
            rv[..., 20, :] += 0.5 * a * _Y
            rv[..., 2, :] += s * _Y
        else:
            raise ValueError(f"unknown rotation {kind!r}")
    else:
        raise ValueError(f"unknown part {cls.part!r} (known: {', '.join(PARTS)})")
    return rv


def _subjects(rng, b: int, bone_scale: float) -> np.ndarray:
    """Bone lengths (B, 24): global × per-bone (left/right shared) factors on the rest lengths."""
    overall = rng.uniform(1 - bone_scale, 1 + bone_scale, (b, 1))
    per_bone = rng.uniform(1 - bone_scale / 2, 1 + bone_scale / 2, (b, NUM_BONES))
    per_bone = per_bone[:, np.minimum(np.arange(NUM_BONES), MIRROR_BONE)]
    return REST_LENGTHS * overall * per_bone


_IDLE_JOINTS = np.flatnonzero(_IDLE)


def _idle(rng, b: int, steps: int, gain: float) -> tuple[np.ndarray, np.ndarray]:
    """Idle rotation vectors (B, T, 25, 3) and root sway (B, T, 3)."""
    t = np.arange(steps) / FPS
    shape = (b, 1, len(_IDLE_JOINTS), 3)
    freq = rng.uniform(0.15, 0.6, shape)
    phase = rng.uniform(0, 2 * np.pi, shape)
    size = gain * _IDLE[None, None, _IDLE_JOINTS, None] * rng.uniform(0.5, 1.5, shape)
    rot = np.zeros((b, steps, NUM_JOINTS, 3))
    rot[:, :, _IDLE_JOINTS] = size * np.sin(2 * np.pi * freq * t[None, :, None, None] + phase)
    sway_f = rng.uniform(0.1, 0.3, (b, 1, 3))
    sway_p = rng.uniform(0, 2 * np.pi, (b, 1, 3))
    sway = gain * 0.015 * np.sin(2 * np.pi * sway_f * t[None, :, None] + sway_p) * np.array([1.0, 0.0, 1.0])
    return rot, sway


def _pose(rotvecs: np.ndarray, sway: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Body-frame joints (B, T, 25, 3) with the lower ankle at ANKLE_HEIGHT and the root sway."""
    joints = forward_kinematics_rotvec(rotvecs, np.zeros(3), lengths[:, None, :])
    lift = ANKLE_HEIGHT - np.minimum(joints[..., 14, 1], joints[..., 18, 1])
    return joints + sway[..., None, :] + lift[..., None, None] * _Y


def _transform(rot: np.ndarray, points: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """rot (B, 3, 3) @ points (B, T, J, 3) + shift (B, 3)."""
    b, t, j, _ = points.shape
    out = points.reshape(b, t * j, 3) @ np.swapaxes(rot, 1, 2)
    return out.reshape(b, t, j, 3) + shift[:, None, None, :]


def _generate_class(cfg: DataConfig, cls: ActionClass, count: int, seed: int,
                    out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Writes `count` sequences of `cls` into out (count, frames, 150) (zeros on entry);
    returns their lengths and the first subject's bone lengths."""
    rng = np.random.default_rng([seed, cls.index])
    mid = 0.5 * (cfg.min_length + cfg.max_length)
    tempo = rng.uniform(1 - cfg.speed, 1 + cfg.speed, count)
    lengths = np.rint(mid * rng.uniform(0.9, 1.1, count) / tempo).astype(np.int64)
    lengths = np.clip(lengths, cfg.min_length, min(cfg.max_length, cfg.frames))
    steps = int(lengths.max())

    bones = _subjects(rng, count, cfg.bone_scale)
    level = _activation(rng, lengths, steps, cls)
    amp = rng.uniform(1 - AMPLITUDE, 1 + AMPLITUDE, count)
    idle, sway = _idle(rng, count, steps, 1.0)
    body = _pose(_action_rotvecs(cls, level, amp) + idle, sway, bones)  # (B, T, 25, 3)

    # camera placement: facing the sensor (a half turn), 2.5-3.5 m away, sensor 0.7-1.0 m up
    place = np.stack([rng.uniform(-0.3, 0.3, count), -rng.uniform(0.7, 1.0, count),
                      rng.uniform(2.5, 3.5, count)], axis=1)
    yaw = np.deg2rad(rng.uniform(-cfg.yaw_deg, cfg.yaw_deg, count))
    camera = yaw_matrix(yaw)  # the camera's orbit about the first subject's spine base
    face = yaw_matrix(np.full(count, np.pi))
    first = _transform(camera @ face, body, place)
    if cfg.jitter > 0:
        first += cfg.jitter * rng.standard_normal(first.shape, dtype=np.float32)
    origin = first[:, 0, 1, :].copy()  # CTR-GCN: the first subject's spine mid in frame 0
    first -= origin[:, None, None, :]
    out[:, :steps, :75] = first.reshape(count, steps, 75)

    present = np.flatnonzero(rng.random(count) < cfg.second_person)
    n2 = len(present)
    if n2:
        bones2 = _subjects(rng, n2, cfg.bone_scale)
        idle2, sway2 = _idle(rng, n2, steps, 1.5)
        body2 = _pose(idle2, sway2, bones2)
        side = np.where(rng.random(n2) < 0.5, -1.0, 1.0)
        offset = np.stack([side * rng.uniform(0.8, 1.3, n2), np.zeros(n2),
                           rng.uniform(-0.4, 0.4, n2)], axis=1)  # in the first subject's frame
        turn = yaw_matrix(np.pi + np.deg2rad(rng.uniform(-15.0, 15.0, n2)))
        cam2 = camera[present]
        pos2 = (cam2 @ face[present] @ offset[:, :, None])[..., 0] + place[present] - origin[present]
        second = _transform(cam2 @ turn, body2, pos2)
        if cfg.jitter > 0:
            second += cfg.jitter * rng.standard_normal(second.shape, dtype=np.float32)
        out[present, :steps, 75:] = second.reshape(n2, steps, 75)

    window = out[:, :steps]
    window[np.arange(steps)[None, :] >= lengths[:, None]] = 0.0  # padding frames
    return lengths, bones


def generate(cfg: DataConfig, classes: list[ActionClass], per_class: int, seed: int,
             return_bones: bool = False) -> dict[str, np.ndarray]:
    """`per_class` sequences of each class: x (N, cfg.frames, 150) float32 (CTR-GCN NTU
    layout, metres), y (N,) int64 (`ActionClass.index`), length (N,) int64 valid frames;
    class-major order. With `return_bones`, also bones (N, 24): the first subject's exact bone
    lengths. Deterministic in (cfg, classes, per_class, seed)."""
    _check(cfg)
    if seed < 0:
        raise UserError(f"synthetic data seed must be >= 0, got {seed}")
    if per_class < 0:
        raise UserError(f"sequences per class must be >= 0, got {per_class}")
    n = per_class * len(classes)
    x = np.zeros((n, cfg.frames, 150), dtype=np.float32)
    y = np.repeat(np.array([c.index for c in classes], dtype=np.int64), per_class)
    length = np.zeros(n, dtype=np.int64)
    bones = np.zeros((n, NUM_BONES))
    if per_class:
        for i, cls in enumerate(classes):
            rows = slice(i * per_class, (i + 1) * per_class)
            length[rows], bones[rows] = _generate_class(cfg, cls, per_class, seed, x[rows])
    out = {"x": x, "y": y, "length": length}
    if return_bones:
        out["bones"] = bones
    return out


_SYNTH_FIELDS = ("frames", "min_length", "max_length", "bone_scale", "speed", "yaw_deg",
                 "jitter", "second_person")


def load_or_generate(cfg: DataConfig, data_dir: str | Path, classes: list[ActionClass],
                     split: str) -> dict[str, np.ndarray]:
    """The `split` ("train": `train_per_class` sequences per class from `data_seed`; "test":
    `test_per_class` from `data_seed` + 1), cached (checksummed) under
    `<data_dir>/neuron/synthetic-<key>-<split>.npz`."""
    if split == "train":
        per_class, seed = cfg.train_per_class, cfg.data_seed
    elif split == "test":
        per_class, seed = cfg.test_per_class, cfg.data_seed + 1
    else:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    fields = asdict(cfg)
    key = cache_key(version=VERSION, split=split, per_class=per_class, seed=seed,
                    data={k: fields[k] for k in _SYNTH_FIELDS},
                    classes=[(c.index, c.part, c.primitive, c.pattern) for c in classes])
    path = Path(data_dir) / "neuron" / f"synthetic-{key}-{split}.npz"
    return cached_arrays(path, lambda: generate(cfg, classes, per_class, seed))
