import pytest
import torch

from shared.offline_rl.benchmark import (
    MinimalDT,
    bare_step_rate,
    dt_batch,
    dt_step_times,
    evaluator_rate,
    generation_rate,
    masked_eval_times,
)
from shared.offline_rl.dt import DecisionTransformer
from shared.offline_rl.tasks import ACT_DIM, OBS_DIM


def test_benchmark_functions_return_positive_rates():
    assert bare_step_rate("reach-v3", 50) > 0
    assert generation_rate(["reach-v3"], 2, 5, workers=1) > 0
    assert generation_rate(["reach-v3"], 2, 5, workers=1, write=True) > 0
    assert evaluator_rate(["reach-v3"], [0, 1], 5, workers=1) > 0


def _copy_into_minimal(shared, minimal):
    """Load the shared DT's weights into the reference (GPT-2's Conv1D stores [in, out])."""
    state = {k: v for k, v in shared.state_dict().items() if not k.startswith("transformer.")}
    for i in range(len(minimal.blocks)):
        g = f"transformer.h.{i}."
        src = shared.state_dict()
        for ln in ("ln_1", "ln_2"):
            state[f"blocks.{i}.{ln}.weight"], state[f"blocks.{i}.{ln}.bias"] = src[g + ln + ".weight"], src[g + ln + ".bias"]
        for mine, theirs in (("qkv", "attn.c_attn"), ("proj", "attn.c_proj"), ("fc", "mlp.c_fc"),
                             ("out", "mlp.c_proj")):
            state[f"blocks.{i}.{mine}.weight"] = src[g + theirs + ".weight"].T
            state[f"blocks.{i}.{mine}.bias"] = src[g + theirs + ".bias"]
    state["ln_f.weight"], state["ln_f.bias"] = shared.transformer.ln_f.weight, shared.transformer.ln_f.bias
    state["causal"] = minimal.causal
    minimal.load_state_dict(state)


@pytest.mark.parametrize("activation", ["relu", "gelu_pytorch_tanh"])
def test_the_minimal_reference_is_the_same_network_as_the_shared_dt(activation):
    size = {"hidden": 16, "layers": 2, "heads": 2, "context": 5, "max_ep_len": 50,
            "dropout": 0.0, "activation": activation}
    torch.manual_seed(0)
    shared = DecisionTransformer(OBS_DIM, ACT_DIM, conditioning="none", **size).eval()
    minimal = MinimalDT(OBS_DIM, ACT_DIM, **size).eval()
    assert sum(p.numel() for p in minimal.parameters()) == sum(
        p.numel() for p in shared.parameters() if p.requires_grad)
    batch = dt_batch(8, 5, max_ep_len=50)
    assert not batch["mask"].all()  # some rows are left-padded
    before = minimal(batch)
    _copy_into_minimal(shared, minimal)
    valid = batch["mask"].bool()
    assert not torch.allclose(before[valid], shared(batch)[valid], atol=1e-3)
    torch.testing.assert_close(minimal(batch)[valid], shared(batch)[valid], rtol=1e-5, atol=1e-5)


def test_dt_benchmark_functions_return_times():
    r = dt_step_times(batch=4, context=3, hidden=8, layers=1, repeats=2)
    assert r["shared_s"] > 0 and r["minimal_s"] > 0 and r["ratio"] > 0 and r["sampling_s"] > 0
    m = masked_eval_times(tasks=3, goals=2, hidden=8, layers=1, context=3, prompt_steps=2, steps=3)
    assert m["loop_s"] > 0 and m["batched_s"] > 0 and m["max_abs_diff"] < 1e-5
