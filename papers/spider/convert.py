"""Converters from the paper's datasets, in the formats they are published in, to the JSONL of
the paper path (local.py): `<out>/<name>/{train,test}.jsonl`, image paths relative to
`<out>/<name>/`. Nothing is downloaded: point them at the files you have.

    python -m papers.spider.convert <name> --src <annotation file> [--questions <file>]
        --images <image directory> --out <data.local_dir>

What each reads (the train and test splits we write; a split the paper does not use is left
out):
- flickr30k, coco: Karpathy's split file (dataset_flickr30k.json / dataset_coco.json:
  {"images": [{"filename", "filepath"?, "split": train|restval|val|test, "sentences":
  [{"raw"}]}]}). train (+ restval): one line per caption; test: one line per image with
  every caption as references.
- scienceqa: problems.json ({qid: {"question", "choices", "answer": index, "hint", "image":
  file name or null, "split"}}), images at <images>/<split>/<qid>/<image>; the prompt is
  "Context: <hint>" (when there is one), the question and the lettered options, as LLaVA's
  ScienceQA prompts. Questions without an image become text-only lines.
- iconqa: the problem directory (<src>/<split>/choose_txt/<pid>/data.json with "question",
  "choices", "answer": index, and image.png beside it); only the multiple-choice-text kind.
- okvqa: the annotations (mscoco_val2014_annotations.json: {"annotations": [{"question_id",
  "image_id", "answers": [{"answer"}]}]}) and --questions
  (OpenEnded_mscoco_val2014_questions.json); images COCO_val2014_<12-digit id>.jpg. Written as
  the test split, with the ten answers as references.
- gqa: a questions file ({qid: {"imageId", "question", "answer"}}, e.g.
  testdev_balanced_questions.json); images <imageId>.jpg. Written as the test split.
- textvqa: TextVQA_0.5.1_val.json ({"data": [{"question", "image_id", "answers"}]});
  images <image_id>.jpg. Written as the test split (the test split has no answers).
- ocrvqa: dataset.json ({id: {"imageURL", "questions", "answers", "split": 1 train, 2 val,
  3 test}}); images <id><extension of imageURL>. Written as the test split.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from papers.spider.corpora import LETTERS
from shared import UserError

CAPTION_PROMPT = "Provide a one-sentence caption for the provided image."


def _read_json(path: str | Path):
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text") from None


def _need(obj, keys, where: str):
    if not isinstance(obj, dict):
        raise UserError(f"{where}: expected a JSON object")
    missing = [k for k in keys if k not in obj]
    if missing:
        raise UserError(f"{where}: missing {', '.join(repr(k) for k in missing)}")
    return obj


def _options(question: str, choices: list[str], hint: str = "") -> str:
    lines = ([f"Context: {hint.strip()}"] if hint and hint.strip() else []) + [question.strip()]
    lines += [f"{LETTERS[i]}. {c}" for i, c in enumerate(choices)]
    return "\n".join(lines)


def karpathy_captions(src, images) -> dict[str, list[dict]]:
    data = _need(_read_json(src), ["images"], str(src))
    out: dict[str, list[dict]] = {"train": [], "test": []}
    for i, im in enumerate(data["images"]):
        _need(im, ["filename", "split", "sentences"], f"{src}: images[{i}]")
        image = Path(images) / im.get("filepath", "") / im["filename"]
        refs = [s["raw"].strip() for s in im["sentences"]]
        if im["split"] in ("train", "restval"):
            out["train"] += [{"image": image, "prompt": CAPTION_PROMPT, "answer": r} for r in refs]
        elif im["split"] == "test":
            out["test"].append({"image": image, "prompt": CAPTION_PROMPT, "answer": refs[0], "references": refs})
    return out


def scienceqa(src, images) -> dict[str, list[dict]]:
    data = _read_json(src)
    if not isinstance(data, dict):
        raise UserError(f"{src}: expected an object of problems by id")
    out: dict[str, list[dict]] = {"train": [], "test": []}
    for qid, p in data.items():
        _need(p, ["question", "choices", "answer", "split"], f"{src}: problem {qid}")
        if p["split"] not in out:
            continue
        image = Path(images) / p["split"] / str(qid) / p["image"] if p.get("image") else None
        out[p["split"]].append({"image": image, "prompt": _options(p["question"], p["choices"], p.get("hint", "")),
                                "answer": LETTERS[int(p["answer"])], "choices": list(p["choices"])})
    return out


def iconqa(src, images=None) -> dict[str, list[dict]]:
    root = Path(src)
    if not root.is_dir():
        raise UserError(f"{root}: not a directory (the IconQA problem directory with train/ and test/)")
    out: dict[str, list[dict]] = {"train": [], "test": []}
    for split in out:
        for path in sorted((root / split / "choose_txt").glob("*/data.json")):
            p = _need(_read_json(path), ["question", "choices", "answer"], str(path))
            out[split].append({"image": path.parent / "image.png", "prompt": _options(p["question"], p["choices"]),
                               "answer": LETTERS[int(p["answer"])], "choices": list(p["choices"])})
    return out


def okvqa(src, images, questions) -> dict[str, list[dict]]:
    if not questions:
        raise UserError("okvqa needs --questions (OpenEnded_mscoco_val2014_questions.json)")
    qs = {q["question_id"]: q for q in _need(_read_json(questions), ["questions"], str(questions))["questions"]}
    rows = []
    for a in _need(_read_json(src), ["annotations"], str(src))["annotations"]:
        _need(a, ["question_id", "image_id", "answers"], f"{src}: annotation")
        q = qs.get(a["question_id"])
        if q is None:
            raise UserError(f"{questions}: no question {a['question_id']} (of the annotations in {src})")
        answers = [x["answer"] for x in a["answers"]]
        rows.append({"image": Path(images) / f"COCO_val2014_{int(a['image_id']):012d}.jpg", "prompt": q["question"],
                     "answer": max(set(answers), key=answers.count), "references": answers})
    return {"test": rows}


def gqa(src, images) -> dict[str, list[dict]]:
    data = _read_json(src)
    if not isinstance(data, dict):
        raise UserError(f"{src}: expected an object of questions by id")
    rows = []
    for qid, q in data.items():
        _need(q, ["imageId", "question", "answer"], f"{src}: question {qid}")
        rows.append({"image": Path(images) / f"{q['imageId']}.jpg", "prompt": q["question"], "answer": q["answer"]})
    return {"test": rows}


def textvqa(src, images) -> dict[str, list[dict]]:
    rows = []
    for i, q in enumerate(_need(_read_json(src), ["data"], str(src))["data"]):
        _need(q, ["question", "image_id", "answers"], f"{src}: data[{i}]")
        answers = list(q["answers"])
        rows.append({"image": Path(images) / f"{q['image_id']}.jpg", "prompt": q["question"],
                     "answer": max(set(answers), key=answers.count), "references": answers})
    return {"test": rows}


def ocrvqa(src, images) -> dict[str, list[dict]]:
    data = _read_json(src)
    if not isinstance(data, dict):
        raise UserError(f"{src}: expected an object of books by id")
    rows = []
    for key, book in data.items():
        _need(book, ["imageURL", "questions", "answers", "split"], f"{src}: book {key}")
        if int(book["split"]) != 3:
            continue
        ext = os.path.splitext(book["imageURL"])[1] or ".jpg"
        for q, a in zip(book["questions"], book["answers"], strict=True):
            rows.append({"image": Path(images) / f"{key}{ext}", "prompt": q, "answer": a})
    return {"test": rows}


CONVERTERS = {"flickr30k": karpathy_captions, "coco": karpathy_captions, "scienceqa": scienceqa,
              "iconqa": iconqa, "okvqa": okvqa, "gqa": gqa, "textvqa": textvqa, "ocrvqa": ocrvqa}


def convert(name: str, src, images=None, out=".", questions=None) -> dict[str, int]:
    """Write `<out>/<name>/<split>.jsonl` for every split the converter yields; returns
    {split: lines}. Every image must exist (a missing one is an error naming it)."""
    if name not in CONVERTERS:
        raise UserError(f"unknown dataset '{name}' (known: {', '.join(CONVERTERS)})")
    fn = CONVERTERS[name]
    splits = fn(src, images, questions) if name == "okvqa" else fn(src, images)
    target = Path(out) / name
    target.mkdir(parents=True, exist_ok=True)
    counts = {}
    for split, rows in splits.items():
        if not rows:
            continue
        lines = []
        for row in rows:
            image = row["image"]
            if image is not None:
                image = Path(image).resolve()
                if not image.is_file():
                    raise UserError(f"{name}: image {image} not found")
                image = os.path.relpath(image, target.resolve())
            lines.append(json.dumps({**row, "image": image}, ensure_ascii=False))
        tmp = target / f".{split}.jsonl.tmp"
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        os.replace(tmp, target / f"{split}.jsonl")
        counts[split] = len(lines)
    if not counts:
        raise UserError(f"{name}: {src} holds no train or test example")
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m papers.spider.convert", description=__doc__.split("\n\n")[0])
    parser.add_argument("name", help=", ".join(CONVERTERS))
    parser.add_argument("--src", required=True, help="the annotation file (iconqa: the problem directory)")
    parser.add_argument("--images", default=None, help="the image directory")
    parser.add_argument("--questions", default=None, help="okvqa: the questions file")
    parser.add_argument("--out", required=True, help="data.local_dir")
    args = parser.parse_args(argv)
    try:
        counts = convert(args.name, args.src, args.images or ".", args.out, args.questions)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(", ".join(f"{split}: {n} lines" for split, n in counts.items()) + f" -> {Path(args.out) / args.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
