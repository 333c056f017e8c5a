"""The pre-trained tiny model's cache: its key leaves out the paper path's fields, its files
are checked against a sha256 manifest, and a corrupt or incomplete cache is rebuilt (to the
same bytes) with one line saying so, never a SafetensorError traceback."""

import json
import shutil

from papers.spider import pipeline


def test_the_cache_key_leaves_out_the_paper_path_fields(tmp_path):
    base = pipeline.config("smoke", [f"data_dir={tmp_path}"])
    paper_only = pipeline.config("smoke", [f"data_dir={tmp_path}", "data.local_dir=/data/spider",
                                           "data.local_task=iconqa", "data.local_upstream=[gqa]",
                                           "model.path=/models/llava", "model.max_length=64",
                                           "data.downstream_tasks=[mcqa]", "data.downstream_eval=7"])
    assert pipeline.base_dir(paper_only) == pipeline.base_dir(base)
    for change in ("model.vocab_size=310", "pretrain.steps=5", "data.data_seed=1", "data.mc_answer=text",
                   "data.downstream_train=17", "data.upstream_eval=5", "pretrain.styles=[dark]"):
        other = pipeline.config("smoke", [f"data_dir={tmp_path}", change])
        assert pipeline.base_dir(other) != pipeline.base_dir(base), change


def _copy_cache(smoke, tmp_path):
    """The smoke fixture's cached model, copied under a fresh data_dir: (data_dir, root)."""
    root, _, _ = smoke
    cfg = pipeline.config("smoke", [f"data_dir={root}/data"])
    data = tmp_path / "data"
    copy = data / "spider" / pipeline.base_dir(cfg).name
    shutil.copytree(pipeline.base_dir(cfg), copy)
    return data, copy


def test_the_manifest_catches_truncated_flipped_and_missing_files(smoke, tmp_path):
    _, root = _copy_cache(smoke, tmp_path)
    assert pipeline.base_problem(root) is None
    manifest = json.loads((root / pipeline.MANIFEST).read_text())
    assert {"model/model.safetensors", "model/config.json", "pretrain.json"} <= set(manifest)
    weights = root / "model" / "model.safetensors"
    good = weights.read_bytes()
    weights.write_bytes(good[: len(good) // 2])
    assert "is truncated or corrupt: model/model.safetensors has" in pipeline.base_problem(root)
    flipped = bytearray(good)
    flipped[-1] ^= 0xFF
    weights.write_bytes(bytes(flipped))
    assert pipeline.base_problem(root) == "is corrupt: model/model.safetensors fails its sha256 check"
    weights.write_bytes(good)
    (root / "pretrain.json").unlink()
    assert pipeline.base_problem(root) == "lacks pretrain.json"
    (root / pipeline.MANIFEST).unlink()
    assert pipeline.base_problem(root) == "has no checksum manifest"
    (root / "DONE").unlink()
    assert pipeline.base_problem(root).startswith("incomplete")


def test_a_truncated_cache_is_rebuilt_with_one_line(smoke, tmp_path, cli):
    data, root = _copy_cache(smoke, tmp_path)
    weights = root / "model" / "model.safetensors"
    good = json.loads((root / pipeline.MANIFEST).read_text())
    weights.write_bytes(weights.read_bytes()[:1000])
    code, out, err = cli("spider", "data", "--config", "smoke", f"runs_dir={tmp_path}/runs", f"data_dir={data}")
    assert code == 0, err
    warnings = [line for line in err.splitlines() if line.startswith(("warning", "error"))]
    assert len(warnings) == 1 and "is truncated or corrupt" in warnings[0] and "rebuilding it" in warnings[0]
    assert "Traceback" not in err and "SafetensorError" not in err
    assert f"pre-trained model at {root}" in out
    assert pipeline.base_problem(root) is None
    # the same files again (the weights' bytes depend on the number of torch threads)
    again = json.loads((root / pipeline.MANIFEST).read_text())
    assert {k: v["bytes"] for k, v in again.items() if k != "pretrain.json"} == {
        k: v["bytes"] for k, v in good.items() if k != "pretrain.json"}
    assert not [p for p in root.parent.iterdir() if p.name.startswith(".")]  # no temporary left
