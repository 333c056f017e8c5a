"""The NTU RGB+D 25-joint skeleton: layout, kinematic tree, rest pose and forward kinematics.

Joints (0-based, Kinect v2 order as stored in NTU RGB+D):
  0 spine base, 1 spine mid, 2 neck, 3 head, 4 L shoulder, 5 L elbow, 6 L wrist, 7 L hand,
  8 R shoulder, 9 R elbow, 10 R wrist, 11 R hand, 12 L hip, 13 L knee, 14 L ankle, 15 L foot,
  16 R hip, 17 R knee, 18 R ankle, 19 R foot, 20 spine shoulder, 21 L hand tip, 22 L thumb,
  23 R hand tip, 24 R thumb.

The kinematic tree (`PARENTS`) is rooted at the spine base and follows the Kinect v2 bones:
the hand tip hangs from the hand and the thumb from the wrist. `BONES` lists the 24 bones as
(child, parent), one per non-root joint, in the order `lengths[..., k]` uses (bone k has
child joint k + 1). As undirected edges it is the standard NTU bone list of CTR-GCN /
Shift-GCN (`inward_ori_index` in their `graph/ntu_rgb_d.py`) for the torso, head, arms and
legs (20 edges); the 4 hand edges differ: CTR-GCN chains hand tip - thumb - hand
(21-22, 22-7, 23-24, 24-11) where Kinect (and this tree) uses hand - hand tip and
wrist - thumb (21-7, 22-6, 23-11, 24-10). `CTRGCN_BONES` gives CTR-GCN's list verbatim
(0-based) for a graph that must match theirs.

Body frame of the rest pose (metres): x = the subject's left, y = up, z = the subject's
forward (right-handed); the root (spine base) at the origin, arms hanging with the palms
facing the thighs. Forward kinematics composes per-joint rotations down the chain: the
world orientation of joint j is W_parent(j) @ R_j, and a child c sits at
p_j + W_j @ (unit direction of bone c × its length). So a rotation at the shoulder moves the
upper arm, forearm and hand; the root's rotation turns the whole body.
"""

from __future__ import annotations

import numpy as np

NUM_JOINTS = 25
NUM_BONES = 24

JOINT_NAMES = (
    "spine base", "spine mid", "neck", "head",
    "left shoulder", "left elbow", "left wrist", "left hand",
    "right shoulder", "right elbow", "right wrist", "right hand",
    "left hip", "left knee", "left ankle", "left foot",
    "right hip", "right knee", "right ankle", "right foot",
    "spine shoulder", "left hand tip", "left thumb", "right hand tip", "right thumb",
)

# parent of every joint (-1 for the root)
PARENTS: tuple[int, ...] = (
    -1, 0, 20, 2,      # spine base, spine mid, neck, head
    20, 4, 5, 6,       # left arm
    20, 8, 9, 10,      # right arm
    0, 12, 13, 14,     # left leg
    0, 16, 17, 18,     # right leg
    1,                 # spine shoulder
    7, 6, 11, 10,      # left hand tip, left thumb, right hand tip, right thumb
)

BONES: tuple[tuple[int, int], ...] = tuple((j, PARENTS[j]) for j in range(1, NUM_JOINTS))

# CTR-GCN / Shift-GCN NTU bone list, 0-based, (child, parent) towards the spine shoulder
CTRGCN_BONES: tuple[tuple[int, int], ...] = (
    (0, 1), (1, 20), (2, 20), (3, 2), (4, 20), (5, 4), (6, 5), (7, 6), (8, 20), (9, 8),
    (10, 9), (11, 10), (12, 0), (13, 12), (14, 13), (15, 14), (16, 0), (17, 16), (18, 17),
    (19, 18), (21, 22), (22, 7), (23, 24), (24, 11),
)

LEFT_RIGHT = ((4, 8), (5, 9), (6, 10), (7, 11), (12, 16), (13, 17), (14, 18), (15, 19),
              (21, 23), (22, 24))  # mirrored joint pairs


def _topological_order() -> tuple[int, ...]:
    children: dict[int, list[int]] = {j: [] for j in range(NUM_JOINTS)}
    for j, p in enumerate(PARENTS):
        if p >= 0:
            children[p].append(j)
    order, stack = [], [0]
    while stack:
        j = stack.pop()
        order.append(j)
        stack.extend(sorted(children[j], reverse=True))
    return tuple(order)


ORDER = _topological_order()  # parents before children


def _unit(*v: float) -> np.ndarray:
    a = np.asarray(v, dtype=np.float64)
    return a / np.linalg.norm(a)


