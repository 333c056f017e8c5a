"""LLM backends: parsing and validation, the stub OpenAI-compatible server, fallbacks."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import numpy as np
import pytest

from papers.spagent.backends import LLMBackend, MalformedOutput, openai_complete, parse_intent
from papers.spagent.intent_model import Intent
from shared import UserError


@pytest.mark.parametrize("answer,msg", [
    ("sure! here you go", "no JSON"), ('{"e_t": "edit",}', "does not parse"),
    ('{"e_t": "dance"}', "e_t"), ('{"e_t": "describe", "colour": "teal"}', "colour"),
    ('{"e_t": "describe", "subject": "dragon"}', "subject"), ('{"e_t": "describe", "agree": "yes"}', "agree"),
    ('{"e_t": "describe", "style": "loud"}', "style"), ("", "no JSON")])
def test_malformed_answers_are_refused_with_a_reason(answer, msg):
    with pytest.raises(MalformedOutput, match=msg):
        parse_intent(answer, "none")


def test_a_valid_answer_is_parsed_and_e_t_must_fit_the_attachment():
    data = parse_intent('Answer: {"e_t": "edit", "colour": "green", "subject": "bird", "style": "calm"} done', "image")
    assert data == {"e_t": "edit", "agree": None, "colour": "green", "subject": "parrot", "style": "calm"}
    with pytest.raises(MalformedOutput):
        parse_intent('{"e_t": "edit"}', "none")


class _Encoder:
    def read(self, frames):
        return ("red", "parrot")


def _fallback(text, image=None, video=None):
    return Intent("describe", "none", True, "blue", "fish")


@pytest.fixture
def stub_server():
    """An OpenAI-compatible stub on 127.0.0.1 answering the queued contents in turn."""
    answers = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            assert body["messages"][0]["role"] == "system"
            reply = answers.pop(0)
            data = reply if isinstance(reply, bytes) else json.dumps(
                {"choices": [{"message": {"role": "assistant", "content": reply}}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/v1", answers
    server.shutdown()
    server.server_close()


def test_openai_backend_against_the_stub(stub_server, capsys):
    url, answers = stub_server
    backend = LLMBackend(openai_complete(url, "stub", 5), _Encoder(), _fallback)
    img = np.zeros((32, 32, 3), np.uint8)
    answers.append('{"e_t": "animate", "colour": "green", "subject": "parrot", "style": "lively"}')
    i = backend("let the green parrot fly", image=img)
    assert (i.e_t, i.e_v, i.colour, i.style, i.motion) == ("animate", "image", "green", "lively", "fly")
    assert i.agree is False  # the encoder reads a red parrot: A is checked on the pixels
    answers.append("I cannot help with that")
    assert backend("a blue fish").colour == "blue"  # fell back to the default model
    assert "unusable" in capsys.readouterr().err
    answers.append(b"<html>oops</html>")
    assert backend("a blue fish").subject == "fish"


def test_no_fallback_is_one_user_error(stub_server):
    url, answers = stub_server
    answers.append('{"e_t": "nonsense"}')
    with pytest.raises(UserError, match="unusable"):
        LLMBackend(openai_complete(url, "stub", 5), _Encoder(), None)("a red cat")


def test_unreachable_server_falls_back():
    backend = LLMBackend(openai_complete("http://127.0.0.1:9/v1", "x", 1), _Encoder(), _fallback)
    assert backend("a red cat").subject == "fish"


def test_transformers_backend_on_a_tiny_local_causal_lm(tmp_path, capsys):
    from transformers import GPT2Config, GPT2LMHeadModel

    from papers.spagent.backends import transformers_complete
    from tests.papers.spagent.tiny_pipelines import tokenizer

    tok = tokenizer()
    GPT2LMHeadModel(GPT2Config(vocab_size=16, n_positions=256, n_embd=8, n_layer=1, n_head=2)).save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    backend = LLMBackend(transformers_complete(str(tmp_path), 4), _Encoder(), _fallback)
    assert backend("a red parrot").subject == "fish"  # random weights answer no JSON: the fallback
    assert "unusable" in capsys.readouterr().err
    with pytest.raises(UserError, match="no such directory"):
        transformers_complete(str(tmp_path / "nope"), 4)
