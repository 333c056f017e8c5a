"""Rewards: JPEG sizes, the aesthetic target, the cached scorers, and the CLIP-based loaders
on a tiny random CLIP built locally (nothing is downloaded)."""

import json
import math
import shutil

import pytest
import torch

from papers.sdpo import reward_models, rewards
from papers.sdpo.config import SDPOExperimentConfig
from shared import UserError
from shared.t2i import scenes

TINY_SCORER = ["reward.scorer_steps=40", "reward.scorer_pool=512", "reward.scorer_batch=32"]


def reward_cfg(tmp_path, *overrides: str) -> SDPOExperimentConfig:
    cfg = SDPOExperimentConfig()
    cfg.data_dir = str(tmp_path / "data")
    for item in overrides:
        key, value = item.split("=", 1)
        section, name = key.split(".")
        field = getattr(cfg, section)
        setattr(field, name, type(getattr(field, name))(value))
    return cfg


def scene_image(scene: scenes.Scene, size: int = 16) -> torch.Tensor:
    return torch.from_numpy(scenes.render(scene, size)).permute(2, 0, 1)


# ---- JPEG ----

def test_jpeg_constant_smaller_than_noise_and_signs_opposite(tmp_path):
    constant = torch.full((1, 3, 16, 16), 0.5)
    noise = torch.rand((1, 3, 16, 16), generator=torch.Generator().manual_seed(0))
    images = torch.cat([constant, noise])
    small = rewards.build_reward(reward_cfg(tmp_path, "reward.name=jpeg-compressibility"), "cpu")
    large = rewards.build_reward(reward_cfg(tmp_path, "reward.name=jpeg-incompressibility"), "cpu")
    r_small, r_large = small(images, ["a", "b"]), large(images, ["a", "b"])
    assert r_small.dtype == torch.float32 and r_small.shape == (2,)
    assert torch.equal(r_small, -r_large)
    assert r_large[0] < r_large[1] and r_small[0] > r_small[1]
    assert r_large[0] > 0
    assert float(r_large[1]) == pytest.approx(rewards.jpeg_kilobytes(rewards.to_uint8(noise)[0]))


def test_reward_chunks_agree_with_one_batch(tmp_path):
    images = torch.rand((7, 3, 16, 16), generator=torch.Generator().manual_seed(1))
    whole = rewards.build_reward(reward_cfg(tmp_path, "reward.name=jpeg-incompressibility"), "cpu")
    chunked = rewards.build_reward(
        reward_cfg(tmp_path, "reward.name=jpeg-incompressibility", "reward.batch=3"), "cpu")
    assert torch.equal(whole(images, ["p"] * 7), chunked(images, ["p"] * 7))
    with pytest.raises(ValueError):
        whole(images, ["p"] * 6)


# ---- the aesthetic target ----

@pytest.mark.parametrize("scene, kwargs, expected", [
    # contrast 1, size (0.29 - 0.12) / 0.2 = 0.85, centred: 10 (0.45 + 0.3 * 0.85 + 0.25)
    (scenes.Scene("circle", "white", "large", "centre", "black"), {}, 9.55),
    # |(0.1, 0.9, 0.9)| / sqrt 3 contrast, size 0.25, off-centre (distance 0.2)
    (scenes.Scene("square", "red", "small", "left", "white"), {},
     10 * (0.45 * math.sqrt(1.63 / 3) + 0.3 * 0.25)),
    # noise std 0.1 costs 2 points, blur std 1 pixel 2 points
    (scenes.Scene("circle", "white", "large", "centre", "black"), {"noise": 0.1, "blur": 1.0}, 5.55),
    # scaled to half-extent 0.348: size term saturates at 1
    (scenes.Scene("circle", "white", "large", "centre", "black"), {"scale": 1.2}, 10.0),
    # shifted 0.1 off-centre: centre term 0.5
    (scenes.Scene("circle", "white", "large", "centre", "black"), {"shift": (0.1, 0.0)}, 8.3),
    # top, shifted back to the centre; gray background: contrast |(0.5, 0.5, 0.5)| / sqrt 3 = 0.5
    (scenes.Scene("cross", "white", "small", "top", "gray"), {"shift": (0.0, 0.2)},
     10 * (0.45 * 0.5 + 0.3 * 0.25 + 0.25)),
    # heavy noise clips at 0
    (scenes.Scene("triangle", "purple", "small", "bottom", "navy"), {"noise": 0.5}, 0.0),
])
def test_aesthetic_target_exact(scene, kwargs, expected):
    assert rewards.aesthetic_target(scene, **kwargs) == pytest.approx(expected, abs=1e-9)


