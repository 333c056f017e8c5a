"""Pluggable intent backends: an LLM fills the intent schema instead of the trained model.

- `openai`: an OpenAI-compatible chat endpoint (POST {url}/chat/completions);
- `transformers`: a local causal-LM directory (AutoModelForCausalLM + its tokenizer).

The answer must hold one JSON object with the schema's fields; it is parsed and validated
(`parse_intent`). Malformed output falls back to the default model (backend.fallback=true)
with one warning line, or is a one-line error; it never crashes the agent. E_V is always
what is attached, and A is checked on the pixels by the encoder when the LLM omits it.
"""

from __future__ import annotations

import json
import re
import sys

from papers.spagent import lexicon, scenes
from papers.spagent.intent_model import Intent, agreement
from papers.spagent.intents import E_T
from shared import UserError

SYSTEM = ("You read a video-generation request and answer with one JSON object and nothing else: "
          '{"e_t": one of ' + "/".join(E_T) + ', "agree": true or false (does the text agree with the attached '
          'image or video), "colour": the colour the text asks for or null, "subject": the subject or null, '
          '"style": neutral/calm/lively}. Colours: ' + ", ".join(scenes.COLOURS) + ". Subjects: "
          + ", ".join(scenes.SUBJECTS) + ".")


class MalformedOutput(ValueError):
    """The backend's answer does not fit the intent schema."""


def parse_intent(answer: str, e_v: str) -> dict:
    """The first JSON object in `answer`, validated against the schema."""
    m = re.search(r"\{.*?\}", answer or "", re.S)
    if not m:
        raise MalformedOutput("no JSON object in the answer")
    try:
        data = json.loads(m.group(0))
    except json.JSONDecodeError as exc:
        raise MalformedOutput(f"the JSON does not parse ({exc.msg})") from None
    if not isinstance(data, dict):
        raise MalformedOutput("the answer is not a JSON object")
    e_t = data.get("e_t")
    allowed = {"none": ("describe",), "image": ("describe", "animate", "edit"), "video": ("edit", "new_content")}[e_v]
    if e_t not in allowed:
        raise MalformedOutput(f"e_t={e_t!r} is not one of {', '.join(allowed)} for a request with {e_v}")
    colour, subject = data.get("colour"), data.get("subject")
    if colour is not None and colour not in scenes.COLOURS:
        raise MalformedOutput(f"colour={colour!r} is not a known colour")
    if subject is not None:
        subject = lexicon.SUBJECT_WORDS.get(str(subject).lower())
        if subject is None:
            raise MalformedOutput(f"subject={data.get('subject')!r} is not a known subject")
    style = data.get("style", "neutral")
    if style not in lexicon.STYLES:
        raise MalformedOutput(f"style={style!r} is not one of {', '.join(lexicon.STYLES)}")
    agree = data.get("agree")
    if agree is not None and not isinstance(agree, bool):
        raise MalformedOutput(f"agree={agree!r} is not true or false")
    return {"e_t": e_t, "agree": agree, "colour": colour, "subject": subject, "style": style}


class LLMBackend:
    """Ask `complete(prompt) -> str`, parse, validate; fall back or raise one line."""

    def __init__(self, complete, encoder, fallback=None):
        self.complete, self.encoder, self.fallback = complete, encoder, fallback

    def __call__(self, text: str, image=None, video=None) -> Intent:
        e_v = "video" if video is not None else "image" if image is not None else "none"
        try:
            answer = self.complete(f"Request: {text}\nAttached: {e_v}\nJSON:")
            data = parse_intent(answer, e_v)
        except (MalformedOutput, OSError, TimeoutError) as exc:
            if self.fallback is None:
                raise UserError(f"the LLM backend's answer is unusable: {exc}") from None
            print(f"warning: the LLM backend's answer is unusable ({exc}); using the default intent model",
                  file=sys.stderr, flush=True)
            return self.fallback(text, image, video)
        parsed = lexicon.parse(text)
        intent = Intent(data["e_t"], e_v, True, data["colour"], data["subject"], data["style"],
                        parsed["background"], parsed["motion"])
        visual = image if video is None else video[0]
        intent.agree = data["agree"] if data["agree"] is not None else agreement(intent, visual, self.encoder)
        return intent


def openai_complete(url: str, model: str, timeout: float):
    """A completion function for an OpenAI-compatible chat endpoint (urllib, no SDK)."""
    import urllib.error
    import urllib.request

    endpoint = url.rstrip("/") + "/chat/completions"

    def complete(prompt: str) -> str:
        body = json.dumps({"model": model, "temperature": 0, "messages": [
            {"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]}).encode()
        req = urllib.request.Request(endpoint, data=body, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                payload = json.loads(resp.read().decode())
        except urllib.error.HTTPError as exc:
            raise MalformedOutput(f"HTTP {exc.code} from {endpoint}") from None
        except urllib.error.URLError as exc:
            raise OSError(f"cannot reach {endpoint}: {exc.reason}") from None
        except json.JSONDecodeError:
            raise MalformedOutput("the server's reply is not JSON") from None
        try:
            return payload["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise MalformedOutput("the reply has no choices[0].message.content") from None

    return complete


def transformers_complete(path: str, max_new_tokens: int):
    """A completion function over a local causal LM directory (greedy decoding)."""
    from pathlib import Path

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not Path(path).is_dir():
        raise UserError(f"backend.path={path}: no such directory")
    try:
        tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise UserError(f"backend.path={path}: not a causal-LM directory ({str(exc).splitlines()[0][:120]})") from None
    model.eval()

    def complete(prompt: str) -> str:
        ids = tok(SYSTEM + "\n" + prompt, return_tensors="pt")
        with torch.no_grad():
            out = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id)
        return tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)

    return complete


def make_recogniser(cfg, lib):
    """The intent recogniser the config asks for: (text, image, video) -> Intent."""
    default = lib.intent_model().predict
    b = cfg.backend
    if b.kind == "default":
        return default
    complete = openai_complete(b.url, b.model, b.timeout) if b.kind == "openai" else \
        transformers_complete(b.path, b.max_new_tokens)
    return LLMBackend(complete, lib.encoder, default if b.fallback else None)
