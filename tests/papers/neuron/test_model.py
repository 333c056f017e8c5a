"""Neuron's head: active prototypes per round, memory prefixes, logits = scaled mean cosine,
the loss, the ablations, GZSL calibration and ZSL fusion; heads train deterministically."""

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from papers.neuron import evaluate
from papers.neuron.config import NeuronExperimentConfig
from papers.neuron.heads import fit_head, predict
from papers.neuron.model import SMIE, DeViSE, Neuron, class_logits, compression_mask

B, C, T, V, K, D = 3, 8, 16, 25, 6, 12


def _inputs(seed=0):
    gen = torch.Generator().manual_seed(seed)
    feats = torch.randn(B, C, T, V, generator=gen)
    text = F.normalize(torch.randn(K, 6, 10, D, generator=gen), dim=-1)
    return feats, text


def test_active_prototypes_per_round_are_60_40_20_of_80():
    torch.manual_seed(0)
    model = Neuron(C, D, prototypes=80, active=(60, 40, 20), hidden=16)
    feats, text = _inputs()
    model(feats, text)
    assert [a.unique().tolist() for a in model.last_active] == [[60], [40], [20]]
    assert model.last_active[0].shape == (B, V)


def test_compression_mask_keeps_each_joints_top_scores():
    scores = torch.tensor([[[0.1, 0.9, 0.5, 0.3]]])  # one sample, one joint, 4 prototypes
    assert compression_mask(scores, 2).tolist() == [[[False, True, True, False]]]


def test_temporal_memory_attends_over_growing_prefixes():
    model = Neuron(C, D, hidden=16, prefixes=(5, 10, 16))
    feats, text = _inputs()
    model(feats, text)
    assert model.last_prefix == [5, 10, 16]
    # the first round cannot see steps 5..15: changing them leaves round-1 temporal logits alone
    late = feats.clone()
    late[:, :, 5:] += 3.0
    a, b = model(feats, text)["temporal"], model(late, text)["temporal"]
    assert torch.allclose(a[0], b[0]) and not torch.allclose(a[2], b[2])


def test_logits_are_the_scaled_mean_cosine():
    gen = torch.Generator().manual_seed(1)
    z = F.normalize(torch.randn(2, D, generator=gen), dim=-1)
    text = F.normalize(torch.randn(4, 10, D, generator=gen), dim=-1)
    got = class_logits(z, text, 0.1)
    for b in range(2):
        for c in range(4):
            expected = 0.1 * sum(float(z[b] @ text[c, k]) for k in range(10)) / 10
            assert got[b, c].item() == pytest.approx(expected, abs=1e-6)


def test_rounds_align_to_their_text_levels():
    model = Neuron(C, D, hidden=16)
    feats, text = _inputs()
    out = model(feats, text)
    assert len(out["spatial"]) == len(out["temporal"]) == 3
    swapped = text.clone()
    swapped[:, 0] = text[:, 2]  # change only the coarse level: only spatial round 1 moves
    out2 = model(feats, swapped)
    assert not torch.allclose(out["spatial"][0], out2["spatial"][0])
    assert all(torch.allclose(out["spatial"][r], out2["spatial"][r]) for r in (1, 2))
    assert all(torch.allclose(out["temporal"][r], out2["temporal"][r]) for r in range(3))


def test_loss_is_half_the_branch_mean_cross_entropies():
    model = Neuron(C, D, hidden=16)
    feats, text = _inputs()
    labels = torch.tensor([0, 3, 5])
    out = model(feats, text)
    spatial = sum(F.cross_entropy(lg, labels) for lg in out["spatial"]) / 3
    temporal = sum(F.cross_entropy(lg, labels) for lg in out["temporal"]) / 3
    assert model.loss(out, labels).item() == pytest.approx(0.5 * (spatial + temporal).item(), rel=1e-6)


@pytest.mark.parametrize("ablation", ["spatial_only", "temporal_only", "no_gating"])
def test_branch_weight_is_the_step_each_branch_gets_from_the_loss(ablation):
    model = Neuron(C, D, hidden=16)
    feats, text = _inputs()
    labels = torch.tensor([0, 3, 5])
    out = model(feats, text)
    kept = "spatial" if ablation != "temporal_only" else "temporal"
    variant = out if ablation == "no_gating" else {b: (out[b] if b == kept else []) for b in out}

    def grad(o):
        logits = o[kept][0]
        return torch.autograd.grad(model.loss(o, labels), logits, retain_graph=True)[0]

    ratio = grad(variant).norm() / grad(out).norm()
    assert ratio.item() == pytest.approx(Neuron.branch_weight(ablation) / Neuron.branch_weight(""))
    assert Neuron.branch_weight("") == 0.5


@pytest.mark.parametrize("ablation,spatial,temporal", [
    ("spatial_only", 3, 0), ("temporal_only", 0, 3), ("no_compression", 3, 3), ("no_gating", 3, 3),
    ("single_text", 3, 3)])
