"""Each converter on a tiny hand-made file in its dataset's published format: the JSONL it
writes loads with local.load_dataset and holds the right prompts, answers and references."""

import json

import numpy as np
import pytest
from PIL import Image

from papers.spider import local
from papers.spider.convert import CAPTION_PROMPT, convert, main


def _png(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((4, 6, 3), dtype=np.uint8)).save(path)
    return path


def _json(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))
    return path


@pytest.mark.parametrize("name", ["flickr30k", "coco"])
def test_karpathy_captions(tmp_path, name):
    imgs = tmp_path / "img"
    _png(imgs / "a.jpg"), _png(imgs / "val2014" / "b.jpg"), _png(imgs / "c.jpg")
    src = _json(tmp_path / "dataset.json", {"images": [
        {"filename": "a.jpg", "split": "train", "sentences": [{"raw": "A dog runs."}, {"raw": "A dog."}]},
        {"filename": "b.jpg", "filepath": "val2014", "split": "restval", "sentences": [{"raw": "A cat."}]},
        {"filename": "c.jpg", "split": "test", "sentences": [{"raw": "Two men."}, {"raw": "Men talk."}]},
        {"filename": "c.jpg", "split": "val", "sentences": [{"raw": "unused"}]}]})
    assert convert(name, src, imgs, tmp_path / "out") == {"train": 3, "test": 1}
    train = local.load_dataset(tmp_path / "out", name, "train")
    assert [e["answer"] for e in train] == ["A dog runs.", "A dog.", "A cat."]
    assert train[0]["prompt"] == CAPTION_PROMPT and train[0]["task"] == "caption"
    (test,) = local.load_dataset(tmp_path / "out", name, "test", suffix=True)
    assert test["references"] == ["Two men.", "Men talk."] and test["prompt"] == CAPTION_PROMPT


def test_scienceqa_with_a_text_only_question(tmp_path):
    imgs = tmp_path / "images"
    _png(imgs / "train" / "1" / "image.png")
    src = _json(tmp_path / "problems.json", {
        "1": {"question": "Which is a mammal?", "choices": ["cat", "fish"], "answer": 0, "hint": "Look.",
              "image": "image.png", "split": "train"},
        "2": {"question": "Which is hot?", "choices": ["ice", "fire", "snow"], "answer": 1, "hint": "",
              "image": None, "split": "test"},
        "3": {"question": "x", "choices": ["a", "b"], "answer": 0, "hint": "", "image": None, "split": "val"}})
    assert convert("scienceqa", src, imgs, tmp_path / "out") == {"train": 1, "test": 1}
    (train,) = local.load_dataset(tmp_path / "out", "scienceqa", "train")
    assert train["prompt"] == "Context: Look.\nWhich is a mammal?\nA. cat\nB. fish" and train["answer"] == "A"
    (test,) = local.load_dataset(tmp_path / "out", "scienceqa", "test", suffix=True)
    assert test["image"] is None and test["answer"] == "B"
    assert test["prompt"] == "Which is hot?\nA. ice\nB. fire\nC. snow\n" + local.SUFFIXES["mcqa"]


def test_iconqa(tmp_path):
    for split, pid, answer in (("train", "7", 2), ("test", "9", 0)):
        d = tmp_path / "iconqa" / split / "choose_txt" / pid
        _json(d / "data.json", {"question": "How many?", "choices": ["1", "2", "3"], "answer": answer,
                                "ques_type": "choose_txt"})
        _png(d / "image.png")
    _json(tmp_path / "iconqa" / "train" / "fill_in_blank" / "5" / "data.json", {"question": "?"})
    assert convert("iconqa", tmp_path / "iconqa", None, tmp_path / "out") == {"train": 1, "test": 1}
    (train,) = local.load_dataset(tmp_path / "out", "iconqa", "train")
    assert train["answer"] == "C" and train["choices"] == ["1", "2", "3"]


def test_okvqa_ten_answers(tmp_path):
    _png(tmp_path / "val2014" / "COCO_val2014_000000000042.jpg")
    answers = ["umbrella"] * 3 + ["parasol"] * 7
    src = _json(tmp_path / "ann.json", {"annotations": [
        {"question_id": 5, "image_id": 42, "answers": [{"answer": a} for a in answers]}]})
    qs = _json(tmp_path / "q.json", {"questions": [{"question_id": 5, "image_id": 42, "question": "What is it?"}]})
    assert convert("okvqa", src, tmp_path / "val2014", tmp_path / "out", questions=qs) == {"test": 1}
    (e,) = local.load_dataset(tmp_path / "out", "okvqa", "test")
    assert e["references"] == answers and e["answer"] == "parasol" and e["task"] == "vqa"
    assert local.score_local([e], ["umbrella"]) == pytest.approx(90.0)


def test_gqa_textvqa_ocrvqa(tmp_path):
    _png(tmp_path / "img" / "n1.jpg"), _png(tmp_path / "img" / "t1.jpg"), _png(tmp_path / "img" / "b1.png")
    gqa = _json(tmp_path / "gqa.json", {"q1": {"imageId": "n1", "question": "Is it red?", "answer": "yes"}})
    assert convert("gqa", gqa, tmp_path / "img", tmp_path / "out") == {"test": 1}
    assert local.load_dataset(tmp_path / "out", "gqa", "test")[0]["references"] == ["yes"]
    tv = _json(tmp_path / "tv.json", {"data": [{"question": "What brand?", "image_id": "t1",
                                                "answers": ["nike"] * 6 + ["adidas"] * 4}]})
    assert convert("textvqa", tv, tmp_path / "img", tmp_path / "out") == {"test": 1}
    (e,) = local.load_dataset(tmp_path / "out", "textvqa", "test")
    assert e["answer"] == "nike" and len(e["references"]) == 10
    ocr = _json(tmp_path / "ocr.json", {
        "b1": {"imageURL": "http://x/b1.png", "questions": ["Who wrote it?", "Title?"], "answers": ["Ann", "Go"],
               "split": 3},
        "b2": {"imageURL": "http://x/b2.jpg", "questions": ["q"], "answers": ["a"], "split": 1}})
    assert convert("ocrvqa", ocr, tmp_path / "img", tmp_path / "out") == {"test": 2}
    assert [e["answer"] for e in local.load_dataset(tmp_path / "out", "ocrvqa", "test")] == ["Ann", "Go"]


def test_converter_errors_are_one_line(tmp_path, capsys):
    assert main(["vqav2", "--src", "x", "--out", str(tmp_path)]) == 2
    assert main(["gqa", "--src", str(tmp_path / "none.json"), "--out", str(tmp_path)]) == 2
    (tmp_path / "bad.json").write_text("{")
    assert main(["gqa", "--src", str(tmp_path / "bad.json"), "--out", str(tmp_path)]) == 2
    _json(tmp_path / "g.json", {"q": {"imageId": "missing", "question": "?", "answer": "no"}})
    assert main(["gqa", "--src", str(tmp_path / "g.json"), "--images", str(tmp_path), "--out", str(tmp_path)]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 4 and all(line.startswith("error: ") for line in errors)
    assert "unknown dataset" in errors[0] and "not found" in errors[1] and "not valid JSON" in errors[2]
    assert "missing.jpg not found" in errors[3]