# bone (child joint) -> (direction in the rest pose, adult length in metres). Lengths follow
# anthropometric tables for a ~1.75 m adult as Kinect v2 measures them (joint centres).
_REST: dict[int, tuple[np.ndarray, float]] = {
    1: (_unit(0, 1, 0), 0.27),            # spine base -> spine mid (lumbar)
    20: (_unit(0, 1, 0), 0.22),           # spine mid -> spine shoulder (thoracic)
    2: (_unit(0, 1, 0.05), 0.08),         # spine shoulder -> neck
    3: (_unit(0, 1, 0.05), 0.15),         # neck -> head (centre)
    4: (_unit(1, -0.15, 0), 0.17),        # spine shoulder -> left shoulder (clavicle)
    5: (_unit(0, -1, 0), 0.28),           # upper arm
    6: (_unit(0, -1, 0), 0.25),           # forearm
    7: (_unit(0, -1, 0), 0.08),           # wrist -> hand (palm centre)
    21: (_unit(0, -1, 0), 0.08),          # hand -> hand tip
    22: (_unit(0, -0.5, 0.85), 0.06),     # wrist -> thumb (forward, palm facing the thigh)
    12: (_unit(1, -0.3, 0), 0.09),        # spine base -> left hip
    13: (_unit(0, -1, 0), 0.42),          # thigh
    14: (_unit(0, -1, 0), 0.40),          # shin
    15: (_unit(0, -0.3, 1), 0.13),        # ankle -> foot (forward)
}
_MIRROR = np.array([-1.0, 1.0, 1.0])
for _left, _right in LEFT_RIGHT:
    _REST[_right] = (_REST[_left][0] * _MIRROR, _REST[_left][1])

REST_DIRECTIONS = np.stack([_REST[c][0] for c, _ in BONES])  # (24, 3) unit vectors
REST_LENGTHS = np.array([_REST[c][1] for c, _ in BONES])  # (24,) metres
MIRROR_JOINT = list(range(NUM_JOINTS))  # each joint's mirror image (itself on the midline)
for _left, _right in LEFT_RIGHT:
    MIRROR_JOINT[_left], MIRROR_JOINT[_right] = _right, _left
MIRROR_BONE = np.array([MIRROR_JOINT[c] - 1 for c, _ in BONES])  # bone k has child joint k + 1


def _rodrigues(k0, k1, k2) -> list[list[np.ndarray]]:
    """Rotation matrix entries [row][col] from the rotation vector's three components (arrays
    of any one shape), elementwise (fast for many small rotations)."""
    angle = np.sqrt(k0 * k0 + k1 * k1 + k2 * k2)
    inv = 1.0 / np.where(angle > 1e-12, angle, 1.0)
    x, y, z = k0 * inv, k1 * inv, k2 * inv
    s, c = np.sin(angle), np.cos(angle)
    v = 1.0 - c
    return [[c + x * x * v, x * y * v - z * s, x * z * v + y * s],
            [y * x * v + z * s, c + y * y * v, y * z * v - x * s],
            [z * x * v - y * s, z * y * v + x * s, c + z * z * v]]


def axis_angle_to_matrix(rotvec) -> np.ndarray:
    """Rodrigues: rotation vectors (..., 3) (axis × angle in radians) -> matrices (..., 3, 3)."""
    rotvec = np.asarray(rotvec, dtype=np.float64)
    rows = _rodrigues(rotvec[..., 0], rotvec[..., 1], rotvec[..., 2])
    return np.stack([np.stack(r, axis=-1) for r in rows], axis=-2)


def rotation_about(axis, angle) -> np.ndarray:
    """Rotation(s) by `angle` (radians, any shape) about the fixed `axis` (3,)."""
    axis = np.asarray(axis, dtype=np.float64)
    axis = axis / np.linalg.norm(axis)
    return axis_angle_to_matrix(np.asarray(angle, dtype=np.float64)[..., None] * axis)


def yaw_matrix(angle) -> np.ndarray:
    """Rotation(s) about the vertical (y) axis; positive turns forward (+z) towards +x."""
    return rotation_about((0.0, 1.0, 0.0), angle)


_HAS_CHILD = frozenset(p for p in PARENTS if p >= 0)


