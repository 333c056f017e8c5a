"""The annotated dataset, the tools, the encoder and the intent model."""

import numpy as np
import pytest

from papers.spagent import encoder, intents, lexicon, media, scenes, tools
from papers.spagent.intent_model import TextFeatures, keyword_intent, train_intent_model
from shared import UserError


def test_heldout_families_never_occur_in_training_data():
    train_ids, held_ids = set(intents.family_ids("train")), set(intents.family_ids("heldout"))
    assert train_ids and held_ids and not train_ids & held_ids
    assert {f[:2] for f in held_ids} == set(intents.GROUPS) == {f[:2] for f in train_ids}
    train, held = intents.build("train", 600, 0), intents.build("heldout", 200, 0)
    assert {tuple(r.family) for r in train} == train_ids and {tuple(r.family) for r in held} == held_ids
    assert not {r.text for r in train} & {r.text for r in held}
    # no held-out template's fixed words (its longest literal piece) appear in a training text
    for e_t, e_v, i in held_ids:
        piece = max(intents.FAMILIES[(e_t, e_v)][i].replace("}", "{").split("{")[::2], key=len).strip()
        assert not any(piece in r.text for r in train), piece


def test_labels_are_consistent():
    for r in intents.build("train", 300, 1):
        mentions = lexicon.colour_mentions(r.text)
        assert len(r.roles) == len(mentions)
        assert r.roles.count("target") <= 1 or len({c for _, c in mentions}) == 1
        if r.e_v == "none":
            assert r.agree and r.scene is None
        else:
            assert r.agree == (r.colour == r.scene["colour"])
        assert r.routes == intents.gold_routes(r.e_t, r.e_v, r.agree)


@pytest.mark.parametrize("spec", tools.LIBRARY, ids=lambda s: s["name"])
def test_each_procedural_tool_makes_its_output(spec):
    t = tools.build_tool(spec)
    img = scenes.render(scenes.Scene("parrot", "red", "beach"), 32, 1)[0]
    vid = scenes.render(scenes.Scene("cat", "blue", "forest"), 32, 5)
    out = t("a green parrot, flying", image=img, video=vid, seed=3, world=tools.Video(32, 5))
    assert out.dtype == np.uint8 and out.shape == ((32, 32, 3) if t.output == "image" else (5, 32, 32, 3))
    again = t("a green parrot, flying", image=img, video=vid, seed=3, world=tools.Video(32, 5))
    assert np.array_equal(out, again)  # deterministic for a seed


def test_edit_recolours_the_subject():
    img = scenes.render(scenes.Scene("square", "red", "night"), 32, 1)[0]
    out = tools.build_tool({"name": "e", "kind": "edit", "params": {"noise": 0}})("a green square", image=img)
    mask, _ = scenes.segment(img)
    assert np.allclose(out[mask].mean(0), scenes.COLOURS["green"], atol=1)


@pytest.mark.parametrize("spec,msg", [
    ({"name": "x", "kind": "t3v"}, "'kind'"), ({"name": "x y", "kind": "i2v"}, "'name'"),
    ({"name": "x", "kind": "i2v", "params": {"wobble": 1}}, "unknown param"),
    ({"name": "x", "kind": "i2v", "params": {"drift": 3}}, "out of range"), ([1], "mapping")])
def test_bad_tool_specs_are_user_errors(spec, msg):
    with pytest.raises(UserError, match=msg):
        tools.check_spec(spec)


def test_media_round_trip_and_errors(tmp_path):
    v = scenes.render(scenes.Scene("fish", "yellow", "snow"), 32, 4)
    media.save_video(tmp_path / "v.gif", v)
    back = media.read_video(tmp_path / "v.gif", 32)
    assert back.shape == v.shape and np.abs(back.astype(int) - v).mean() < 8
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(UserError, match="not a readable image"):
        media.read_image(tmp_path / "bad.png", 32)
    media.save_image(tmp_path / "one.gif", v[0])
    with pytest.raises(UserError, match="at least 2"):
        media.read_video(tmp_path / "one.gif", 32)


def test_encoder_training_is_deterministic_and_learns():
    _, a = encoder.train_encoder(6, 16, 3e-3, 32, 0, 4, 8)
    _, b = encoder.train_encoder(6, 16, 3e-3, 32, 0, 4, 8)
    assert a == b


def test_intent_model_learns_a_tiny_problem():
    train = intents.build("train", 240, 0)
    feats = TextFeatures("hashed")
    net, losses = train_intent_model(train, feats, 80, 2e-2, 32, 0)
    assert losses[-1] < 0.3 * losses[0]
    import torch

    from papers.spagent.intent_model import _sentence_inputs

    sent, ev = _sentence_inputs(feats([r.text for r in train]), [r.e_v for r in train])
    pred = net.heads(sent, ev)[0].argmax(1)
    acc = (pred == torch.tensor([intents.E_T.index(r.e_t) for r in train])).float().mean()
    assert acc > 0.9


def test_keyword_rules_read_training_phrasings():
    img = np.zeros((32, 32, 3), np.uint8)
    i = keyword_intent("make the red parrot green and let it fly", image=img)
    assert (i.e_t, i.colour, i.subject, i.agree) == ("edit", "green", "parrot", False)
    assert keyword_intent("a blue fish swimming slowly in the snow").style == "calm"


def test_the_paper_library_file_lists_every_adapter(repo_root):
    from types import SimpleNamespace

    from papers.spagent.adapters import PIPELINES
    from papers.spagent.pipeline import library_specs

    cfg = SimpleNamespace(library_file="tools/paper_library.yaml", weights_dir="/models")
    specs = library_specs(cfg, repo_root / "papers" / "spagent")
    assert {s["pipeline"] for s in specs} == set(PIPELINES)
    assert all(s["path"].startswith("/models/") and s["family"] == "diffusers" for s in specs)