def test_ablations(ablation, spatial, temporal):
    model = Neuron(C, D, hidden=16, ablation=ablation)
    feats, text = _inputs()
    out = model(feats, text)
    assert (len(out["spatial"]), len(out["temporal"])) == (spatial, temporal)
    if ablation == "no_compression":
        assert [a.unique().tolist() for a in model.last_active] == [[80]] * 3
    if ablation == "single_text":
        swapped = text.clone()
        swapped[:, 0] = -text[:, 0]  # coarse text is no longer used
        assert torch.allclose(model(feats, swapped)["spatial"][0], out["spatial"][0])


def test_baselines_produce_class_scores_and_a_finite_loss():
    feats, text = _inputs()
    labels = torch.tensor([0, 1, 2])
    for head in (DeViSE(C, D), SMIE(C, D, hidden=16)):
        out = head(feats, text)
        assert head.final(out)["global"].shape == (B, K)
        assert math.isfinite(head.loss(out, labels).item())


def test_gzsl_calibration_moves_predictions_from_seen_to_unseen():
    gen = torch.Generator().manual_seed(0)
    probs = torch.rand(200, 10, generator=gen).softmax(-1)
    labels = torch.randint(10, (200,), generator=gen)
    seen, unseen = list(range(7)), [7, 8, 9]
    counts = []
    for gamma in evaluate.gamma_grid(probs, seen, unseen, 21):
        calibrated = probs.clone()
        calibrated[:, seen] -= gamma
        counts.append(int(torch.isin(calibrated.argmax(-1), torch.tensor(unseen)).sum()))
    assert counts == sorted(counts) and counts[0] < counts[-1] == 200
    low = evaluate.gzsl_accuracies(probs, labels, seen, unseen, 0.0)
    high = evaluate.gzsl_accuracies(probs, labels, seen, unseen, 1.0)
    assert high["S"] == 0.0 and high["U"] >= low["U"]


def test_zsl_oracle_or_fusion_is_at_least_every_branch():
    final = {"spatial": torch.tensor([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0]]),
             "temporal": torch.tensor([[0.0, 3.0], [0.0, 2.0], [0.0, 3.0]])}
    labels = torch.tensor([5, 6, 6])  # unseen classes 5 and 6 are columns 0 and 1 of the logits
    full = {k: torch.cat([torch.zeros(3, 5), v], 1) for k, v in final.items()}
    res = evaluate.zsl(full, labels, [5, 6])
    assert res["spatial"] == pytest.approx(2 / 3) and res["temporal"] == pytest.approx(2 / 3)
    # sample 0: spatial right (2 vs 0), temporal wrong and more confident (3 vs 0): the OR
    # oracle counts it, the summed softmax (0.93 vs 1.07) does not
    assert res["oracle_or"] == 1.0 and res["fused"] == pytest.approx(2 / 3)


def test_head_training_is_deterministic_for_a_seed():
    cfg = NeuronExperimentConfig()
    cfg.train = SimpleNamespace(**{**vars(cfg.train), "epochs": 2, "batch_size": 8})
    cfg.neuron.hidden = 16
    gen = torch.Generator().manual_seed(0)
    feats = torch.randn(24, C, T, V, generator=gen).half()
    labels = torch.arange(24) % 4
    text = F.normalize(torch.randn(6, 6, 10, D, generator=gen), dim=-1)
    runs = [predict(fit_head(cfg, "neuron", "", feats, labels, [0, 1, 2, 3], text, seed), feats, text)
            for seed in (0, 0, 1)]
    assert torch.equal(runs[0]["spatial"], runs[1]["spatial"])
    assert not torch.equal(runs[0]["spatial"], runs[2]["spatial"])


def test_fit_head_records_its_loss_curve_and_steps():
    cfg = NeuronExperimentConfig()
    cfg.train = SimpleNamespace(**{**vars(cfg.train), "epochs": 3, "batch_size": 10, "milestones": [2]})
    cfg.neuron.hidden, cfg.neuron.logit_scale = 16, 10.0
    gen = torch.Generator().manual_seed(0)
    labels = torch.arange(24) % 4
    feats = torch.randn(24, C, T, V, generator=gen) + 2.0 * F.one_hot(labels, C).float()[:, :, None, None]
    text = F.normalize(torch.randn(6, 6, 10, D, generator=gen), dim=-1)
    model = fit_head(cfg, "devise", "", feats, labels, [0, 1, 2, 3], text, 0)
    assert model.history["steps"] == 3 * 3  # ceil(24 / 10) batches per epoch
    assert len(model.history["loss"]) == 3 and all(math.isfinite(v) for v in model.history["loss"])
    assert model.history["loss"][-1] < model.history["loss"][0]  # a separable toy problem: it learns
