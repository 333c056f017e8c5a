"""The official VQA accuracy (Antol et al. 2015; the VQA v2 evaluation), re-implemented.

Per question with annotator answers a_1..a_n (n = 10 in VQA v2, OK-VQA and TextVQA) and a
predicted answer p, after `normalize` on both:

    acc = mean over i of min(1, #{j != i : a_j == p} / 3)

the average over the n leave-one-annotator-out subsets. With m matching annotators out of 10
this is 0, 30, 60, 90, 100 % for m = 0, 1, 2, 3, >= 4 (not min(1, m/3) = 33.3 / 66.7 / 100).
A question with one reference answer (GQA) is exact match after `normalize`.

`normalize` follows the official answer processing:
- newlines and tabs become spaces; surrounding space is dropped;
- punctuation (the official list: ; / [ ] " { } ( ) = + \\ _ - > < @ ` , ? !, not the
  apostrophe or the colon): a mark is deleted where it touches a space on one side or the
  text has a comma between digits ("1,000"), else it becomes a space; a period is deleted
  unless a digit follows it ("2.5" stays; the official pattern's look-behind for a digit is
  written as a look-ahead, so only the digit after counts, as here);
- lower case; number words zero..ten become digits ("two" -> "2", "none" -> "0"); the
  articles a, an, the are dropped; contractions written without the apostrophe get it back
  ("dont" -> "don't"; our list leaves out forms that are also words, such as "its", "wed",
  "shed", "lets"). The official evaluation does the last three word by word, as here.
The released ground-truth answers are already in this form, so normalising them again
changes nothing for them; it makes hand-written references behave the same way.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

NUMBER_WORDS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
                "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
ARTICLES = frozenset({"a", "an", "the"})
# contractions as annotators type them without the apostrophe -> the official form
CONTRACTIONS = {
    "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've", "couldnt": "couldn't",
    "didnt": "didn't", "doesnt": "doesn't", "dont": "don't", "hadnt": "hadn't", "hasnt": "hasn't",
    "havent": "haven't", "hes": "he's", "howd": "how'd", "howll": "how'll", "hows": "how's",
    "im": "i'm", "ive": "i've", "isnt": "isn't", "itd": "it'd", "itll": "it'll",
    "maam": "ma'am", "mightnt": "mightn't", "mightve": "might've", "mustnt": "mustn't",
    "mustve": "must've", "neednt": "needn't", "shant": "shan't", "shes": "she's",
    "shouldve": "should've", "shouldnt": "shouldn't", "thats": "that's", "thered": "there'd",
    "theres": "there's", "theyd": "they'd", "theyll": "they'll", "theyre": "they're", "theyve": "they've",
    "wasnt": "wasn't", "weve": "we've", "werent": "weren't", "whatll": "what'll",
    "whatre": "what're", "whats": "what's", "whatve": "what've", "whens": "when's", "whered": "where'd",
    "wheres": "where's", "whereve": "where've", "whod": "who'd", "wholl": "who'll", "whos": "who's",
    "whove": "who've", "whyll": "why'll", "whyre": "why're", "whys": "why's", "wont": "won't",
    "wouldve": "would've", "wouldnt": "wouldn't", "yall": "y'all", "youd": "you'd", "youll": "you'll",
    "youre": "you're", "youve": "you've",
}
PUNCTUATION = tuple(";/[]\"{}()=+\\_-><@`,?!")
_DIGIT_COMMA = re.compile(r"(\d)(,)(\d)")
_PERIOD = re.compile(r"\.(?!\d)")


def _punctuation(text: str) -> str:
    has_digit_comma = _DIGIT_COMMA.search(text) is not None
    for mark in PUNCTUATION:
        if mark not in text:
            continue
        touches_space = (mark + " ") in text or (" " + mark) in text
        text = text.replace(mark, "" if touches_space or has_digit_comma else " ")
    return _PERIOD.sub("", text)


def _words(text: str) -> str:
    out = []
    for word in text.lower().split():
        word = NUMBER_WORDS.get(word, word)
        if word in ARTICLES:
            continue
        out.append(CONTRACTIONS.get(word, word))
    return " ".join(out)


def normalize(answer: str) -> str:
    """An answer in the official VQA evaluation's normal form (see the module docstring)."""
    text = answer.replace("\n", " ").replace("\t", " ").strip()
    return _words(_punctuation(text))


def vqa_accuracy(prediction: str, answers: Sequence[str]) -> float:
    """The official accuracy in [0, 1] of one prediction against its annotator answers
    (exact match after `normalize` when there is a single answer)."""
    if not answers:
        raise ValueError("vqa_accuracy needs at least one reference answer")
    p = normalize(prediction)
    refs = [normalize(a) for a in answers]
    if len(refs) == 1:
        return float(p == refs[0])
    matches = [r == p for r in refs]
    m = sum(matches)
    return sum(min(1.0, (m - hit) / 3.0) for hit in matches) / len(refs)


def vqa_score(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Mean `vqa_accuracy` in percent."""
    if len(predictions) != len(references):
        raise ValueError("predictions and references differ in length")
    if not predictions:
        return 0.0
    return 100.0 * sum(vqa_accuracy(p, r) for p, r in zip(predictions, references)) / len(predictions)
