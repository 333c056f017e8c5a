import json
import shutil

import pytest
import torch
from diffusers.models.unets.unet_2d_blocks import CrossAttnDownBlock2D, DownBlock2D

from papers.sdpo import base
from papers.sdpo.config import SDPOExperimentConfig
from papers.sdpo.text import build_tokenizer, tokenize
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


def test_encode_prompts_and_decode(built):
    cfg, backbone = built
    cond = backbone.encode_prompts(["a red circle", "a large blue square at the top"])
    assert cond.shape == (2, cfg.text.max_length, cfg.text.hidden) and not cond.requires_grad
    assert backbone.latent_shape == (3, 8, 8)
    latents = torch.tensor([-2.0, -1.0, 0.0, 0.5, 1.0, 3.0]).view(1, 1, 1, 6).expand(2, 3, 8, 6)
    decoded = backbone.decode(latents)
    torch.testing.assert_close(decoded[0, 0, 0], torch.tensor([0.0, 0.0, 0.5, 0.75, 1.0, 1.0]))


def test_unet_cross_attends_only_at_the_lowest_resolution(built):
    _, backbone = built
    unet = backbone.unet
    assert [type(b) for b in unet.down_blocks] == [DownBlock2D, CrossAttnDownBlock2D]
    assert unet.config.cross_attention_dim == 16 and unet.config.in_channels == 3
    assert not any(p.requires_grad for p in backbone.parameters())


def test_scheduler_is_trailing_epsilon_ddim(built):
    _, backbone = built
    config = backbone.scheduler.config
    assert config.timestep_spacing == "trailing" and config.prediction_type == "epsilon"
    assert not config.clip_sample and not config.set_alpha_to_one
    grid16 = base.trailing_timesteps(backbone.scheduler, 16)
    assert base.trailing_timesteps(backbone.scheduler, 1) == [999]
    assert base.trailing_timesteps(backbone.scheduler, 4) == [999, 749, 499, 249]
    assert set(base.trailing_timesteps(backbone.scheduler, 8)) <= set(grid16)


def test_sample_shapes_range_and_determinism(built):
    _, backbone = built
    images = base.sample(backbone, ["a red circle"] * 3, 2, torch.Generator().manual_seed(1))
    again = base.sample(backbone, ["a red circle"] * 3, 2, torch.Generator().manual_seed(1))
    assert images.shape == (3, 3, 8, 8) and images.min() >= 0 and images.max() <= 1
    assert torch.equal(images, again)
    noisy = base.sample(backbone, ["a red circle"] * 3, 2, torch.Generator().manual_seed(1), eta=1.0)
    assert not torch.equal(images, noisy)


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


def test_tokenizer_ids_padding_truncation_and_unknown_words():
    cfg = SDPOExperimentConfig().text
    tokenizer = build_tokenizer(cfg)
    ids = tokenize(tokenizer, ["A red circle", "a red zebra", "a " * 40])
    assert ids.shape == (3, cfg.max_length)
    words = tokenizer.convert_ids_to_tokens(ids[0, :6].tolist())
    assert words == ["[BOS]", "a", "red", "circle", "[EOS]", "[PAD]"]
    assert ids[0, 5:].eq(0).all()  # [PAD] is id 0
    assert tokenizer.convert_ids_to_tokens(ids[1, 3].item()) == "[UNK]"
    assert ids[2, -1].item() == tokenizer.eos_token_id  # truncation keeps [EOS]