def test_synth_batch_targets_follow_the_scene_definition():
    batch = rewards.synth_batch(256, 16, torch.Generator().manual_seed(0))
    assert batch["images"].shape == (256, 3, 16, 16)
    assert 0 <= batch["images"].min() and batch["images"].max() <= 1
    exact = 0
    for i in range(256):
        scene = scenes.Scene(
            rewards.SHAPES[batch["shape"][i]], rewards.COLOURS[batch["colour"][i]],
            rewards.SIZES[batch["size"][i]], rewards.POSITIONS[batch["position"][i]],
            rewards.BACKGROUNDS[batch["background"][i]],
        )
        assert scene.colour != scene.background
        expected = rewards.aesthetic_target(
            scene, float(batch["scale"][i]), tuple(batch["shift"][i].tolist()),
            float(batch["noise"][i]), float(batch["blur"][i]),
            (batch["fg"][i].tolist(), batch["bg"][i].tolist()))
        assert float(batch["target"][i]) == pytest.approx(expected, abs=1e-4)
        assert rewards.colour_contrast(batch["fg"][i], scenes.COLOURS[scene.colour]) < 0.08
        unchanged = (batch["fg"][i] == torch.tensor(scenes.COLOURS[scene.colour])).all() and \
            (batch["bg"][i] == torch.tensor(scenes.BACKGROUNDS[scene.background])).all()
        if unchanged and batch["scale"][i] == 1 and not batch["shift"][i].any() \
                and batch["blur"][i] == 0 and batch["noise"][i] == 0:
            assert torch.allclose(batch["images"][i], scene_image(scene), atol=1e-5)
            exact += 1
    assert exact > 0
    again = rewards.synth_batch(256, 16, torch.Generator().manual_seed(0))
    assert all(torch.equal(batch[k], again[k]) for k in batch)


def test_blur_keeps_constants_and_zero_std_is_identity():
    images = torch.rand(2, 3, 8, 8)
    assert torch.equal(rewards._gaussian_blur(images, torch.zeros(2)), images)
    flat = torch.full((1, 3, 8, 8), 0.3)
    assert torch.allclose(rewards._gaussian_blur(flat, torch.tensor([1.5])), flat, atol=1e-6)


# ---- the match reward ----

def test_match_score_rule():
    p_colour = torch.zeros(3, len(rewards.COLOURS))
    p_colour[:, rewards.COLOURS.index("red")] = 0.75
    p_colour[:, rewards.COLOURS.index("blue")] = 0.25
    p_shape = torch.zeros(3, len(rewards.SHAPES))
    p_shape[:, rewards.SHAPES.index("circle")] = 0.5
    p_shape[:, rewards.SHAPES.index("cross")] = 0.5
    scores = rewards.match_score(p_colour, p_shape, ["a red circle", "a blue square", "a circle"])
    assert scores.tolist() == [1.25, 0.25, 1.5]


def test_match_reward_prefers_the_prompted_colour(tmp_path):
    cfg = reward_cfg(tmp_path, "reward.name=match", "reward.scorer_steps=150",
                   "reward.scorer_pool=2048", "reward.scorer_batch=64")
    reward = rewards.build_reward(cfg, "cpu")
    images = torch.stack([scene_image(scenes.Scene("circle", c, "large", "centre", "gray"))
                          for c in ("red", "blue")])
    scores = reward(images, ["a red circle", "a red circle"])
    assert scores.shape == (2,) and 0 <= scores.min() and scores.max() <= 2
    assert scores[0] > scores[1] + 0.5
    assert reward.metrics["clean_colour_accuracy"] > 0.9


