"""Side information (descriptions.py) and its cached embeddings (text.py). The real MiniLM
encoder is loaded once for the session (conftest.py); cache and batching tests use a fake
encoder."""

import hashlib

import numpy as np
import pytest
import torch

from papers.neuron import text
from papers.neuron.classes import PRIMITIVES, all_classes
from papers.neuron.config import LEVELS, TextConfig
from papers.neuron.descriptions import TORSO_SCALE, all_descriptions, describe, phase_clauses
from shared import UserError

CLASSES = all_classes()
TARGET_WORDS = {"coarse": 11, "medium": 15, "fine": 24}


@pytest.fixture(scope="module")
def texts():
    return all_descriptions(CLASSES, 10)


@pytest.fixture
def minilm(neuron_minilm):
    return neuron_minilm


@pytest.fixture
def real(neuron_text):
    """The full (48, 6, 10, 384) tensor, computed once per session (conftest.py) with the
    session's MiniLM, which was loaded for it exactly once."""
    emb, cache, loads = neuron_text
    assert loads == ["minilm"]
    return emb, cache


class FakeEncoder:
    """Deterministic 8-d vectors from each sentence's hash; records batch sizes."""

    def __init__(self):
        self.batches = []

    def encode(self, sentences, batch_size, convert_to_numpy, show_progress_bar):
        self.batches.append(len(sentences))
        return np.stack([np.frombuffer(hashlib.sha256(s.encode()).digest()[:8], np.uint8)
                         .astype(np.float32) + 1.0 for s in sentences])


@pytest.fixture
def fake(monkeypatch):
    encoders = []

    def load(name):
        encoders.append(FakeEncoder())
        return encoders[-1]

    monkeypatch.setattr(text, "load_encoder", load)
    return encoders


# ---- descriptions ----------------------------------------------------------------------

def test_counts_and_distinct_within_class_level(texts):
    assert list(texts) == list(LEVELS)
    for level in LEVELS:
        assert len(texts[level]) == 48
        for per_class in texts[level]:
            assert len(per_class) == 10 and len(set(per_class)) == 10
            assert all(s.endswith(".") and s[0].isupper() for s in per_class)


def test_word_counts_near_targets(texts):
    for level, target in TARGET_WORDS.items():
        words = np.array([[len(s.split()) for s in c] for c in texts[level]])
        assert abs(words.mean() - target) <= 3, (level, words.mean())
        assert words.min() >= 0.5 * target and words.max() <= 1.6 * target, level
    t = {k: np.array([[len(s.split()) for s in c] for c in texts[f"temporal{k}"]]) for k in (1, 2, 3)}
    assert (t[1] < t[2]).all() and (t[2] < t[3]).all()


def test_fine_level_has_the_primitives_angles(texts):
    for c, per_class in zip(CLASSES, texts["fine"]):
        prim = PRIMITIVES[c.primitive]
        # the trunk's share of a torso bow/lean is scaled as the synthesiser does
        scale = TORSO_SCALE.get(prim.rotation, 1.0) if c.part == "torso" else 1.0
        for s in per_class:
            assert f"{prim.angle_deg * scale:g} degrees" in s, s
            if prim.secondary_deg:
                assert f"{prim.secondary_deg:g} degrees" in s, s


def test_spatial_text_names_part_and_repetition(texts):
    for c, *levels in zip(CLASSES, texts["coarse"], texts["medium"], texts["fine"]):
        side = c.part.split("_")[0]
        for s in (s for per_class in levels for s in per_class):
            if side in ("left", "right", "both"):
                assert side in s.lower(), s
            else:
                assert any(w in s for w in ("upper body", "head", "neck", "spine", "trunk", "knee", "squat", "body", "hips", "crouch")), s
            twice = c.pattern == "repeat"
            assert (("twice" in s or "two times" in s) if twice else ("once" in s or "one time" in s or "single time" in s)), s


