"""CIDEr-D (Vedantam et al. 2015) as computed by the COCO caption evaluation, in pure Python.

For every image i with candidate c_i and references S_i = {s_i1, ..., s_im}:
- n-grams n = 1..4 of each sentence (after `tokenize`: lowercase, punctuation removed);
- document frequency df(g) = number of images whose reference set contains g (computed over
  the references of the scored corpus only); log N with N = number of images;
- the TF-IDF vector g_n(s)[g] = count_s(g) * (log N - log max(1, df(g))) for each n;
- sim_n(c, s) = sum_g min(g_n(c)[g], g_n(s)[g]) * g_n(s)[g] / (||g_n(c)|| ||g_n(s)||)
  (the clipped dot product; 0 if a norm is 0) times the length penalty
  exp(-(l(c) - l(s))^2 / (2 sigma^2)), sigma = 6, where l is the number of bigrams (the COCO
  code's "length": words - 1, a difference of which equals the word-count difference);
- CIDEr-D_i = 10 * mean_n mean_j sim_n(c_i, s_ij); the corpus score is the mean over images.

With a single image log N = 0, every weight is <= 0 and the score is 0 (as in the COCO code):
score a corpus, not one sentence.

Tokenizer: the COCO evaluation runs the Stanford PTBTokenizer (Java) first; `tokenize` here is
lower case, every non-word character a space, split on spaces. On the same tokens the scores
agree (checked against pycocoevalcap to 2e-16). The tokenizations differ on text our tiny
captions never hold: PTB splits clitics ("don't" -> "do n't", "dog's" -> "dog 's", which we
turn into "don t", "dog s"), keeps hyphenated words and decimals whole ("ice-cream", "2.5"; we
split them), and drops a fixed punctuation list where we drop every non-word character. On
real Flickr30k / COCO captions expect small differences from the published CIDEr-D.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Sequence

_PUNCT = re.compile(r"[^\w\s]|_")


def tokenize(text: str) -> list[str]:
    """Lowercase, drop punctuation, split on whitespace."""
    return _PUNCT.sub(" ", text.lower()).split()


def ngram_counts(words: Sequence[str], n: int = 4) -> Counter:
    counts: Counter = Counter()
    for k in range(1, n + 1):
        for i in range(len(words) - k + 1):
            counts[tuple(words[i : i + k])] += 1
    return counts


def document_frequency(references: Sequence[Sequence[str]], n: int = 4) -> Counter:
    """df(g): the number of images whose references contain n-gram g."""
    df: Counter = Counter()
    for refs in references:
        seen = set()
        for r in refs:
            seen.update(ngram_counts(tokenize(r), n))
        df.update(seen)
    return df


def tfidf(counts: Counter, df: Counter, log_n: float, n: int = 4):
    """(per-order TF-IDF dicts, per-order L2 norms, length = number of bigrams)."""
    vec = [defaultdict(float) for _ in range(n)]
    norm = [0.0] * n
    length = 0
    for gram, tf in counts.items():
        k = len(gram) - 1
        w = float(tf) * (log_n - math.log(max(1.0, float(df[gram]))))
        vec[k][gram] = w
        norm[k] += w * w
        if k == 1:
            length += tf
    return vec, [math.sqrt(v) for v in norm], length


def _sim(cand, ref, sigma: float, n: int) -> list[float]:
    vec_c, norm_c, len_c = cand
    vec_r, norm_r, len_r = ref
    delta = float(len_c - len_r)
    penalty = math.exp(-(delta * delta) / (2.0 * sigma * sigma))
    out = []
    for k in range(n):
        val = 0.0
        for gram, w in vec_c[k].items():
            wr = vec_r[k].get(gram, 0.0)
            val += min(w, wr) * wr
        if norm_c[k] != 0 and norm_r[k] != 0:
            val /= norm_c[k] * norm_r[k]
        out.append(val * penalty)
    return out


def cider_d(
    candidates: Sequence[str],
    references: Sequence[Sequence[str]],
    n: int = 4,
    sigma: float = 6.0,
) -> tuple[float, list[float]]:
    """(corpus CIDEr-D, per-image CIDEr-D) of candidates[i] against references[i]."""
    if len(candidates) != len(references):
        raise ValueError("candidates and references differ in length")
    if not candidates:
        return 0.0, []
    if any(len(r) == 0 for r in references):
        raise ValueError("every candidate needs at least one reference")
    df = document_frequency(references, n)
    log_n = math.log(float(len(references)))
    scores = []
    for cand, refs in zip(candidates, references):
        vc = tfidf(ngram_counts(tokenize(cand), n), df, log_n, n)
        total = [0.0] * n
        for r in refs:
            vr = tfidf(ngram_counts(tokenize(r), n), df, log_n, n)
            total = [a + b for a, b in zip(total, _sim(vc, vr, sigma, n))]
        scores.append(10.0 * (sum(total) / n) / len(refs))
    return sum(scores) / len(scores), scores
