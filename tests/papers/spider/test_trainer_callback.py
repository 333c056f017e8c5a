"""The SPIDER rule inside a real `transformers.Trainer`: G against the recorded clipped
gradients under gradient accumulation, resume from a Trainer checkpoint (θ₀ and G restored
exactly), and the refusal of ZeRO / FSDP."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from papers.spider.spider import RULE_STATE_FILE, SPIDER, rule_callback, sharding_problem
from shared import UserError


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 3)
        self.out = nn.Linear(3, 1)

    def forward(self, x, labels=None):
        y = self.out(torch.tanh(self.lin(x))).squeeze(-1)
        return {"loss": ((y - labels) ** 2).mean(), "logits": y}


class Data(torch.utils.data.Dataset):
    def __len__(self):
        return 16

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return {"x": torch.randn(4, generator=g), "labels": torch.tensor(float(i % 3))}


def _trainer(tmp_path, model, callbacks, **kw):
    from transformers import Trainer, TrainingArguments

    args = dict(output_dir=str(tmp_path), per_device_train_batch_size=2, gradient_accumulation_steps=2,
                max_steps=4, learning_rate=0.05, report_to=[], use_cpu=True, save_strategy="no",
                logging_strategy="no", max_grad_norm=0.05, seed=0, dataloader_num_workers=0,
                disable_tqdm=True)
    args.update(kw)
    return Trainer(model=model, args=TrainingArguments(**args), train_dataset=Data(), callbacks=callbacks)


def _model():
    torch.manual_seed(0)
    return Tiny()


def _recorder(store):
    from transformers import TrainerCallback

    class Record(TrainerCallback):
        def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
            store.append({n: p.grad.detach().clone() for n, p in model.named_parameters()})

    return Record()


def test_g_is_the_sum_of_the_clipped_accumulated_gradients(tmp_path):
    grads = []
    rule = SPIDER()
    _trainer(tmp_path, _model(), [_recorder(grads), rule_callback(rule)]).train()
    assert len(grads) == 4  # one optimizer step per 2 accumulated micro-batches
    for g in grads:  # clipping was active: every step's global norm is the clip norm
        norm = torch.sqrt(sum((t.double() ** 2).sum() for t in g.values()))
        assert float(norm) == pytest.approx(0.05, rel=1e-4)
    for name, g_sum in rule.grad_sum.items():
        expected = torch.zeros_like(g_sum)
        for g in grads:
            expected.add_(g[name])
        assert torch.equal(g_sum, expected)


def test_resume_restores_theta0_and_g_exactly(tmp_path):
    from safetensors.torch import load_file
    from transformers import TrainerCallback

    full = SPIDER()
    model = _model()
    theta0 = {n: p.detach().clone() for n, p in model.named_parameters()}
    _trainer(tmp_path, model, [rule_callback(full)], save_strategy="steps", save_steps=2).train()
    ckpt = tmp_path / "checkpoint-2"
    saved = load_file(str(ckpt / RULE_STATE_FILE))
    assert all(torch.equal(saved[f"theta0.{n}"], t) for n, t in theta0.items())

    seen = {}

    class Probe(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            seen.update({k: v.clone() for k, v in resumed.state_dict().items()})

    resumed = SPIDER()
    _trainer(tmp_path, _model(), [rule_callback(resumed), Probe()], save_strategy="steps",
             save_steps=2).train(resume_from_checkpoint=str(ckpt))
    assert seen.keys() == saved.keys()
    assert all(torch.equal(seen[k], saved[k]) for k in saved)  # θ₀ and G as checkpointed
    assert seen["grad_sum.lin.weight"].abs().sum() > 0  # G did not restart at 0
    for n in theta0:  # the resumed run ends where the uninterrupted one did
        assert torch.allclose(resumed.grad_sum[n], full.grad_sum[n], atol=1e-6)
        assert torch.equal(resumed.theta0[n], theta0[n])


def test_resume_without_the_rule_state_is_refused(tmp_path):
    _trainer(tmp_path, _model(), [rule_callback(SPIDER())], save_strategy="steps", save_steps=2).train()
    ckpt = tmp_path / "checkpoint-2"
    os.remove(ckpt / RULE_STATE_FILE)
    with pytest.raises(UserError, match="θ₀ and running state cannot be restored"):
        _trainer(tmp_path, _model(), [rule_callback(SPIDER())]).train(resume_from_checkpoint=str(ckpt))


def test_zero_and_fsdp_are_refused(monkeypatch):
    monkeypatch.delenv("ACCELERATE_USE_DEEPSPEED", raising=False)
    monkeypatch.delenv("ACCELERATE_USE_FSDP", raising=False)
    assert sharding_problem(SimpleNamespace(deepspeed=None, fsdp="")) is None
    assert "DeepSpeed" in sharding_problem(SimpleNamespace(deepspeed="zero3.json", fsdp=""))
    assert "FSDP" in sharding_problem(SimpleNamespace(deepspeed=None, fsdp="full_shard"))
    acc = SimpleNamespace(state=SimpleNamespace(deepspeed_plugin=object(), fsdp_plugin=None))
    assert "DeepSpeed" in sharding_problem(accelerator=acc)
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    assert "FSDP" in sharding_problem()
    monkeypatch.delenv("ACCELERATE_USE_FSDP")
    cb = rule_callback(SPIDER())
    with pytest.raises(UserError, match="full gradient") as info:
        cb.on_train_begin(SimpleNamespace(deepspeed="zero2.json", fsdp=""), SimpleNamespace(global_step=0), None,
                          model=Tiny())
    assert "\n" not in str(info.value)
