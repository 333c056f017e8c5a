import json
import shutil

import pytest
import torch

from papers.sdpo import base
from papers.sdpo.config import SDPOExperimentConfig
from shared import UserError


def tiny_config(data_dir, seed: int = 0) -> SDPOExperimentConfig:
    cfg = SDPOExperimentConfig(data_dir=str(data_dir))
    cfg.data.image_size, cfg.data.images = 8, 64
    cfg.text.hidden, cfg.text.layers, cfg.text.heads = 16, 1, 2
    b = cfg.base
    b.block_out_channels, b.seed, b.threads = [8, 16], seed, 1
    b.pretrain_steps, b.pretrain_batch = 3, 4
    b.distill_samples, b.distill_steps, b.distill_batch = 8, 3, 4
    return cfg


def weights(backbone) -> dict[str, torch.Tensor]:
    return {**{f"u.{k}": v for k, v in backbone.unet.state_dict().items()},
            **{f"t.{k}": v for k, v in backbone.text_encoder.state_dict().items()}}


def assert_same(a, b):
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Two threads on a busy two-core machine spin-wait each other: 20x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def built(one_thread, tmp_path_factory):
    cfg = tiny_config(tmp_path_factory.mktemp("sdpo-base"))
    return cfg, base.load_base(cfg)


def test_first_load_writes_a_checksummed_cache(built):
    cfg, _ = built
    path = base.cache_dir(cfg)
    assert path.parent.name == "sdpo-base"
    names = {p.name for p in path.iterdir()}
    assert names == {"weights.safetensors", "vocab.json", "build.json", "manifest.json"}
    manifest = json.loads((path / "manifest.json").read_text())
    assert set(manifest["files"]) == {"weights.safetensors", "vocab.json", "build.json"}
    assert json.loads((path / "vocab.json").read_text())[:4] == ["[PAD]", "[UNK]", "[BOS]", "[EOS]"]
    assert not list(path.parent.glob(".*.tmp"))


def test_second_load_reads_the_cache_without_training(built, monkeypatch):
    cfg, first = built

    def no_build(*args, **kwargs):
        raise AssertionError("rebuilt instead of loading the cache")

    monkeypatch.setattr(base, "build_base", no_build)
    assert_same(first, base.load_base(cfg))


def test_cache_key_follows_the_config(built):
    cfg, _ = built
    other = tiny_config(cfg.data_dir)
    other.base.distill_steps += 1
    assert base.cache_dir(other) != base.cache_dir(cfg)
    other = tiny_config(cfg.data_dir)
    other.policy.lora_rank = 8  # not part of the base model
    assert base.cache_dir(other) == base.cache_dir(cfg)


