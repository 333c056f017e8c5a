import pytest
import torch
from diffusers.models.unets.unet_2d_blocks import CrossAttnDownBlock2D, DownBlock2D
from safetensors.torch import load_file

from shared import UserError
from shared.t2i import backbone as bb
from shared.t2i.cache import open_cache
from shared.t2i.sampling import ddim_sample
from shared.t2i.scenes import vocabulary

from .conftest import tiny_backbone


@pytest.fixture(scope="module")
def backbone():
    return tiny_backbone().eval()


def test_encode_prompts_and_decode(backbone):
    cond = backbone.encode_prompts(["a red circle", "a large blue square at the top"])
    assert cond.shape == (2, 16, 16) and not cond.requires_grad
    assert backbone.latent_shape == (3, 8, 8)
    latents = torch.tensor([-2.0, -1.0, 0.0, 0.5, 1.0, 3.0]).view(1, 1, 1, 6).expand(2, 3, 8, 6)
    decoded = backbone.decode(latents)
    torch.testing.assert_close(decoded[0, 0, 0], torch.tensor([0.0, 0.0, 0.5, 0.75, 1.0, 1.0]))


def test_encode_images_inverts_decode(backbone):
    images = torch.rand(2, 3, 8, 8)
    latents = backbone.encode_images(images)
    assert latents.min() >= -1 and latents.max() <= 1 and not latents.requires_grad
    torch.testing.assert_close(backbone.decode(latents), images)


def test_unet_cross_attends_only_at_the_lowest_resolution(backbone):
    unet = backbone.unet
    assert [type(b) for b in unet.down_blocks] == [DownBlock2D, CrossAttnDownBlock2D]
    assert unet.config.cross_attention_dim == 16 and unet.config.in_channels == 3
    assert unet.config.norm_num_groups == 8 and list(unet.config.attention_head_dim) == [1, 2]


def test_cross_attention_can_reach_every_resolution_and_the_default_is_unchanged():
    kw = dict(layers_per_block=1, attention_head_dim=8, cross_attention_dim=16)
    torch.manual_seed(0)
    default = bb.build_unet(8, [8, 16, 16], **kw)
    torch.manual_seed(0)
    one = bb.build_unet(8, [8, 16, 16], cross_attention_levels=1, **kw)
    assert all(torch.equal(a, b) for a, b in zip(default.state_dict().values(), one.state_dict().values()))
    full = bb.build_unet(8, [8, 16, 16], cross_attention_levels=3, **kw)
    assert [type(b) for b in full.down_blocks] == [CrossAttnDownBlock2D] * 3
    assert [type(b).__name__ for b in full.up_blocks] == ["CrossAttnUpBlock2D"] * 3
    two = bb.build_unet(8, [8, 16, 16], cross_attention_levels=2, **kw)
    assert [type(b) for b in two.down_blocks] == [DownBlock2D, CrossAttnDownBlock2D, CrossAttnDownBlock2D]
    assert [type(b).__name__ for b in two.up_blocks] == ["CrossAttnUpBlock2D"] * 2 + ["UpBlock2D"]
    for bad in (0, 4):
        with pytest.raises(ValueError, match="cross_attention_levels"):
            bb.build_unet(8, [8, 16, 16], cross_attention_levels=bad, **kw)


def test_scheduler_is_trailing_epsilon_ddim(backbone):
    config = backbone.scheduler.config
    assert config.timestep_spacing == "trailing" and config.prediction_type == "epsilon"
    assert not config.clip_sample and not config.set_alpha_to_one
    assert (config.beta_schedule, config.beta_start, config.beta_end) == ("scaled_linear", 0.00085, 0.012)
    grid16 = bb.trailing_timesteps(backbone.scheduler, 16)
    assert bb.trailing_timesteps(backbone.scheduler, 1) == [999]
    assert bb.trailing_timesteps(backbone.scheduler, 4) == [999, 749, 499, 249]
    assert set(bb.trailing_timesteps(backbone.scheduler, 8)) <= set(grid16)


def test_sample_shapes_range_and_determinism(backbone):
    images = ddim_sample(backbone, ["a red circle"] * 3, 2, torch.Generator().manual_seed(1))
    again = ddim_sample(backbone, ["a red circle"] * 3, 2, torch.Generator().manual_seed(1))
    assert images.shape == (3, 3, 8, 8) and images.min() >= 0 and images.max() <= 1
    assert torch.equal(images, again)
    noisy = ddim_sample(backbone, ["a red circle"] * 3, 2, torch.Generator().manual_seed(1), eta=1.0)
    assert not torch.equal(images, noisy)
    assert backbone.scheduler.num_inference_steps is None  # the backbone's scheduler is untouched


def _read(directory):
    return bb.load_pixel_backbone(directory, lambda words: tiny_backbone(seed=5, words=words))


def test_save_and_load_round_trip(backbone, tmp_path):
    bb.save_pixel_backbone(backbone, tmp_path)
    assert set(load_file(str(tmp_path / bb.WEIGHTS))) == set(bb.pixel_weights(backbone))
    loaded = _read(tmp_path)
    for name, value in bb.pixel_weights(backbone).items():
        assert torch.equal(bb.pixel_weights(loaded)[name], value), name
    assert loaded.tokenizer.convert_ids_to_tokens(list(range(len(loaded.tokenizer)))) == \
        backbone.tokenizer.convert_ids_to_tokens(list(range(len(backbone.tokenizer))))


def test_a_saved_backbone_that_does_not_fit_is_a_one_line_error(backbone, tmp_path):
    from shared.t2i.cache import write_manifest

    bb.save_pixel_backbone(tiny_backbone(words=[*vocabulary(), "extra"]), tmp_path)
    write_manifest(tmp_path)
    with pytest.raises(UserError, match="does not fit the config") as err:
        open_cache(tmp_path, "test model", lambda d: bb.load_pixel_backbone(d, lambda w: tiny_backbone(words=vocabulary())))
    assert "\n" not in str(err.value) and "delete" in str(err.value)
    (tmp_path / bb.VOCAB).write_text('["a", "b"]\n')
    write_manifest(tmp_path)
    with pytest.raises(UserError, match="unexpected vocabulary"):
        open_cache(tmp_path, "test model", _read)
