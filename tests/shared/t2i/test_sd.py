import shutil

import pytest
import torch

from shared import UserError
from shared.t2i.sd import load_stable_diffusion, write_tiny_sd
from shared.t2i.training import train_epsilon


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return write_tiny_sd(tmp_path_factory.mktemp("tiny_sd"))


@pytest.fixture
def backbone(tiny_dir):
    return load_stable_diffusion(str(tiny_dir), "cpu")


def test_layout_is_a_diffusers_pipeline(tiny_dir):
    names = {p.name for p in tiny_dir.iterdir()}
    assert {"model_index.json", "unet", "vae", "text_encoder", "tokenizer", "scheduler"} <= names
    assert (tiny_dir / "tokenizer" / "vocab.json").is_file()
    assert (tiny_dir / "tokenizer" / "merges.txt").is_file()


def test_scheduler_is_trailing_ddim_with_the_models_config(backbone):
    config = backbone.scheduler.config
    assert type(backbone.scheduler).__name__ == "DDIMScheduler"
    assert config.timestep_spacing == "trailing"
    assert config.prediction_type == "epsilon"
    assert (config.beta_schedule, config.beta_start, config.beta_end) == ("scaled_linear", 0.00085, 0.012)
    assert config.set_alpha_to_one is False and config.clip_sample is False
    backbone.scheduler.set_timesteps(4)
    assert backbone.scheduler.timesteps.tolist() == [999, 749, 499, 249]


def test_latent_shape(backbone):
    assert backbone.latent_shape == (4, 8, 8)


def test_encode_prompts_shape_and_no_grad(backbone):
    cond = backbone.encode_prompts(["a red cat", "a blue square", "zebra"])
    assert cond.shape == (3, backbone.tokenizer.model_max_length, 32)
    assert not cond.requires_grad


def test_tokenizer_covers_unknown_words_without_unk(backbone):
    tokenizer = backbone.tokenizer
    assert tokenizer.tokenize("a red cat") == ["a</w>", "red</w>", "cat</w>"]
    ids = tokenizer("zebra!").input_ids
    assert tokenizer.unk_token_id not in ids[1:-1]


def test_decode_shape_and_range(backbone):
    images = backbone.decode(torch.randn(2, *backbone.latent_shape) * 3)
    assert images.shape == (2, 3, 16, 16)
    assert images.dtype == torch.float32
    assert images.min() >= 0 and images.max() <= 1
    assert not images.requires_grad


def test_frozen_parts_frozen_and_in_eval(backbone):
    backbone.train()
    assert backbone.unet.training
    for part in (backbone.vae, backbone.text_encoder):
        assert not part.training
        assert not any(p.requires_grad for p in part.parameters())


def test_frozen_parts_take_dtype_unet_stays_float32(tiny_dir):
    backbone = load_stable_diffusion(str(tiny_dir), "cpu", dtype=torch.bfloat16)
    assert backbone.vae.dtype == torch.bfloat16
    assert backbone.text_encoder.dtype == torch.bfloat16
    assert backbone.unet.dtype == torch.float32
    assert backbone.encode_prompts(["a dog"]).dtype == torch.float32
    assert backbone.decode(torch.randn(1, *backbone.latent_shape)).dtype == torch.float32


def test_missing_directory_is_user_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_stable_diffusion(str(tmp_path / "nowhere"), "cpu")


@pytest.mark.parametrize("component", ["vae", "tokenizer", "model_index.json"])
def test_missing_component_is_user_error(tiny_dir, tmp_path, component):
    copy = shutil.copytree(tiny_dir, tmp_path / "sd")
    target = copy / component
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    with pytest.raises(UserError, match=f"lacks {component}") as info:
        load_stable_diffusion(str(copy), "cpu")
    assert "\n" not in str(info.value)


def test_empty_tokenizer_folder_is_user_error(tiny_dir, tmp_path):
    copy = shutil.copytree(tiny_dir, tmp_path / "sd")
    for file in (copy / "tokenizer").iterdir():
        file.unlink()
    with pytest.raises(UserError, match="lacks tokenizer/tokenizer.json"):
        load_stable_diffusion(str(copy), "cpu")


def test_tokenizer_without_its_config_is_user_error(tiny_dir, tmp_path):
    copy = shutil.copytree(tiny_dir, tmp_path / "sd")
    (copy / "tokenizer" / "tokenizer_config.json").unlink()
    with pytest.raises(UserError, match="model_max_length"):
        load_stable_diffusion(str(copy), "cpu")


def test_missing_weights_is_user_error(tiny_dir, tmp_path):
    copy = shutil.copytree(tiny_dir, tmp_path / "sd")
    for weights in (copy / "unet").glob("*.safetensors"):
        weights.unlink()
    with pytest.raises(UserError, match="unet/") as info:
        load_stable_diffusion(str(copy), "cpu")
    assert "\n" not in str(info.value)


def test_encode_images_gives_scaled_vae_latents(backbone):
    images = torch.rand(2, 3, 16, 16)
    latents = backbone.encode_images(images)
    assert latents.shape == (2, *backbone.latent_shape) and latents.dtype == torch.float32
    assert not latents.requires_grad
    with torch.no_grad():
        mean = backbone.vae.encode(images * 2 - 1).latent_dist.mean
    torch.testing.assert_close(latents, mean * backbone.vae.config.scaling_factor)
    assert torch.equal(backbone.encode_images(images), latents)  # the posterior mean is deterministic
    drawn = backbone.encode_images(images, torch.Generator().manual_seed(0))
    again = backbone.encode_images(images, torch.Generator().manual_seed(0))
    assert torch.equal(drawn, again) and not torch.equal(drawn, latents)
    assert backbone.decode(latents).shape == (2, 3, 16, 16)


def test_encode_images_with_a_half_precision_vae(tiny_dir):
    backbone = load_stable_diffusion(str(tiny_dir), "cpu", dtype=torch.bfloat16)
    assert backbone.encode_images(torch.rand(1, 3, 16, 16)).dtype == torch.float32


def test_the_epsilon_loop_trains_the_unet_on_vae_latents(backbone):
    torch.manual_seed(0)
    latents = backbone.encode_images(torch.rand(4, 3, 16, 16))
    frozen = {n: p.clone() for n, p in [*backbone.vae.named_parameters(), *backbone.text_encoder.named_parameters()]}
    before = {n: p.detach().clone() for n, p in backbone.unet.named_parameters()}
    losses = train_epsilon(backbone, latents, ["a red cat", "a dog", "a blue square", "cat"], steps=2,
                           batch_size=2, lr=1e-3, generator=torch.Generator().manual_seed(0),
                           train_text_encoder=False)
    assert len(losses) == 2 and all(loss > 0 for loss in losses)
    assert any(not torch.equal(p, before[n]) for n, p in backbone.unet.named_parameters())
    after = dict([*backbone.vae.named_parameters(), *backbone.text_encoder.named_parameters()])
    assert all(torch.equal(after[n], v) for n, v in frozen.items())
    assert not backbone.vae.training and not backbone.text_encoder.training
