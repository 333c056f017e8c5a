"""`run`: one request through the agent, with every artefact written: plan.json, plan.txt
(one readable paragraph), each intermediate output, final.gif and contact.png."""

from __future__ import annotations

import json
from pathlib import Path

from papers.spagent import media
from papers.spagent.agent import Agent


def run_request(agent: Agent, recognise, text: str, image, video, out: Path, seed: int = 0) -> dict:
    """recognise(text, image, video) -> Intent. Returns the plan dict (with output paths)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    intent = recognise(text, image, video)
    plan = agent.plan(intent, image, video)
    outputs = agent.execute(plan, image, video, seed)
    rows, files = [], []
    if image is not None:
        rows.append(("input image", image))
        files.append(str(media.save_image(out / "input.png", image).name))
    if video is not None:
        rows.append(("input video", video))
        files.append(str(media.save_video(out / "input.gif", video).name))
    for i, (step, name, result) in enumerate(outputs, 1):
        label = f"{i}. {step}" + (f" ({name})" if name else "")
        rows.append((label, result))
        stem = out / f"step{i}_{step}"
        path = media.save_image(stem.with_suffix(".png"), result) if result.ndim == 3 else \
            media.save_video(stem.with_suffix(".gif"), result)
        files.append(path.name)
    media.save_video(out / "final.gif", outputs[-1][2])
    media.contact_sheet(rows, out / "contact.png")
    record = {"request": {"text": text, "image": image is not None, "video": video is not None},
              **plan.to_dict(), "paragraph": plan.paragraph(), "outputs": files, "final": "final.gif",
              "contact_sheet": "contact.png"}
    (out / "plan.json").write_text(json.dumps(record, indent=1) + "\n")
    (out / "plan.txt").write_text(plan.paragraph() + "\n")
    return record