def test_temporal_levels_are_cumulative(texts):
    for ci, c in enumerate(CLASSES):
        for i in range(10):
            clauses = phase_clauses(c, i)
            assert len(clauses) == 3
            prev = None
            for k in (1, 2, 3):
                s = texts[f"temporal{k}"][ci][i]
                assert all(cl in s for cl in clauses[:k]), (s, clauses)
                if k < 3:
                    assert clauses[k] not in s
                if prev is not None:
                    assert s.startswith(prev[:-1] + ", "), (prev, s)
                prev = s
    # phase wording comes from the pattern: "once" holds, "repeat" moves again
    once = next(c for c in CLASSES if c.pattern == "once")
    repeat = next(c for c in CLASSES if c.pattern == "repeat")
    assert "again" not in describe(once, "temporal3")[0]
    assert describe(repeat, "temporal3")[0].endswith("again.")


def test_different_classes_get_different_text(texts):
    for level in LEVELS:
        sets = [frozenset(per_class) for per_class in texts[level]]
        if level == "temporal1":
            # phase 1 is "move" in both patterns: same text exactly when part and primitive match
            for a in range(48):
                for b in range(a + 1, 48):
                    same = (CLASSES[a].part, CLASSES[a].primitive) == (CLASSES[b].part, CLASSES[b].primitive)
                    assert (sets[a] == sets[b]) == same
        else:
            # no sentence is shared by two classes
            assert sum(len(s) for s in sets) == len(frozenset().union(*sets)), level
    for c in CLASSES:
        full = [s for level in LEVELS for s in describe(c, level)]
        assert len(set(full)) == 60


def test_describe_is_deterministic_and_checks_arguments():
    c = CLASSES[17]
    assert describe(c, "fine") == describe(c, "fine")
    assert describe(c, "medium", 3) == describe(c, "medium")[:3]
    with pytest.raises(ValueError):
        describe(c, "bogus")
    with pytest.raises(ValueError):
        describe(c, "coarse", 11)


# ---- embeddings ------------------------------------------------------------------------

def test_real_embeddings_shape_norm_finite(real):
    emb, _ = real
    assert emb.shape == (48, len(LEVELS), 10, 384) and emb.dtype == torch.float32
    assert torch.isfinite(emb).all()
    assert torch.allclose(emb.norm(dim=-1), torch.ones(emb.shape[:3]), atol=1e-5)


def test_real_embeddings_deterministic(real, minilm, tmp_path, monkeypatch):
    emb, _ = real
    sentences = describe(CLASSES[5], "fine", 4)
    a = text.embed_texts(minilm, sentences, batch_size=3)
    b = text.embed_texts(minilm, sentences, batch_size=3)
    assert torch.equal(a, b)
    assert torch.allclose(a, emb[5, LEVELS.index("fine"), :4], atol=1e-5)
    # a fresh cache for a subset of the classes gives the same rows
    monkeypatch.setattr(text, "load_encoder", lambda name: minilm)
    sub = text.embed_descriptions(CLASSES[:2], TextConfig(per_level=2), tmp_path)
    assert torch.allclose(sub, emb[:2, :, :2], atol=1e-5)


def test_same_class_descriptions_are_closer(real):
    emb, _ = real
    labels = torch.arange(48).repeat_interleave(10)
    same = labels[:, None] == labels[None]
    off_diag = ~torch.eye(480, dtype=torch.bool)
    for li, level in enumerate(LEVELS):
        x = emb[:, li].reshape(480, -1)
        sim = x @ x.T
        intra, inter = sim[same & off_diag].mean(), sim[~same].mean()
        assert intra > inter + 0.05, (level, intra, inter)


