import math

import pytest

from papers.spider.cider import cider_d, document_frequency, ngram_counts, tfidf, tokenize

LN2, LN3 = math.log(2), math.log(3)


def test_tokenize_lowercases_and_strips_punctuation():
    assert tokenize("A red Ball, on the (striped) mat!") == ["a", "red", "ball", "on", "the", "striped", "mat"]
    assert ngram_counts(["a", "b", "a"], 2) == {("a",): 2, ("b",): 1, ("a", "b"): 1, ("b", "a"): 1}


def test_identical_short_captions_hand_computed():
    # Two images, refs "a cat" / "a dog", candidates identical to them. N = 2, log N = ln 2.
    # df("a") = 2 -> weight ln2 - ln2 = 0; "cat", "a cat", "dog", "a dog": df = 1 -> weight ln2.
    # Unigram and bigram cosines are 1, 3- and 4-grams are empty (0); equal lengths: no
    # penalty. CIDEr-D = 10 * (1 + 1 + 0 + 0) / 4 = 5 for each image.
    score, per = cider_d(["a cat", "a dog"], [["a cat"], ["a dog"]])
    assert per == pytest.approx([5.0, 5.0]) and score == pytest.approx(5.0)


def test_idf_gives_a_shared_common_word_no_credit():
    # Image 1: candidate "a dog" against "a cat": the only shared n-gram is "a", whose idf
    # weight is 0 (it is in both images' references) -> 0. Image 2 identical -> 5.
    score, per = cider_d(["a dog", "a dog"], [["a cat"], ["a dog"]])
    assert per == pytest.approx([0.0, 5.0]) and score == pytest.approx(2.5)
    df = document_frequency([["a cat"], ["a dog"]])
    vec, norm, length = tfidf(ngram_counts(tokenize("a cat")), df, LN2)
    assert vec[0][("a",)] == 0.0 and vec[0][("cat",)] == pytest.approx(LN2)
    assert norm[1] == pytest.approx(LN2) and length == 1


def test_partial_idf_weights_hand_computed():
    # Three images, refs "red ball" / "red box" / "blue box"; N = 3. df(red) = df(box) = 2
    # -> weight a = ln3 - ln2 = ln 1.5; df(ball) = 1 -> b = ln 3.
    # Candidate 1 "red box" vs ref "red ball": unigram vectors (red a, box a) and
    # (red a, ball b): clipped dot = a^2, norms sqrt(2) a and sqrt(a^2 + b^2), cosine
    # a / (sqrt(2) sqrt(a^2 + b^2)) = 0.405465 / (1.414214 * 1.171047) = 0.244830; bigrams
    # differ (0); same length. CIDEr-D = 10 * 0.244830 / 4 = 0.612074.
    a, b = math.log(1.5), LN3
    expect = 10 * (a / (math.sqrt(2) * math.sqrt(a * a + b * b))) / 4
    assert expect == pytest.approx(0.612074, abs=1e-6)
    _, per = cider_d(["red box", "red box", "blue box"], [["red ball"], ["red box"], ["blue box"]])
    assert per[0] == pytest.approx(expect, rel=1e-9)
    assert per[1] == pytest.approx(5.0) and per[2] == pytest.approx(5.0)


def test_length_penalty_hand_computed():
    # Candidate "cat" vs ref "a cat" (refs as in the first test): unigram cosine 1 ("a" has
    # weight 0), no bigram in the candidate (0). Length = number of bigrams: 0 vs 1 ->
    # penalty exp(-1 / (2 * 6^2)) = exp(-1/72). CIDEr-D = 10 * exp(-1/72) / 4 = 2.465518.
    _, per = cider_d(["cat", "a dog"], [["a cat"], ["a dog"]])
    assert per[0] == pytest.approx(2.5 * math.exp(-1 / 72), rel=1e-12)
    assert per[0] == pytest.approx(2.465518, abs=1e-6)
    # a much longer candidate is penalised even when it contains the reference
    _, long = cider_d(["a cat " + "cat " * 20, "a dog"], [["a cat"], ["a dog"]])
    assert long[0] < 0.1


def test_clipping_of_repeated_words():
    # "cat cat" vs "a cat": candidate weight 2 ln2 for "cat", reference ln2; clipped dot
    # min(2 ln2, ln2) * ln2 = ln2^2 over norms 2 ln2 * ln2 -> 1/2 (1 without clipping).
    # No shared bigram; both have one bigram (no penalty). CIDEr-D = 10 * 0.5 / 4 = 1.25.
    _, per = cider_d(["cat cat", "a dog"], [["a cat"], ["a dog"]])
    assert per[0] == pytest.approx(1.25)


def test_references_are_averaged():
    # Candidate "a cat" with refs "a cat" and "the zebra" (df as before, "a" weight 0): the
    # per-order sims are (1, 1, 0, 0) against the first ref and 0 against the second, so
    # CIDEr-D = 10 * mean over refs of mean over n = 10 * (0.5 + 0) / 2 = 2.5.
    _, per = cider_d(["a cat", "a dog"], [["a cat", "the zebra"], ["a dog"]])
    assert per == pytest.approx([2.5, 5.0])


CORPUS = [
    ["A red ball on a striped background.", "a red disc against striped wallpaper"],
    ["A blue box and a green wedge.", "a green triangle next to a blue square"],
    ["Three shapes on a dotted pattern.", "a dotted background with three shapes"],
    ["A yellow plus sign in the middle.", "a yellow cross in the center"],
]


def test_identical_high_unrelated_zero_case_and_order():
    same = [r[0] for r in CORPUS]
    score, per = cider_d(same, CORPUS)
    assert min(per) > 2.0
    unrelated, per_u = cider_d(["zebra quantum xylophone"] * 4, CORPUS)
    assert unrelated == 0.0 and per_u == [0.0] * 4
    shouty = [s.upper().replace(" ", "  ") + "!!" for s in same]
    assert cider_d(shouty, CORPUS)[1] == pytest.approx(per)
    shuffled = [" ".join(reversed(tokenize(s))) for s in same]
    s_shuf, per_shuf = cider_d(shuffled, CORPUS)
    assert s_shuf < 0.5 * score and all(x < y for x, y in zip(per_shuf, per))


def test_errors_and_empty():
    assert cider_d([], []) == (0.0, [])
    with pytest.raises(ValueError):
        cider_d(["a"], [["a"], ["b"]])
    with pytest.raises(ValueError):
        cider_d(["a"], [[]])