# ---- the aesthetic scorer and its cache ----

def test_scorer_cache_round_trip_and_determinism(tmp_path, monkeypatch):
    cfg = reward_cfg(tmp_path, "reward.name=aesthetic", *TINY_SCORER)
    first = rewards.build_reward(cfg, "cpu")
    root = rewards.scorer_dir(cfg, "aesthetic")
    assert root.is_dir() and (next(root.iterdir()) / "manifest.json").is_file()
    assert {"spearman", "spearman_clean", "train_seconds"} <= set(first.metrics)

    retrained, _ = rewards.train_scorer("aesthetic", 16, cfg.reward)
    for name, value in retrained.state_dict().items():
        assert torch.equal(value, first.net.state_dict()[name]), name

    def no_training(*args, **kwargs):
        raise AssertionError("the cached scorer should be loaded, not retrained")

    monkeypatch.setattr(rewards, "train_scorer", no_training)
    second = rewards.build_reward(cfg, "cpu")
    for name, value in second.net.state_dict().items():
        assert torch.equal(value, first.net.state_dict()[name]), name
    assert second.metrics == first.metrics
    images = torch.rand((5, 3, 16, 16), generator=torch.Generator().manual_seed(2))
    scores = second(images, ["a red circle"] * 5)
    assert scores.dtype == torch.float32 and scores.shape == (5,)
    assert torch.equal(scores, first(images, ["x"] * 5))
    assert second(torch.nn.functional.interpolate(images, size=32), ["x"] * 5).shape == (5,)

    other = reward_cfg(tmp_path, "reward.name=aesthetic", *TINY_SCORER, "reward.scorer_seed=1")
    assert rewards.scorer_dir(other, "aesthetic") != root


def test_corrupt_scorer_cache_is_a_user_error(tmp_path):
    cfg = reward_cfg(tmp_path, "reward.name=aesthetic", *TINY_SCORER)
    rewards.build_reward(cfg, "cpu")
    root = rewards.scorer_dir(cfg, "aesthetic")
    tensors = next(root.iterdir()) / "tensors.safetensors"
    blob = bytearray(tensors.read_bytes())
    blob[-5] ^= 0xFF
    tensors.write_bytes(bytes(blob))
    with pytest.raises(UserError, match="tensors.safetensors.*delete") as err:
        rewards.build_reward(cfg, "cpu")
    assert "\n" not in str(err.value)


# ---- the CLIP-based reward models on a tiny random CLIP ----

WORDS = ["a", "red", "blue", "circle", "square"]


def save_tiny_clip(path) -> None:
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    path.mkdir(parents=True)
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for piece in [*"abcdefghijklmnopqrstuvwxyz", *(f"{c}</w>" for c in "abcdefghijklmnopqrstuvwxyz")]:
        vocab[piece] = len(vocab)
    (path / "vocab.json").write_text(json.dumps(vocab))
    (path / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(path / "vocab.json"), str(path / "merges.txt"))
    image_processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(path)
    torch.manual_seed(0)
    config = CLIPConfig(
        text_config=dict(vocab_size=len(vocab), hidden_size=16, intermediate_size=32,
                         num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=32,
                         bos_token_id=0, eos_token_id=1, pad_token_id=1),
        vision_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                           num_attention_heads=2, image_size=32, patch_size=8),
        projection_dim=8,
    )
    CLIPModel(config).save_pretrained(path)


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("clip") / "tiny-clip"
    save_tiny_clip(path)
    head = reward_models.AestheticHead(8)
    torch.save(head.state_dict(), path / reward_models.AESTHETIC_HEAD)
    return path


