import re
from dataclasses import replace

import numpy as np
import pytest

from papers.spider import corpora, scenes
from papers.spider.scenes import PALETTE, POSITIONS, SHAPES, render, sample_scene


def _scenes(style, n=200, seed=0, **kw):
    rng = np.random.default_rng(seed)
    return [sample_scene(rng, style=style, **kw) for _ in range(n)]


def test_sample_scene_deterministic_and_render_shape():
    a, b, c = _scenes("textured", 5, 1), _scenes("textured", 5, 1), _scenes("textured", 5, 2)
    assert a == b and a != c
    for s in a:
        img = render(s)
        assert img.shape == (scenes.IMAGE_SIZE, scenes.IMAGE_SIZE, 3) and img.dtype == np.uint8
        assert np.array_equal(img, render(s))  # noise is seeded by the scene
        assert render(s, 24).shape == (24, 24, 3)


@pytest.mark.parametrize("style", scenes.STYLES)
def test_scene_invariants(style):
    for s in _scenes(style, 100, max_objects=5):
        assert 1 <= len(s.objects) <= 5
        cells = [(o.col, o.row) for o in s.objects]
        assert len(set(cells)) == len(cells) and cells == sorted(cells, key=lambda c: (c[1], c[0]))
        assert len({(o.color, o.shape) for o in s.objects}) == len(s.objects)
        for o in s.objects:
            # the centre lies in the object's own cell
            assert int(o.x * 3) == o.col and int(o.y * 3) == o.row


def test_plain_render_puts_each_object_at_its_cell_with_its_colour():
    for s in _scenes("plain", 50):
        img = render(s, 36)
        for o in s.objects:
            y, x = int(o.y * 36), int(o.x * 36)
            assert tuple(img[y, x]) == PALETTE[o.color]
        # the top-left pixel is background (no object reaches a cell's corner)
        assert tuple(img[0, 0]) == s.background


def test_styles_differ():
    def stats(style):
        scs = _scenes(style, 60)
        imgs = np.stack([render(s) for s in scs]).astype(float)
        bgs = np.stack([render(replace(s, objects=())) for s in scs]).astype(float)
        return imgs.mean(), bgs.reshape(60, -1, 3).std(axis=1).mean()

    plain, textured, dark = stats("plain"), stats("textured"), stats("dark")
    assert plain[1] == 0  # uniform background
    assert textured[1] > 5 and textured[1] > dark[1]  # texture + noise
    assert dark[0] < textured[0] < plain[0]
    with pytest.raises(ValueError):
        sample_scene(np.random.default_rng(0), style="neon")


# ------------------------------------------------------------------------- corpora


@pytest.fixture(scope="module")
def upstream():
    return {t: corpora.upstream_task_examples(t, 60, seed=0) for t in corpora.UPSTREAM_TASKS}


def test_examples_have_the_schema(upstream):
    exs = [e for v in upstream.values() for e in v] + corpora.downstream_examples("mcqa", 5, 0)
    for e in exs:
        assert {"image", "prompt", "answer", "task", "choices", "references", "scene"} <= set(e)
        assert e["image"].dtype == np.uint8 and e["image"].shape == (36, 36, 3)
        assert np.array_equal(e["image"], render(e["scene"], 36))
        assert isinstance(e["prompt"], str) and isinstance(e["answer"], str) and e["answer"]


def test_upstream_answers_match_the_scene(upstream):
    for e in upstream["count"]:
        plural = re.match(r"how many (\w+) are there\?", e["prompt"]).group(1)
        shape = {corpora._plural(s): s for s in SHAPES}[plural]
        assert e["answer"] == str(e["scene"].count(shape))
    for e in upstream["color"]:
        shape = re.match(r"what color is the (\w+)\?", e["prompt"]).group(1)
        hits = [o for o in e["scene"].objects if o.shape == shape]
        assert len(hits) == 1 and hits[0].color == e["answer"]
    for e in upstream["position"]:
        color, shape = re.match(r"where is the (\w+) (\w+)\?", e["prompt"]).groups()
        assert e["scene"].find(color, shape).position == e["answer"]
        assert e["answer"] in POSITIONS.values()
    for e in upstream["exists"]:
        color, shape = re.match(r"is there a (\w+) (\w+)\?", e["prompt"]).groups()
        assert e["answer"] == ("yes" if e["scene"].find(color, shape) else "no")
    for e in upstream["caption"]:
        assert e["references"] == [e["answer"]]
        for o in e["scene"].objects:
            assert f"a {o.size} {o.color} {o.shape} at the {o.position}" in e["answer"]


def test_upstream_answers_are_balanced(upstream):
    counts = [e["answer"] for e in corpora.upstream_task_examples("count", 400, seed=1)]
    assert {"0", "1", "2", "3"} == set(counts) and max(counts.count(k) for k in set(counts)) < 0.4 * 400
    exists = [e["answer"] for e in upstream["exists"]]
    assert 0.3 < exists.count("yes") / len(exists) < 0.7