def _fk(rot, lengths: np.ndarray, root: np.ndarray) -> np.ndarray:
    """Component-major forward kinematics: rot(j) gives joint j's local rotation as nested
    [row][col] lists of (M,) arrays, lengths (24, M), root (3, M) -> joints (25, 3, M)."""
    out = np.empty((NUM_JOINTS, 3, root.shape[1]))
    world: dict[int, list[list[np.ndarray]]] = {}
    for j in ORDER:
        p = PARENTS[j]
        if p < 0:
            out[j] = root
            world[j] = rot(j)
            continue
        w = world[p]
        off = REST_DIRECTIONS[j - 1]
        for i in range(3):
            acc = out[p, i].copy()
            for k in range(3):
                if off[k] != 0.0:
                    acc += w[i][k] * (off[k] * lengths[j - 1])
            out[j, i] = acc
        if j in _HAS_CHILD:
            r = rot(j)
            world[j] = [[w[i][0] * r[0][col] + w[i][1] * r[1][col] + w[i][2] * r[2][col]
                         for col in range(3)] for i in range(3)]
    return out


def _flat(a: np.ndarray, lead: tuple[int, ...], tail: tuple[int, ...]) -> np.ndarray:
    """Broadcast to lead + tail, flatten the lead, move it last (contiguous)."""
    a = np.broadcast_to(a, lead + tail).reshape((-1,) + tail)
    return np.ascontiguousarray(np.moveaxis(a, 0, -1))


def _unflat(joints: np.ndarray, lead: tuple[int, ...]) -> np.ndarray:
    return np.ascontiguousarray(np.moveaxis(joints, -1, 0)).reshape(lead + (NUM_JOINTS, 3))


def _check_shapes(root_pos, lengths) -> None:
    if root_pos.shape[-1:] != (3,) or lengths.shape[-1:] != (NUM_BONES,):
        raise ValueError(f"root_pos (..., 3) / lengths (..., 24), got {root_pos.shape} / {lengths.shape}")


def forward_kinematics(local_rot, root_pos, lengths) -> np.ndarray:
    """Joint positions (..., 25, 3) from per-joint local rotations (..., 25, 3, 3), the root
    position (..., 3) and bone lengths (..., 24) (in `BONES` order). Leading dimensions
    broadcast against each other; computed in float64."""
    local_rot = np.asarray(local_rot, dtype=np.float64)
    root_pos = np.asarray(root_pos, dtype=np.float64)
    lengths = np.asarray(lengths, dtype=np.float64)
    if local_rot.shape[-3:] != (NUM_JOINTS, 3, 3):
        raise ValueError(f"local_rot must end in (25, 3, 3), got {local_rot.shape}")
    _check_shapes(root_pos, lengths)
    lead = np.broadcast_shapes(local_rot.shape[:-3], root_pos.shape[:-1], lengths.shape[:-1])
    rot = _flat(local_rot, lead, (NUM_JOINTS, 3, 3))
    joints = _fk(lambda j: [[rot[j, i, k] for k in range(3)] for i in range(3)],
                 _flat(lengths, lead, (NUM_BONES,)), _flat(root_pos, lead, (3,)))
    return _unflat(joints, lead)


def forward_kinematics_rotvec(rotvec, root_pos, lengths) -> np.ndarray:
    """`forward_kinematics` with the local rotations given as rotation vectors (..., 25, 3);
    faster (the matrices are formed joint by joint, never stored)."""
    rotvec = np.asarray(rotvec, dtype=np.float64)
    root_pos = np.asarray(root_pos, dtype=np.float64)
    lengths = np.asarray(lengths, dtype=np.float64)
    if rotvec.shape[-2:] != (NUM_JOINTS, 3):
        raise ValueError(f"rotvec must end in (25, 3), got {rotvec.shape}")
    _check_shapes(root_pos, lengths)
    lead = np.broadcast_shapes(rotvec.shape[:-2], root_pos.shape[:-1], lengths.shape[:-1])
    rv = _flat(rotvec, lead, (NUM_JOINTS, 3))
    joints = _fk(lambda j: _rodrigues(rv[j, 0], rv[j, 1], rv[j, 2]),
                 _flat(lengths, lead, (NUM_BONES,)), _flat(root_pos, lead, (3,)))
    return _unflat(joints, lead)


def bone_lengths(joints) -> np.ndarray:
    """Bone lengths (..., 24) in `BONES` order from joint positions (..., 25, 3)."""
    joints = np.asarray(joints)
    child = np.array([c for c, _ in BONES])
    parent = np.array([p for _, p in BONES])
    return np.linalg.norm(joints[..., child, :] - joints[..., parent, :], axis=-1)


def rest_pose(lengths=None) -> np.ndarray:
    """Joints (25, 3) of the rest pose (body frame, root at the origin)."""
    lengths = REST_LENGTHS if lengths is None else lengths
    return forward_kinematics(np.broadcast_to(np.eye(3), (NUM_JOINTS, 3, 3)), np.zeros(3), lengths)
