"""Cost of SPIDER against plain fine-tuning (not a test; numbers go to the README).

On a small LLaMA-style causal LM (transformers, random weights) with the last 2 decoder
layers trainable, as in the paper's recipe:
- optimizer-step time: AdamW.step() alone vs AdamW.step() + the rule's after_step();
- training-step time: forward + backward + clip + step (+ rule) on one batch;
- extra memory: bytes the rule keeps (θ₀ and G, fp32), against the trainable tensors' size.

    python -m papers.spider.benchmark [--hidden 256] [--layers 4] [--repeats 10]
"""

from __future__ import annotations

import argparse
import time

import torch

from papers.spider.baselines import build_rule


def build(hidden: int, layers: int, vocab: int = 2000):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=4 * hidden,
                      num_hidden_layers=layers, num_attention_heads=max(1, hidden // 64),
                      num_key_value_heads=max(1, hidden // 64), max_position_embeddings=256)
    model = LlamaForCausalLM(cfg)
    for p in model.parameters():
        p.requires_grad_(False)
    trainable = [(n, p) for n, p in model.named_parameters()
                 if any(f"layers.{i}." in n for i in (layers - 2, layers - 1))]
    for _, p in trainable:
        p.requires_grad_(True)
    return model, trainable


def measure(method: str, hidden: int, layers: int, repeats: int, batch: int = 8, seq: int = 64,
            cache_pre: bool = False) -> dict:
    model, trainable = build(hidden, layers)
    rule = build_rule(method)
    if cache_pre and hasattr(rule, "cache_pre"):
        rule.cache_pre = True
    rule.start(trainable)
    opt = torch.optim.AdamW([p for _, p in trainable], lr=2e-4, weight_decay=0.0)
    ids = torch.randint(0, 2000, (batch, seq), generator=torch.Generator().manual_seed(0))
    opt_times, step_times = [], []
    for i in range(repeats + 1):
        start = time.perf_counter()
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for _, p in trainable], 1.0)
        rule.before_step()
        t0 = time.perf_counter()
        opt.step()
        rule.after_step()
        t1 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        if i:  # the first repeat warms up
            opt_times.append(t1 - t0)
            step_times.append(time.perf_counter() - start)
    numel = sum(p.numel() for _, p in trainable)
    return {"opt_ms": 1e3 * sorted(opt_times)[len(opt_times) // 2],
            "step_ms": 1e3 * sorted(step_times)[len(step_times) // 2],
            "extra_MB": rule.extra_bytes() / 2**20 - (numel * 4 / 2**20 if method == "full_ft" else 0),
            "trainable_MB": numel * 4 / 2**20}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    base = measure("full_ft", args.hidden, args.layers, args.repeats)
    print(f"LLaMA-style LM hidden {args.hidden}, {args.layers} layers, last 2 trainable "
          f"({base['trainable_MB']:.1f} MB fp32); median of {args.repeats}:")
    print(f"  full_ft        optimizer step {base['opt_ms']:7.2f} ms, training step {base['step_ms']:7.1f} ms")
    for label, method, cache in (("spider", "spider", False), ("spider cached", "spider", True),
                                 ("spider_hard", "spider_hard", False)):
        r = measure(method, args.hidden, args.layers, args.repeats, cache_pre=cache)
        print(f"  {label:14s} optimizer step {r['opt_ms']:7.2f} ms ({r['opt_ms'] / base['opt_ms']:.2f}×), "
              f"training step {r['step_ms']:7.1f} ms ({r['step_ms'] / base['step_ms']:.2f}×), "
              f"extra memory {r['extra_MB']:.1f} MB")


if __name__ == "__main__":
    main()