def test_determinism_and_train_test_disjoint():
    a = corpora.upstream_examples(50, seed=3)
    b = corpora.upstream_examples(50, seed=3)
    assert [e["prompt"] + e["answer"] for e in a] == [e["prompt"] + e["answer"] for e in b]
    assert all(np.array_equal(x["image"], y["image"]) for x, y in zip(a, b))
    assert sorted(e["task"] for e in a) == sorted([t for t in corpora.UPSTREAM_TASKS for _ in range(10)])
    for get in (
        lambda split: corpora.upstream_examples(100, seed=3, split=split),
        lambda split: corpora.downstream_examples("caption_textured", 60, 3, split),
        lambda split: corpora.downstream_examples("mcqa", 60, 3, split),
    ):
        train, test = get("train"), get("test")
        tr = {e["image"].tobytes() for e in train}
        te = {e["image"].tobytes() for e in test}
        assert not tr & te
        assert all(corpora.image_split(e["image"]) == "train" for e in train)
        assert all(corpora.image_split(e["image"]) == "test" for e in test)
    # another seed gives other examples
    c = corpora.upstream_examples(50, seed=4)
    assert [e["answer"] for e in a] != [e["answer"] for e in c]


def test_downstream_multiple_choice():
    exs = corpora.downstream_examples("mcqa", 180, seed=0)
    kinds = set()
    for e in exs:
        assert e["task"] == "mcqa" and 3 <= len(e["choices"]) <= 5
        assert len(set(e["choices"])) == len(e["choices"])
        letters = corpora.LETTERS[: len(e["choices"])]
        assert e["answer"] in letters
        for letter, choice in zip(letters, e["choices"]):
            assert f"({letter}) {choice}" in e["prompt"]
        right = e["choices"][letters.index(e["answer"])]
        s = e["scene"]
        q = e["prompt"].split("\n")[0]
        if m := re.match(r"what shape is the (\w+) object\?", q):
            kinds.add("shape")
            (hit,) = [o for o in s.objects if o.color == m.group(1)]
            assert right == hit.shape and set(e["choices"]) <= set(SHAPES)
        elif m := re.match(r"what color is the object at the (.+)\?", q):
            kinds.add("color_at")
            (hit,) = [o for o in s.objects if o.position == m.group(1)]
            assert right == hit.color and set(e["choices"]) <= set(PALETTE)
        elif m := re.match(r"which object is (to the left of|to the right of|above|below) the (\w+) (\w+)\?", q):
            kinds.add("relation")
            anchor = s.find(m.group(2), m.group(3))
            hits = [o.name for o in s.objects if o is not anchor and corpora._RELATIONS[m.group(1)](o, anchor)]
            assert hits == [right]
        elif m := re.match(r"which object is (closest to the .+)\?", q):
            kinds.add("extreme")
            key = corpora._EXTREMES[m.group(1)]
            assert min(s.objects, key=key).name == right
        elif m := re.match(r"which are there more of, (\w+) or (\w+)\?", q):
            kinds.add("compare")
            ca, cb = (sum(corpora._plural(o.shape) == g for o in s.objects) for g in m.groups())
            assert right == (m.group(1) if ca > cb else m.group(2) if cb > ca else "the same number")
        else:
            kinds.add("total")
            assert right == str(len(s.objects))
    assert kinds == set(corpora.MCQA_KINDS)
    assert e["image"].mean() < 80  # the dark domain by default


def test_multiple_choice_kinds_and_text_answers():
    exs = corpora.downstream_examples("mcqa", 40, seed=0, mcqa_kinds=("total",), mc_answer="text")
    for e in exs:
        assert e["prompt"].startswith("how many objects") and e["prompt"].endswith("one of the options.")
        assert e["answer"] == str(len(e["scene"].objects)) and e["answer"] in e["choices"]
    assert corpora.score(exs[:2], [exs[0]["answer"], "(A)"]) == 0.5
    with pytest.raises(ValueError, match="answer form"):
        corpora.downstream_examples("mcqa", 2, seed=0, mc_answer="number")


def test_pretraining_styles_cover_the_domains_and_plain_only_is_unchanged():
    plain = corpora.upstream_task_examples("color", 20, seed=0)
    assert [e["prompt"] + e["answer"] for e in plain] == [
        e["prompt"] + e["answer"] for e in corpora.upstream_task_examples("color", 20, seed=0, styles=("plain",))]
    mixed = corpora.upstream_examples(60, seed=0, styles=scenes.STYLES)
    assert {e["scene"].style for e in mixed} == set(scenes.STYLES)


