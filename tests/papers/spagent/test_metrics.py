"""Each metric against a hand-computed case."""

import numpy as np
import pytest

from papers.spagent import metrics, scenes


def _square_video(frames=6, step=2, size=32):
    out = np.full((frames, size, size, 3), 40, np.uint8)
    for i in range(frames):
        out[i, 12:20, 4 + step * i:12 + step * i] = 220
    return out


def test_temporal_flickering_exact():
    v = np.zeros((3, 4, 4, 3), np.uint8)
    v[1] = 51  # |f0 - f1| = 51, |f1 - f2| = 51
    assert metrics.temporal_flickering(v) == pytest.approx((255 - 51) / 255)
    v[2] = 51  # pairs: 51 and 0
    assert metrics.temporal_flickering(v) == pytest.approx((255 - 25.5) / 255)


def test_constant_video_has_zero_dynamics_and_perfect_flicker_and_smoothness():
    v = np.repeat(_square_video()[:1], 6, axis=0)
    assert metrics.temporal_flickering(v) == 1.0
    assert metrics.flow_magnitude(v) == pytest.approx(0.0, abs=1e-6)
    assert metrics.dynamic(v, 2.0) == pytest.approx(0.0, abs=1e-6)
    assert not metrics.dynamic_degree(v, 0.5)
    assert metrics.motion_smoothness(v) == 1.0


def test_moving_square_is_dynamic():
    v = _square_video()
    assert metrics.flow_magnitude(v) > 0.5
    assert metrics.dynamic_degree(v, 0.5)


def test_shuffled_video_is_less_smooth():
    v = scenes.render(scenes.Scene("cat", "red", "beach", "swim"), 32, 8)
    shuffled = v[[0, 5, 2, 7, 1, 4, 6, 3]]
    assert metrics.motion_smoothness(shuffled) < metrics.motion_smoothness(v)


def test_motion_smoothness_exact():
    v = np.zeros((3, 2, 2, 3))
    v[1] = 30  # interpolating frame 1 from 0 and 0 misses by 30
    assert metrics.motion_smoothness(v) == pytest.approx((255 - 30) / 255)
    v[2] = 60  # linear in time: interpolation is exact
    assert metrics.motion_smoothness(v) == 1.0


def test_consistency_formula_by_hand():
    phi = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    c = np.sqrt(0.5)
    # i=1: ½(cos(φ1,φ0) + cos(φ1,φ0)) = c; i=2: ½(cos(φ2,φ1) + max(0, cos(φ2,φ0))) = ½(c + 0)
    assert metrics.consistency(phi) == pytest.approx((c + 0.5 * c) / 2)
    assert metrics.consistency(np.array([[1.0, 0.0], [-1.0, 0.0]])) == 0.0  # negative cosines clip at 0


def test_softmax_alignment_by_hand():
    frames = np.array([[1.0, 0.0]])
    captions = np.array([[1.0, 0.0], [0.0, 1.0]])
    p = np.exp(2.0) / (np.exp(2.0) + np.exp(0.0))
    assert metrics.softmax_alignment(frames, captions, 0, scale=2.0) == pytest.approx(p)
    assert metrics.softmax_alignment(frames, captions, 1, scale=2.0) == pytest.approx(1 - p)


def test_preservation_counts_background_pixels_left_alone():
    before = scenes.render(scenes.Scene("square", "red", "night"), 32, 1)[0]
    after = before.copy()
    assert metrics.preservation(before, after) == 1.0
    mask, _ = scenes.segment(before)
    bg = np.argwhere(~mask)[:10]
    after[bg[:, 0], bg[:, 1]] = 255
    assert metrics.preservation(before, after) == pytest.approx(1 - 10 / (~mask).sum())


def test_weighted_sum():
    assert metrics.weighted({"a": 1.0, "b": 0.0}, {"a": 3, "b": 1, "c": 5}) == pytest.approx(0.75)
