import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch
from transformers import AutoTokenizer, LlavaForConditionalGeneration

from papers.spider import corpora, mllm

SMALL = dict(image_size=36, patch_size=12, vision_width=32, vision_layers=1, text_width=32, text_layers=3, heads=2)


@pytest.fixture(scope="module")
def data():
    up = corpora.upstream_examples(40, seed=0)
    down = corpora.downstream_examples("mcqa", 10, seed=0) + corpora.downstream_examples("caption_textured", 10, seed=0)
    return up, down


@pytest.fixture(scope="module")
def tok(data):
    up, down = data
    return mllm.train_tokenizer(mllm.corpus_texts(up + down), vocab_size=300)


@pytest.fixture(scope="module")
def model(tok):
    torch.set_num_threads(1)
    return mllm.build_model(tok, seed=0, **SMALL)


def test_tokenizer_special_tokens_and_round_trip(tok, tmp_path):
    for name, token in [("pad", "<pad>"), ("bos", "<s>"), ("eos", "</s>"), ("unk", "<unk>")]:
        assert getattr(tok, f"{name}_token") == token
    assert [tok.convert_tokens_to_ids(t) for t in mllm.SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
    assert mllm.image_token_id(tok) == 4
    assert tok("<image><image>", add_special_tokens=False)["input_ids"] == [4, 4]
    for text in ["\nUSER: what color is the circle?\nASSISTANT: red", "Zebra 123 — ünïcode!"]:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert tok.decode(ids) == text
    tok.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    assert again.convert_tokens_to_ids("<image>") == 4
    assert again("a red circle")["input_ids"] == tok("a red circle")["input_ids"]


def test_build_model_is_deterministic_and_leaves_global_rng(tok):
    state = torch.get_rng_state()
    a = mllm.build_model(tok, seed=3, **SMALL).state_dict()
    assert torch.equal(state, torch.get_rng_state())
    b = mllm.build_model(tok, seed=3, **SMALL).state_dict()
    c = mllm.build_model(tok, seed=4, **SMALL).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_forward_finite_loss_and_image_token_expansion(model, tok, data):
    up, down = data
    n_img = mllm.num_image_tokens(model)
    assert n_img == (36 // 12) ** 2
    batch = mllm.encode(up[:4] + down[:4], tok, n_img)
    assert batch["pixel_values"].shape == (8, 3, 36, 36)
    assert ((batch["input_ids"] == 4).sum(1) == n_img).all()
    out = model(**batch)
    assert torch.isfinite(out.loss)
    assert out.logits.shape[:2] == batch["input_ids"].shape
    # the model checks one <image> token per patch feature: one copy fewer fails
    bad = mllm.encode(up[:2], tok, n_img - 1)
    with pytest.raises(Exception, match="(?i)image"):
        model(**bad)


def test_labels_mask_prompt_and_supervise_answer(tok, data):
    up, _ = data
    ex = up[:3]
    batch = mllm.encode(ex, tok, 9)
    for i, e in enumerate(ex):
        ids, lab, mask = batch["input_ids"][i], batch["labels"][i], batch["attention_mask"][i]
        sup = (lab != -100).nonzero().flatten().tolist()
        answer = tok(" " + e["answer"], add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        assert ids[sup].tolist() == answer == lab[sup].tolist()
        assert sup == list(range(sup[0], sup[0] + len(answer)))  # contiguous, right after the prompt
        prompt = tok.decode(ids[: sup[0]])
        assert prompt.endswith("ASSISTANT:") and e["prompt"] in prompt
        assert int(mask.sum()) == sup[-1] + 1  # right padding is masked and unsupervised
        assert (lab[sup[-1] + 1 :] == -100).all()
    left = mllm.encode(ex, tok, 9, with_answer=False, padding_side="left")
    assert "labels" not in left and (left["input_ids"][:, -1] != tok.pad_token_id).all()


def test_trainable_parameters_are_projector_and_last_two_layers(model):
    proj, lm = mllm.trainable_parameters(model, last_layers=2, named=True)
    names = dict(model.named_parameters())
    expect_proj = {n for n in names if n.startswith("model.multi_modal_projector.")}
    expect_lm = {n for n in names if n.startswith(("model.language_model.layers.1.", "model.language_model.layers.2."))}
    assert {n for n, _ in proj} == expect_proj and len(expect_proj) == 4
    assert {n for n, _ in lm} == expect_lm and len(expect_lm) == 2 * 9
    assert all(names[n] is p for n, p in proj + lm)
    p_only, l_only = mllm.trainable_parameters(model)
    assert [id(p) for p in p_only] == [id(p) for _, p in proj]
    groups = mllm.param_groups(model, lm_lr=2e-4)
    assert groups[0]["lr"] == pytest.approx(2e-5) and groups[1]["lr"] == pytest.approx(2e-4)


def test_freeze_for_finetuning(tok):
    m = mllm.build_model(tok, seed=0, **SMALL)
    proj, lm = mllm.freeze_for_finetuning(m)
    keep = {id(p) for p in proj + lm}
    assert all(p.requires_grad == (id(p) in keep) for p in m.parameters())


def test_pretrain_overfits_and_is_deterministic(tok, data):
    up, _ = data
    few = [e for e in up if e["task"] != "caption"][:8]
    runs = []
    for _ in range(2):
        m = mllm.build_model(tok, seed=1, **SMALL)
        runs.append(mllm.pretrain(m, tok, few, steps=80, lr=1e-2, batch_size=8, seed=0, warmup=0))
    assert runs[0] == runs[1]
    losses = runs[0]
    assert sum(losses[-5:]) / 5 < 0.05 * sum(losses[:5]) / 5
    preds = mllm.generate_answers(m, tok, few, batch_size=8)
    assert sum(p == e["answer"] for p, e in zip(preds, few)) >= 6


def test_greedy_generation_strings_and_left_padding(model, tok, data):
    up, down = data
    ex = up[:3] + down[:3]  # prompts of different lengths: left padding in one batch
    model.train()
    together = mllm.generate_answers(model, tok, ex, max_new_tokens=6, batch_size=6)
    alone = [mllm.generate_answers(model, tok, [e], max_new_tokens=6)[0] for e in ex]
    assert all(isinstance(p, str) for p in together)
    assert together == alone
    assert model.training  # generate_answers restores the mode


def test_save_and_reload_same_logits(model, tok, data, tmp_path):
    up, _ = data
    batch = mllm.encode(up[:2], tok, mllm.num_image_tokens(model))
    model.eval()
    model.save_pretrained(tmp_path)
    again = LlavaForConditionalGeneration.from_pretrained(tmp_path, local_files_only=True).eval()
    with torch.no_grad():
        assert torch.allclose(model(**batch).logits, again(**batch).logits, atol=1e-6)


def test_length_grouped_batches_cover_each_example_once():
    gen = torch.Generator().manual_seed(0)
    lengths = [i % 7 for i in range(100)]
    batches = mllm.length_grouped_batches(100, 10, gen, lengths, mega=5)
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(100)) and all(len(b) == 10 for b in batches)
    spread = [max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches]
    assert sum(spread) / len(spread) < 3  # similar lengths batched together
