"""Each real-pipeline adapter on its tiny random-weight pipeline (built from configs here)."""

import numpy as np
import pytest

from papers.spagent import scenes
from papers.spagent.adapters import PIPELINES, DiffusersTool
from papers.spagent.tools import Video, build_tool
from shared import UserError
from tests.papers.spagent.tiny_pipelines import BUILDERS, build


@pytest.mark.parametrize("name", list(PIPELINES))
def test_adapter_runs_on_its_tiny_pipeline(name):
    kind = PIPELINES[name][0]
    _, frames, side = BUILDERS[name]
    tool = DiffusersTool(f"tiny_{kind}", kind, name, pipe=build(name), steps=2, guidance=2.0, resolution=side)
    world = Video(size=24, frames=frames)
    image = scenes.render(scenes.Scene("parrot", "red", "beach"), 24, 1)[0]
    video = scenes.render(scenes.Scene("cat", "red", "beach"), 24, frames)
    out = tool("make the red parrot green", image=image, video=video, seed=0, world=world)
    assert out.dtype == np.uint8
    if kind in ("t2i", "edit"):
        assert out.shape == (24, 24, 3)
    else:
        assert out.shape[1:] == (24, 24, 3) and out.shape[0] >= 2


def test_a_diffusers_spec_needs_a_real_directory(tmp_path):
    tool = build_tool({"name": "cog", "kind": "t2v", "family": "diffusers", "pipeline": "CogVideoXPipeline",
                       "path": str(tmp_path / "missing")})
    with pytest.raises(UserError, match="does not exist"):
        tool("a red cat")
    with pytest.raises(UserError, match="not t2v"):
        build_tool({"name": "svd", "kind": "t2v", "family": "diffusers", "pipeline": "StableVideoDiffusionPipeline",
                    "path": str(tmp_path)})