@pytest.mark.parametrize("damage", ["flip", "truncate", "no-manifest"])
def test_corrupt_cache_is_a_one_line_user_error(built, tmp_path, damage):
    cfg, _ = built
    copy_cfg = tiny_config(tmp_path)
    path = base.cache_dir(copy_cfg)
    shutil.copytree(base.cache_dir(cfg), path)
    weights_file = path / "weights.safetensors"
    blob = bytearray(weights_file.read_bytes())
    if damage == "flip":
        blob[-10] ^= 0xFF
        weights_file.write_bytes(bytes(blob))
    elif damage == "truncate":
        weights_file.write_bytes(bytes(blob[: len(blob) // 2]))
    else:
        (path / "manifest.json").unlink()
    with pytest.raises(UserError) as err:
        base.load_base(copy_cfg)
    message = str(err.value)
    assert "\n" not in message and str(path) in message and "delete" in message


def test_the_loaded_base_is_frozen_and_sized_by_the_config(built):
    cfg, backbone = built
    assert not any(p.requires_grad for p in backbone.parameters())
    assert not backbone.unet.training and not backbone.text_encoder.training
    assert backbone.latent_shape == (3, 8, 8)
    assert backbone.unet.config.cross_attention_dim == cfg.text.hidden == 16
    assert backbone.encode_prompts(["a red circle"]).shape == (1, cfg.text.max_length, cfg.text.hidden)


def test_builds_are_deterministic_and_leave_the_global_rng_alone(built):
    cfg, cached = built
    state = torch.get_rng_state()
    first, stats = base.build_base(cfg)
    assert torch.equal(torch.get_rng_state(), state)
    assert_same(first, cached)  # the cache holds exactly what a fresh build gives
    assert stats["pretrain_seconds"] > 0
    other, _ = base.build_base(tiny_config(cfg.data_dir, seed=1))
    assert not torch.equal(next(other.unet.parameters()), next(first.unet.parameters()))


def test_teacher_steps_must_contain_the_distilled_grids(built, tmp_path):
    cfg, backbone = built
    bad = tiny_config(tmp_path)
    bad.base.distill_teacher_steps = 10
    with pytest.raises(UserError, match="distill_teacher_steps"):
        base.teacher_trajectories(backbone, bad, torch.Generator().manual_seed(0))


def test_v_prediction_wrapper_returns_the_epsilon_of_the_v_it_predicts():
    """ε̂ = √ᾱ v̂ + √(1−ᾱ) x_t, so the DDIM x̂0 of the wrapped UNet is √ᾱ x_t − √(1−ᾱ) v̂
    exactly, and the pre-training loss correction turns the ε-MSE into the v-MSE."""
    from types import SimpleNamespace

    from papers.sdpo.param import VPredictionUNet, v_loss_correction
    from shared.t2i.backbone import build_scheduler

    class Fixed(torch.nn.Module):  # a "UNet" whose output is a fixed v
        def __init__(self, v):
            super().__init__()
            self.v = v

        def forward(self, x, t, cond):
            return SimpleNamespace(sample=self.v.expand_as(x))

    sched = build_scheduler()
    gen = torch.Generator().manual_seed(0)
    x_t, v = torch.randn(3, 3, 4, 4, generator=gen), torch.randn(1, 3, 4, 4, generator=gen)
    t = torch.tensor([999, 500, 0])
    eps = VPredictionUNet(Fixed(v), sched.alphas_cumprod)(x_t, t, None).sample
    abar = sched.alphas_cumprod[t].view(-1, 1, 1, 1)
    x0 = (x_t - (1 - abar).sqrt() * eps) / abar.sqrt()
    torch.testing.assert_close(x0, abar.sqrt() * x_t - (1 - abar).sqrt() * v, rtol=1e-4, atol=1e-4)
    # the loss correction: ε-MSE + correction = v-MSE (v = √ᾱ ε − √(1−ᾱ) x0)
    x_0, noise = torch.randn(3, 3, 4, 4, generator=gen), torch.randn(3, 3, 4, 4, generator=gen)
    x_t = abar.sqrt() * x_0 + (1 - abar).sqrt() * noise
    pred = VPredictionUNet(Fixed(v), sched.alphas_cumprod)(x_t, t, None).sample
    batch = SimpleNamespace(alphas_cumprod=sched.alphas_cumprod, t=t, pred=pred, noise=noise)
    v_true = abar.sqrt() * noise - (1 - abar).sqrt() * x_0
    total = ((pred - noise) ** 2).mean() + v_loss_correction(batch)
    torch.testing.assert_close(total, ((v.expand_as(v_true) - v_true) ** 2).mean(), rtol=1e-4, atol=1e-5)


def test_the_epsilon_base_is_still_available(tmp_path):
    cfg = tiny_config(tmp_path)
    cfg.base.prediction = "epsilon"
    assert type(base.new_backbone(cfg).unet).__name__ == "UNet2DConditionModel"
    cfg.base.prediction = "v_prediction"
    assert type(base.new_backbone(cfg).unet).__name__ == "VPredictionUNet"