def test_cache_hit_does_not_load_encoder(real, monkeypatch):
    emb, cache = real

    def refuse(name):
        raise AssertionError("cache hit must not load the encoder")

    monkeypatch.setattr(text, "load_encoder", refuse)
    again = text.embed_descriptions(CLASSES, TextConfig(), cache)
    assert torch.equal(again, emb)
    assert text.text_cache_path(CLASSES, TextConfig(), cache).exists()
    # batch_size does not change the result, so it does not change the key either
    assert torch.equal(text.embed_descriptions(CLASSES, TextConfig(batch_size=7), cache), emb)


def test_cache_key_follows_settings_and_wording(tmp_path, texts):
    base = text.text_cache_path(CLASSES, TextConfig(), tmp_path)
    assert base.parent == tmp_path / "neuron" and base.name.startswith("text-")
    assert base.suffix == ".npz"
    assert text.text_cache_path(CLASSES, TextConfig(per_level=5), tmp_path) != base
    assert text.text_cache_path(CLASSES, TextConfig(encoder=str(tmp_path)), tmp_path) != base
    assert text.text_cache_path(CLASSES[:47], TextConfig(), tmp_path) != base
    reworded = {k: [list(c) for c in v] for k, v in texts.items()}
    reworded["fine"][3][7] = reworded["fine"][3][7].replace("degrees", "deg")
    assert text.text_cache_path(CLASSES, TextConfig(), tmp_path, reworded) != base
    assert text.text_cache_path(CLASSES, TextConfig(), tmp_path, texts) == base


def test_settings_change_recomputes(fake, tmp_path):
    classes = CLASSES[:3]
    first = text.embed_descriptions(classes, TextConfig(per_level=4, batch_size=7), tmp_path)
    assert first.shape == (3, 6, 4, 8) and len(fake) == 1
    n = 3 * 6 * 4
    assert fake[0].batches == [7] * (n // 7) + [n % 7]
    text.embed_descriptions(classes, TextConfig(per_level=4), tmp_path)
    assert len(fake) == 1  # hit
    text.embed_descriptions(classes, TextConfig(per_level=5), tmp_path)
    assert len(fake) == 2  # new per_level -> recomputed
    other = tmp_path / "my-encoder"
    other.mkdir()
    text.embed_descriptions(classes, TextConfig(per_level=4, encoder=str(other)), tmp_path)
    assert len(fake) == 3  # another encoder -> recomputed
    assert len(list((tmp_path / "neuron").glob("text-*.npz"))) == 3
    # rows follow (class, level, variant): class 1, medium, variant 2
    sentence = describe(classes[1], "medium", 4)[2]
    row = text.embed_texts(FakeEncoder(), [sentence])[0]
    assert torch.allclose(first[1, LEVELS.index("medium"), 2], row)


def test_corrupt_cache_is_a_user_error(fake, tmp_path):
    cfg = TextConfig(per_level=2)
    text.embed_descriptions(CLASSES[:2], cfg, tmp_path)
    path = text.text_cache_path(CLASSES[:2], cfg, tmp_path)
    path.write_bytes(path.read_bytes()[:-10] + b"corrupted!")
    with pytest.raises(UserError, match="corrupt"):
        text.embed_descriptions(CLASSES[:2], cfg, tmp_path)


def test_missing_local_encoder_is_a_user_error(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(UserError, match="no such directory"):
        text.load_encoder(str(missing))
    with pytest.raises(UserError, match="no such directory"):
        text.embed_descriptions(CLASSES[:1], TextConfig(per_level=1, encoder=str(missing)), tmp_path)
    assert not (tmp_path / "neuron").exists() or not list((tmp_path / "neuron").iterdir())
    with pytest.raises(UserError, match="not a loadable"):
        text.load_encoder(str(tmp_path))  # a directory without a model


def test_embed_texts_normalises_and_rejects_empty():
    out = text.embed_texts(FakeEncoder(), ["a", "b", "c"], batch_size=2)
    assert out.shape == (3, 8) and torch.allclose(out.norm(dim=1), torch.ones(3))
    with pytest.raises(ValueError):
        text.embed_texts(FakeEncoder(), [])
