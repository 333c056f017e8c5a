"""Similarity, FAE, CIR, detection scores and F1 on hand-made inputs."""

import pytest
import torch

from papers.copyright_shield.detection import (
    calibrated_threshold,
    element_scores,
    f1_score,
    shift_errors,
)
from papers.copyright_shield.similarity import (
    build_similarity,
    first_attack_epoch,
    infringement_rate,
)


def test_fae_is_the_first_epoch_with_any_generation_above_threshold():
    epochs = [0.5, 1.0, 1.5, 2.0]
    sims = [[0.1, 0.2, 0.3], [0.4, 0.5, 0.45], [0.2, 0.51, 0.0], [0.9, 0.9, 0.9]]
    assert first_attack_epoch(epochs, sims) == 1.5  # 0.5 itself is not above 0.5
    assert first_attack_epoch(epochs, sims, threshold=0.35) == 1.0
    assert first_attack_epoch(epochs, [[0.0]] * 4) is None


def test_cir_is_the_fraction_above_threshold():
    assert infringement_rate([0.1, 0.6, 0.5, 0.7]) == 0.5
    assert infringement_rate([0.51] * 3 + [0.49]) == 0.75
    assert infringement_rate([]) == 0.0


def test_f1_on_a_hand_made_detection():
    flagged = torch.tensor([1, 1, 1, 0, 0, 1, 0, 0], dtype=torch.bool)
    positive = torch.tensor([1, 1, 0, 1, 0, 0, 0, 0], dtype=torch.bool)
    out = f1_score(flagged, positive)  # tp 2, flagged 4, positives 3
    assert out["precision"] == pytest.approx(0.5)
    assert out["recall"] == pytest.approx(2 / 3)
    assert out["f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert f1_score(torch.zeros(4, dtype=torch.bool), positive[:4])["f1"] == 0.0


def test_similarity_of_an_image_to_itself_is_one_and_stretched():
    sim = build_similarity("pixel-cosine")
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(2, 3, 16, 16, generator=g), torch.rand(2, 3, 16, 16, generator=g)
    assert torch.allclose(sim(a, a), torch.ones(2), atol=1e-5)
    assert torch.allclose(sim(a, 0.5 * a + 0.2), torch.ones(2), atol=1e-5)  # brightness / contrast invariant
    assert torch.allclose(sim(a, -a + 1), -torch.ones(2) * 3, atol=1e-5)  # cos −1 → 2·(−1) − 1
    assert torch.allclose(sim.matrix(a, b).diagonal(), sim(a, b))


def test_feature_and_spatial_scores_on_a_hand_made_element():
    target = torch.zeros(3, 8, 8)
    target[0, 2:4, 2:4] = 1.0  # a red 2×2 square
    masks = torch.zeros(1, 8, 8)
    masks[0, 2:4, 2:4] = 1.0
    moved = torch.zeros(3, 8, 8)
    moved[0, 4:6, 5:7] = 1.0  # the same square 2 down, 3 right
    half = target.clone() * 0.5 + 0.25  # every masked pixel off by 0.25 on R, G and B (RMS 0.25)
    images = torch.stack([target, moved, half])
    errors = shift_errors(images, target, masks, max_shift=3)
    assert errors.shape == (3, 1, 49)
    assert errors[0, 0, 24] == 0 and errors[1, 0, (3 + 2) * 7 + (3 + 3)] == 0
    assert errors[2, 0, 24] == pytest.approx(0.0625)
    feature, spatial = element_scores(images, target, masks, feature_scale=0.25, temperature=0.02, max_shift=3)
    assert feature[0, 0] == 1.0 and feature[1, 0] == pytest.approx(2 ** (-1 / 3 / 0.0625), rel=1e-5)
    assert feature[2, 0] == pytest.approx(0.5, rel=1e-5)  # RMS error = feature_scale halves it
    assert spatial[0, 0] > 0.9 and spatial[1, 0] < 0.01


def test_threshold_is_the_quantile_of_the_held_out_scores():
    scores = torch.arange(101, dtype=torch.float32) / 100
    assert calibrated_threshold(scores, 0.9) == pytest.approx(0.9)


def test_calibration_separates_clean_images_from_near_copies_and_flags_a_bad_threshold():
    import numpy as np

    from papers.copyright_shield.attack import make_targets
    from papers.copyright_shield.scenes import random_scene, render, to_tensor
    from papers.copyright_shield.similarity import calibration

    targets = make_targets(3, 3, 16, seed=0)
    refs = torch.stack([t.image for t in targets])
    avoid = {e.kind for t in targets for e in t.scene.elements}
    rng = np.random.default_rng(0)
    clean = to_tensor([render(random_scene(rng, 1, 3, avoid), 16)[0] for _ in range(60)])
    sim = build_similarity("pixel-cosine")
    good = calibration(sim, clean, refs, 0.5)
    assert good["clean_max"] < 0.5 < good["copy_min"] and good["separated"]
    assert good["clean_q99"] <= good["clean_max"] and good["copy_q01"] >= good["copy_min"]
    assert not calibration(sim, clean, refs, 0.99)["separated"]  # above the near-copies
    assert not calibration(sim, clean, refs, -0.99)["separated"]  # below the clean images


def test_calibration_precondition_reads_the_recorded_table():
    from papers.copyright_shield.claims import CALIBRATION_TABLE, calibrated

    columns = ["similarity", "clean q99", "clean max", "near-copy q01", "near-copy min", "threshold", "separated"]
    ok = [{"title": CALIBRATION_TABLE, "columns": columns, "rows": [["pixel-cosine", 0.1, 0.2, 0.7, 0.6, 0.5, True]]}]
    bad = [{"title": CALIBRATION_TABLE, "columns": columns, "rows": [["pixel-cosine", 0.6, 0.7, 0.7, 0.6, 0.5, False]]}]
    assert calibrated(ok)[0]["ok"] and not calibrated(bad)[0]["ok"]
    assert calibrated([]) == []


def test_skip_unet_is_sqrt_abar_f_plus_sqrt_one_minus_abar_x():
    from papers.copyright_shield.model import SkipUNet, UNetOutput

    class Constant(torch.nn.Module):
        config = {"sample_size": 4}

        def forward(self, x, t, cond):
            return UNetOutput(torch.full_like(x, 2.0))

    abar = torch.linspace(0.99, 0.01, 1000)
    net = SkipUNet(Constant(), abar)
    x = torch.randn(2, 3, 4, 4)
    t = torch.tensor([0, 999])
    out = net(x, t, None).sample
    for i in range(2):
        a = abar[t[i]]
        assert torch.allclose(out[i], a.sqrt() * 2.0 + (1 - a).sqrt() * x[i])
    scalar = net(x, torch.tensor(500), None).sample  # the sampler's 0-d timestep
    assert torch.allclose(scalar, abar[500].sqrt() * 2.0 + (1 - abar[500]).sqrt() * x)
    assert list(net.state_dict()) == []  # ᾱ is not a weight