def test_laion_aesthetic_end_to_end(tmp_path, tiny_clip):
    cfg = reward_cfg(tmp_path, "reward.name=laion-aesthetic", "reward.batch=2")
    cfg.reward.path = str(tiny_clip)
    reward = rewards.build_reward(cfg, "cpu")
    images = torch.rand((3, 3, 16, 16), generator=torch.Generator().manual_seed(3))
    scores = reward(images, ["a red circle"] * 3)
    assert scores.shape == (3,) and scores.dtype == torch.float32 and torch.isfinite(scores).all()
    pixels = reward_models.clip_pixels(images, 32, reward.mean, reward.std)
    embedding = reward_models._embedding(reward.clip.get_image_features(pixel_values=pixels))
    expected = reward.head(embedding / embedding.norm(dim=-1, keepdim=True))[:, 0]
    assert torch.allclose(scores, expected, atol=1e-5)
    head = torch.load(tiny_clip / reward_models.AESTHETIC_HEAD, weights_only=True)
    assert sorted(head) == sorted(f"layers.{i}.{p}" for i in (0, 2, 4, 6, 7) for p in ("weight", "bias"))


@pytest.mark.parametrize("head", ["garbage", "wrong-width"])
def test_bad_aesthetic_head_is_a_user_error(tmp_path, tiny_clip, head):
    path = tmp_path / "clip"
    shutil.copytree(tiny_clip, path)
    if head == "garbage":
        (path / reward_models.AESTHETIC_HEAD).write_bytes(b"not a state dict")
    else:
        torch.save(reward_models.AestheticHead(12).state_dict(), path / reward_models.AESTHETIC_HEAD)
    cfg = reward_cfg(tmp_path, "reward.name=laion-aesthetic")
    cfg.reward.path = str(path)
    with pytest.raises(UserError, match="sac\\+logos") as err:
        rewards.build_reward(cfg, "cpu")
    assert "\n" not in str(err.value)


def test_pickscore_end_to_end(tmp_path, tiny_clip):
    cfg = reward_cfg(tmp_path, "reward.name=pickscore")
    cfg.reward.path = str(tiny_clip)
    reward = rewards.build_reward(cfg, "cpu")
    images = torch.rand((2, 3, 16, 16), generator=torch.Generator().manual_seed(4))
    prompts = ["a red circle", "a blue square"]
    scores = reward(images, prompts)
    assert scores.shape == (2,) and torch.isfinite(scores).all()
    scale = float(reward.clip.logit_scale.exp())
    assert (scores.abs() <= scale + 1e-5).all()
    one = reward(images[1:], prompts[1:])  # each image only sees its own prompt
    assert torch.allclose(one, scores[1:], atol=1e-5)


def test_clip_pixels_resize_and_normalise():
    images = torch.full((1, 3, 16, 24), 0.5)
    pixels = reward_models.clip_pixels(images, 32, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    assert pixels.shape == (1, 3, 32, 32)
    assert torch.allclose(pixels, torch.zeros_like(pixels), atol=1e-5)


@pytest.mark.parametrize("name", ["laion-aesthetic", "pickscore"])
def test_missing_weights_are_user_errors(tmp_path, name):
    cfg = reward_cfg(tmp_path, f"reward.name={name}")
    with pytest.raises(UserError, match="reward.path"):
        rewards.build_reward(cfg, "cpu")
    cfg.reward.path = str(tmp_path / "nowhere")
    with pytest.raises(UserError, match="not a directory"):
        rewards.build_reward(cfg, "cpu")
    (tmp_path / "empty").mkdir()
    cfg.reward.path = str(tmp_path / "empty")
    with pytest.raises(UserError) as err:
        rewards.build_reward(cfg, "cpu")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name, package", [("imagereward", "image-reward"), ("hpsv2", "hpsv2")])
def test_reward_packages_missing_are_user_errors(tmp_path, name, package):
    module = {"imagereward": "ImageReward", "hpsv2": "hpsv2"}[name]
    try:
        __import__(module)
        pytest.skip(f"{module} is installed")
    except ImportError:
        pass
    cfg = reward_cfg(tmp_path, f"reward.name={name}")
    with pytest.raises(UserError, match=f"pip install {package}"):
        rewards.build_reward(cfg, "cpu")


def test_every_configured_reward_is_built_or_explained():
    from papers.sdpo.config import REWARDS

    assert set(REWARDS) == {"jpeg-compressibility", "jpeg-incompressibility", "aesthetic", "match",
                            *reward_models.PRETRAINED}
    assert rewards.colour_contrast((1, 1, 1), (0, 0, 0)) == pytest.approx(1.0)
