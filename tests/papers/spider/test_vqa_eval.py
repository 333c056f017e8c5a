"""The official VQA accuracy on hand-made 10-answer cases, and its answer normalisation."""

import pytest

from papers.spider.vqa_eval import normalize, vqa_accuracy, vqa_score


@pytest.mark.parametrize("matches, expected", [(0, 0.0), (1, 0.3), (2, 0.6), (3, 0.9), (4, 1.0), (10, 1.0)])
def test_ten_annotators_leave_one_out(matches, expected):
    answers = ["dog"] * matches + ["cat", "horse", "cow", "bird", "fish", "mouse", "goat", "pig", "hen", "ox"][matches:]
    assert len(answers) == 10
    assert vqa_accuracy("dog", answers) == pytest.approx(expected, abs=1e-12)


def test_the_leave_one_out_mean_by_hand():
    # 2 of 10 match: the 2 subsets without a match have 1 match (1/3), the 8 others 2 (2/3)
    answers = ["red", "red"] + ["blue"] * 8
    assert vqa_accuracy("red", answers) == pytest.approx((2 * (1 / 3) + 8 * (2 / 3)) / 10)
    # blue (8 matches) is 1 in every subset
    assert vqa_accuracy("blue", answers) == 1.0


@pytest.mark.parametrize("raw, norm", [
    ("two", "2"), ("Two dogs.", "2 dogs"), ("none", "0"), ("ten", "10"),
    ("a dog", "dog"), ("The Dog", "dog"), ("an apple", "apple"),
    ("dont", "don't"), ("don't", "don't"), ("isnt", "isn't"),
    ("yes!", "yes"), ("yes.", "yes"), ("2.5", "2.5"), ("1,000", "1000"),
    ("red/white", "red white"), ("ice-cream", "ice cream"), ("left - right", "left right"),
    (" dog\n", "dog"), ("a\tdog", "dog"),
])
def test_the_official_normalisation(raw, norm):
    assert normalize(raw) == norm


def test_normalised_matches_count():
    answers = ["2"] * 3 + ["3"] * 7
    assert vqa_accuracy("two", answers) == pytest.approx(0.9)  # "two" == "2"
    assert vqa_accuracy("a dog", ["dog"] * 10) == 1.0
    assert vqa_accuracy("Dog.", ["dog"]) == 1.0  # one reference: exact match after normalising
    assert vqa_accuracy("cat", ["dog"]) == 0.0
    assert vqa_score(["dog", "cat"], [["dog"] * 10, ["dog"] * 10]) == pytest.approx(50.0)
    with pytest.raises(ValueError):
        vqa_accuracy("dog", [])
