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
    assert not torch.equal(other.unet.conv_in.weight, first.unet.conv_in.weight)


def test_teacher_steps_must_contain_the_distilled_grids(built, tmp_path):
    cfg, backbone = built
    bad = tiny_config(tmp_path)
    bad.base.distill_teacher_steps = 10
    with pytest.raises(UserError, match="distill_teacher_steps"):
        base.teacher_trajectories(backbone, bad, torch.Generator().manual_seed(0))