def test_downstream_caption_domain_and_references():
    exs = corpora.downstream_examples("caption_textured", 30, seed=0)
    for e in exs:
        assert e["scene"].style == "textured" and len(e["references"]) == 5
        assert e["answer"] in e["references"]
        tex = {"stripes": "striped", "checks": "checkered", "dots": "dotted"}[e["scene"].texture]
        assert all(tex in r for r in e["references"])
        assert all(o.color in r for o in e["scene"].objects for r in e["references"])
    up = corpora.upstream_task_examples("caption", 30, seed=0)
    assert {e["prompt"] for e in exs} != {e["prompt"] for e in up}
    with pytest.raises(ValueError):
        corpora.downstream_examples("vqa", 1, 0)


def test_score_and_letter_parsing():
    exs = corpora.downstream_examples("mcqa", 4, seed=0)
    preds = [e["answer"] for e in exs]
    assert corpora.score(exs, preds) == 1.0
    assert corpora.score(exs, ["(" + p + ")" for p in preds]) == 1.0
    assert corpora.mc_letter(" B) circles") == "B" and corpora.mc_letter("(H)") == "H"
    # upper case only: "a dog" is an answer, not option A
    assert corpora.mc_letter(" b) circles") is None and corpora.mc_letter("a dog") is None
    assert corpora.mc_letter("none") is None
    vqa = corpora.upstream_task_examples("position", 4, seed=0)
    assert corpora.score(vqa, [e["answer"].upper() + "." for e in vqa]) == 1.0
    assert corpora.score_percent(vqa, ["nowhere"] * 4) == 0.0
    caps = corpora.downstream_examples("caption_textured", 6, seed=0)
    assert corpora.score(caps, [e["answer"] for e in caps]) > 1.0
    with pytest.raises(ValueError):
        corpora.score(vqa + caps, [""] * 10)


def test_pretraining_choice_task_letters_point_at_the_scene_answer():
    exs = corpora.upstream_task_examples(corpora.CHOICE_TASK, 90, seed=0)
    kinds = set()
    for e in exs:
        assert e["task"] == "choice" and 3 <= len(e["choices"]) <= 4
        assert len(set(e["choices"])) == len(e["choices"])
        question = e["prompt"].split("\n")[0]
        assert e["prompt"].endswith("answer with the letter.")
        right = e["choices"][corpora.LETTERS.index(e["answer"])]
        s = e["scene"]
        if m := re.match(r"what color is the (\w+)\?", question):
            kinds.add("color")
            (hit,) = [o for o in s.objects if o.shape == m.group(1)]
            assert right == hit.color and set(e["choices"]) <= set(PALETTE)
        elif m := re.match(r"how many (\w+) are there\?", question):
            kinds.add("count")
            shape = {corpora._plural(x): x for x in SHAPES}[m.group(1)]
            assert right == str(s.count(shape)) and set(e["choices"]) <= {"0", "1", "2", "3"}
        else:
            kinds.add("position")
            color, shape = re.match(r"where is the (\w+) (\w+)\?", question).groups()
            assert right == s.find(color, shape).position and set(e["choices"]) <= set(POSITIONS.values())
    assert kinds == {"color", "count", "position"}
    assert corpora.score(exs[:2], [f"({exs[0]['answer']})", "Z"]) == 0.5
    mixture = corpora.upstream_examples(70, seed=0, tasks=corpora.PRETRAIN_TASKS)
    assert sorted(e["task"] for e in mixture) == sorted(t for t in corpora.PRETRAIN_TASKS for _ in range(10))


def test_the_describe_task_uses_every_downstream_word():
    """The pre-training "describe" sentences contain every word of the downstream captions
    and multiple-choice answers (issue 23), in templates of their own."""
    styles = ["plain", "textured", "dark"]
    describe = corpora.upstream_task_examples(corpora.DESCRIBE_TASK, 300, seed=0, styles=styles)
    seen = {w for e in describe for w in re.findall(r"[A-Za-z]+", e["answer"])}
    assert {e["prompt"] for e in describe} == {"describe the image in one sentence."}
    assert {"ball", "wedge", "striped", "and", "on", "same", "number"} <= seen
    mixture = corpora.upstream_examples(700, seed=0, tasks=corpora.PRETRAIN_TASKS, styles=styles)
    seen |= {w for e in mixture for w in re.findall(r"[A-Za-z]+", e["prompt"] + " " + e["answer"])}
    captions = corpora.downstream_examples("caption_textured", 300, seed=0)
    mcqa = corpora.downstream_examples("mcqa", 300, seed=0, mc_answer="text")
    words = {w for e in captions + mcqa for w in re.findall(r"[A-Za-z]+", e["answer"])}
    assert words - seen == set()
    refs = {r for e in captions for r in e["references"]}
    assert not refs & {e["answer"] for e in describe}  # other sentences, not the downstream ones
