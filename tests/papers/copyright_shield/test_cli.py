"""Command line: one-line errors, config, and the end-to-end smoke reproduce."""

import json

import pytest

SLUG = "copyright_shield"


@pytest.mark.parametrize("args, needle", [
    (["train.epochs=0"], "train.epochs"),
    (["nosuchkey=1"], "nosuchkey"),
    (["attack.ratio=1.5"], "attack.ratio"),
    (["train.runs=[attack,nosuch]"], "train.runs"),
    (["similarity.name=sscd"], "sscd_path"),
    (["model.name=stable-diffusion"], "model.path"),
    (["data.image_size=17"], "data.image_size"),
    (["text.hidden=15"], "text.hidden"),
    (["model.cross_attention_levels=0"], "model.cross_attention_levels"),
    (["model.cross_attention_levels=3"], "model.cross_attention_levels"),
])
def test_user_mistakes_are_one_line(one_line_error, args, needle):
    assert needle in one_line_error(SLUG, "train", args)


def test_cross_attention_levels_reach_the_tiny_unet_and_the_default_keeps_the_base_key(tmp_path):
    from diffusers.models.unets.unet_2d_blocks import CrossAttnDownBlock2D

    from papers.copyright_shield.model import base_key, new_backbone
    from tests.papers.copyright_shield.conftest import smoke_config

    one, two = smoke_config(tmp_path), smoke_config(tmp_path, "model.cross_attention_levels=2")
    assert len(one.model.block_out_channels) == 2
    unet = new_backbone(two).unet
    unet = getattr(unet, "inner", unet)  # under model.skip the UNet is wrapped
    assert [type(b) for b in unet.down_blocks] == [CrossAttnDownBlock2D, CrossAttnDownBlock2D]
    # another architecture is another cached base; the default's key is the one computed
    # without the field, so bases built before the option are still found
    assert base_key(one, frozenset()) != base_key(two, frozenset())
    assert base_key(one, frozenset()) == _key_without_field(one)


def _key_without_field(cfg):
    import dataclasses

    from papers.copyright_shield import model as m
    fields = {k: v for k, v in dataclasses.asdict(cfg.model).items() if k != "cross_attention_levels"}
    return m.cache_key(data=cfg.data.image_size, text=dataclasses.asdict(cfg.text), model=fields,
                       base=dataclasses.asdict(cfg.base), dropout=cfg.train.caption_dropout, avoid=[],
                       vocab=m.vocabulary(), versions=m.package_versions(("torch", "diffusers", "transformers")))


def test_sscd_file_that_does_not_exist_is_one_line(one_line_error, tmp_path):
    line = one_line_error(SLUG, "data", ["similarity.name=sscd", f"similarity.sscd_path={tmp_path}/none.pt"])
    assert "not a file" in line


def test_eval_without_a_run_is_one_line(one_line_error):
    assert "train it first" in one_line_error(SLUG, "eval", [])


def test_config_lists_every_field(cli):
    code, out, _ = cli(SLUG, "config", "--config", "small")
    assert code == 0 and "defence.lam" in out and "attack.ratio" in out


def test_smoke_reproduce_end_to_end(cli, tmp_path):
    code, out, err = cli(SLUG, "reproduce", "--config", "smoke", f"runs_dir={tmp_path}/runs",
                         f"data_dir={tmp_path}/data", "wandb=false")
    assert code == 0, err[-2000:]
    assert "copyright_shield smoke:" in out
    found = list((tmp_path / "runs" / SLUG / "smoke" / "reproduce").glob("*/results.json"))
    assert len(found) == 1
    results = json.loads(found[0].read_text())
    names = {c["claim"] for c in results["claims"]}
    assert any("FAE rises" in n for n in names) and any("geometry" in n for n in names)
    assert any("released" in n["note"] for n in results["protocol_notes"])
    assert {"attack", "released", "detection", "inversion"} <= set(results["methods"])
    # the released defence is the undefended run, draw for draw
    assert results["methods"]["released"]["cir"] == results["methods"]["attack"]["cir"]
    for plot in results["plots"]:
        assert (found[0].parent / plot).is_file()
    code, out, err = cli(SLUG, "eval", "--config", "smoke", f"runs_dir={tmp_path}/runs",
                         f"data_dir={tmp_path}/data", "run=attack")
    assert code == 0 and "FAE" in out, err
