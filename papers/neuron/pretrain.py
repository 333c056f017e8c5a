"""Pre-train the skeleton encoder on the seen classes only (cross-entropy), then freeze it.

`pretrain` is deterministic for a seed (a torch.Generator drives shuffling and augmentation;
the weights are initialised under a forked RNG), checkpoints every epoch (model, optimizer,
scheduler, generator) and resumes from the last one after a kill with a result identical to
an uninterrupted run. The final weights are stored under a key of everything they depend on
(encoder config, seen classes, seed, a fingerprint of the data) and reused when present.

Under `accelerate launch` / torchrun (several processes, `accelerator` given) every process
runs the same loop over the same global batches: each draws the batch's order and
augmentation from the same generator and trains on its share of the batch (rows r, r + W,
...) in a DistributedDataParallel model whose batch norms use the statistics of the whole
global batch (`synced_batchnorm`; torch's SyncBatchNorm needs a GPU), with the loss scaled so
that the averaged gradient is the global batch's mean gradient. So the run computes what the
one-process run computes, up to floating-point summation order (see the 2-process test for
the measured difference). Only the main process writes checkpoints.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from papers.neuron.encoder import AUGMENT_UNIFORMS, ChannelBN, build_encoder, preprocess
from shared import UserError
from shared.cache import cache_key
from shared.checkpoint import (
    CheckpointError,
    latest_checkpoint,
    load_checkpoint,
    prefixed,
    save_checkpoint,
    unprefixed,
)
from shared.device import resolve_device
from shared.seeding import torch_generator
from shared.tracking import progress as progress_bar

VERSION = 2  # bump when a change to the encoder or its training invalidates stored weights
TEST_AUGMENT_SEED = 0  # the fixed draw of the test-time augmentation (encoder.test_augment)


def _as_numpy(a) -> np.ndarray:
    return a.numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def _arrays(data: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, length) of a sequence dict as numpy (x untouched: a memmap stays one)."""
    x, y, length = (_as_numpy(data[k]) for k in ("x", "y", "length"))
    return x, y.astype(np.int64, copy=False), length.astype(np.int64, copy=False)


def data_fingerprint(data: dict) -> str:
    """blake2b of the sequences, labels and lengths (identifies the training data)."""
    digest = hashlib.blake2b(digest_size=16)
    for array in _arrays(data):
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()


def encoder_key(cfg, data: dict, seen: list[int], seed: int) -> str:
    """What the pre-trained weights depend on (test_augment only matters at extraction)."""
    enc = {k: v for k, v in dataclasses.asdict(cfg.encoder).items() if k != "test_augment"}
    return cache_key(version=VERSION, encoder=enc, seen=[int(c) for c in seen], seed=int(seed),
                     data=data_fingerprint(data))


def step_factor(step: int, warmup_steps: int, milestones) -> float:
    """The lr multiplier of optimizer step `step` (0-based): linear warm-up over the first
    `warmup_steps` steps ((step + 1) / warmup), then × 0.1 at each milestone passed (steps)."""
    warm = min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0
    return warm * 0.1 ** sum(step >= m for m in milestones)


def _lr_schedule(optimizer, cfg):
    """Per optimizer step (scheduler.step() after every batch): `step_factor` of encoder.*."""
    enc = cfg.encoder
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: step_factor(step, enc.warmup_steps, list(enc.milestones)))


def _train_epoch(model: nn.Module, optimizer, x: np.ndarray, length: np.ndarray, rows: np.ndarray,
                 y: torch.Tensor, in_frames: int, batch_size: int, gen: torch.Generator,
                 device: torch.device, bar=None, accelerator=None, scheduler=None,
                 max_batches: int | None = None) -> dict:
    """One pass over the training rows `rows` of (x, length) with labels y (one per row);
    the last partial batch is dropped (CTR-GCN's drop_last) unless there is only one. With
    `max_batches` the pass stops after that many batches (the schedule's last, partial epoch);
    `scheduler` (when given) steps after every optimizer step.

    With an `accelerator` of W > 1 processes, process r trains on rows r, r + W, ... of each
    global batch (same order, same augmentation draws as one process); the loss, accuracy
    and divergence check are over the global batch."""
    model.train()
    world = accelerator.num_processes if accelerator is not None else 1
    rank = accelerator.process_index if accelerator is not None else 0
    dtype = next(model.parameters()).dtype  # float32 (float64 in the data-parallel exactness test)
    n = len(rows)
    order = torch.randperm(n, generator=gen).numpy()
    batches = max(1, n // batch_size)
    if max_batches is not None:
        batches = min(batches, max_batches)
    loss_sum, correct, seen = 0.0, 0, 0
    for b in range(batches):
        pos = np.sort(order[b * batch_size:(b + 1) * batch_size])
        if world == 1:
            idx = rows[pos]
            xb = preprocess(x[idx], length[idx], in_frames, augment=True, gen=gen).to(device, dtype)
            yb = y[pos].to(device)
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            batch_loss, batch_correct, batch_n = loss.item() * len(pos), int((logits.argmax(1) == yb).sum()), len(pos)
        else:
            # the draw one process makes for the whole batch (preprocess's own), then our share
            uniforms = torch.rand(len(pos), AUGMENT_UNIFORMS, generator=gen, dtype=torch.float64)
            mine = np.arange(rank, len(pos), world)
            idx = rows[pos[mine]]
            xb = preprocess(x[idx], length[idx], in_frames, augment=True,
                            uniforms=uniforms[mine]).to(device, dtype)
            yb = y[pos[mine]].to(device)
            logits = model(xb)
            local = F.cross_entropy(logits, yb, reduction="sum")
            # DDP averages over the W processes: W × (our sum) / (global batch) averages to the
            # global batch's mean loss, whatever the shares' sizes
            loss = local * (world / len(pos))
            totals = accelerator.reduce(torch.stack([
                local.detach().double().cpu(), (logits.argmax(1) == yb).sum().double().cpu(),
                torch.tensor(float(len(mine)), dtype=torch.float64)]).to(device), "sum").cpu()
            batch_loss, batch_correct, batch_n = float(totals[0]), int(totals[1]), int(totals[2])
        if not math.isfinite(batch_loss):
            raise UserError(f"encoder pre-training diverged (loss {batch_loss / batch_n}): lower "
                            f"encoder.lr (now {optimizer.param_groups[0]['initial_lr']})")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        loss_sum += batch_loss
        correct += batch_correct
        seen += batch_n
        if bar is not None:
            bar.update(1)
    return {"loss": loss_sum / seen, "train_acc": correct / seen}


class _AllReduceSum(torch.autograd.Function):
    """Sum over the processes; the gradient of each input is the sum of every process's
    output gradient (what torch.distributed.nn.functional.all_reduce does, without its
    deprecation warning)."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        out = tensor.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return _AllReduceSum.apply(grad)


def _synced_bn(bn: nn.modules.batchnorm._BatchNorm, x: torch.Tensor) -> torch.Tensor:
    """Batch norm over channel axis 1 of `x` with the statistics of the whole global batch
    (all processes' rows): mean and biased variance from all-reduced sums (two passes, so
    no cancellation), gradients through the all-reduce (autograd-aware), running statistics
    updated as torch does (unbiased variance over the global count)."""
    all_reduce = _AllReduceSum.apply
    weight, bias = bn.weight, bn.bias
    if not bn.training:
        return F.batch_norm(x, bn.running_mean, bn.running_var, weight, bias, False, 0.0, bn.eps)
    dims = [0, *range(2, x.dim())]
    shape = [1, -1] + [1] * (x.dim() - 2)
    c = x.shape[1]
    count = torch.tensor([x.numel() / max(c, 1)], dtype=x.dtype, device=x.device)
    total = all_reduce(torch.cat([x.sum(dims), count]))
    n = total[c].detach()
    mean = total[:c] / n
    centred = x - mean.view(shape)
    var = all_reduce(centred.square().sum(dims)) / n
    out = centred * torch.rsqrt(var + bn.eps).view(shape)
    if weight is not None:
        out = out * weight.view(shape) + bias.view(shape)
    if bn.track_running_stats:
        with torch.no_grad():
            bn.num_batches_tracked.add_(1)
            m = bn.momentum if bn.momentum is not None else 1.0 / float(bn.num_batches_tracked)
            bn.running_mean.mul_(1 - m).add_(m * mean.detach())
            bn.running_var.mul_(1 - m).add_(m * var.detach() * n / (n - 1).clamp_min(1))
    return out


@contextlib.contextmanager
def synced_batchnorm(model: nn.Module) -> Iterator[nn.Module]:
    """While inside, every batch norm of `model` normalises with the global batch's statistics
    across the processes of the default process group (CPU and GPU alike)."""
    patched = []
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            if isinstance(module, ChannelBN):  # channels-last: BN over (-1, C) or (-1, V·C)
                module.forward = (lambda x, m=module:
                                  _synced_bn(m, x.reshape(-1, m.num_features)).view(x.shape))
            else:
                module.forward = (lambda x, m=module: _synced_bn(m, x))
            patched.append(module)
    try:
        yield model
    finally:
        for module in patched:
            del module.forward


def weights_digest(model: nn.Module) -> str:
    """blake2b of every tensor of the state dict (to check that processes agree)."""
    digest = hashlib.blake2b(digest_size=16)
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _freeze(model: nn.Module) -> nn.Module:
    model.eval()
    model.requires_grad_(False)
    return model


def pretrain(cfg, data: dict, seen: list[int], seed: int, ckpt_dir: str | Path,
             progress: bool = True,
             on_epoch: Callable[[int, dict], None] | None = None,
             accelerator=None, monitor: dict | None = None) -> nn.Module:
    """Pre-train `build_encoder(cfg.encoder, len(seen))` with cross-entropy on the training
    sequences of the `seen` classes (logit i = class seen[i]); returns it frozen in eval
    mode, with `.seen` and `.history` (per-epoch loss, train accuracy, lr) attached.

    Stored under `<ckpt_dir>/encoder-<arch>-<key>/`: `final/` (reused by later calls with
    the same key) and, while training, `epochs/` (the last epoch, resumed from after a kill).
    `on_epoch(epoch, record)` is called after each epoch's checkpoint (a test hook).

    The schedule is in optimizer steps (encoder.steps, warm-up and milestones in steps): the
    loop runs ceil(steps / batches per epoch) epochs, the last one cut at the step budget.
    `monitor` (sequences of the seen classes, e.g. their test set): the encoder's seen-class
    top-1 on it is recorded as `seen_acc` at `encoder.eval_points` epochs spread over training
    (the curve; the final weights are always the ones kept).
    `accelerator` (an accelerate.Accelerator over W > 1 processes, every one of which calls
    this): data-parallel training of the same run (module docstring); only the main process
    writes checkpoints, and every process returns the same weights (checked)."""
    enc = cfg.encoder
    seen = [int(c) for c in seen]
    key = encoder_key(cfg, data, seen, seed)
    root = Path(ckpt_dir) / f"encoder-{enc.arch}-{key}"
    if accelerator is not None and accelerator.num_processes == 1:
        accelerator = None
    world = accelerator.num_processes if accelerator is not None else 1
    main = accelerator is None or accelerator.is_main_process
    device = accelerator.device if accelerator is not None else resolve_device(cfg.device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_encoder(enc, len(seen), tuple(enc.blocks))
    model.seen = seen

    final = latest_checkpoint(root / "final")
    if final is not None:
        tensors, state = load_checkpoint(final)
        if state.get("key") != key:
            raise CheckpointError(f"checkpoint {final} was stored for another configuration "
                                  f"(key {state.get('key')}, expected {key}): delete it")
        model.load_state_dict(unprefixed("model", tensors))
        model.history = json.loads(state["history"])
        return _freeze(model.to(device))

    x, y_all, length = _arrays(data)
    label = {c: i for i, c in enumerate(seen)}
    sel = np.flatnonzero(np.isin(y_all, seen))
    if len(sel) == 0:
        raise UserError(f"no training sequences of the seen classes {seen}")
    if world > 1 and min(enc.batch_size, len(sel)) < world:
        raise UserError(f"encoder.batch_size={enc.batch_size} with {len(sel)} training sequences "
                        f"cannot be shared by {world} processes: use fewer processes or a larger batch")
    y = torch.tensor([label[int(c)] for c in y_all[sel]], dtype=torch.int64)

    model.to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=enc.lr, momentum=0.9, nesterov=True,
                                weight_decay=enc.weight_decay)
    scheduler = _lr_schedule(optimizer, cfg)
    gen = torch_generator(seed)
    start, history = 0, []
    last = latest_checkpoint(root / "epochs")
    if last is not None:
        tensors, state = load_checkpoint(last, device=device)
        if state.get("key") != key:
            raise CheckpointError(f"checkpoint {last} belongs to another configuration: delete it")
        model.load_state_dict(unprefixed("model", tensors))
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        gen.set_state(state["generator"])
        start, history = int(state["epoch"]), json.loads(state["history"])

    batches = max(1, len(y) // enc.batch_size)
    epochs = math.ceil(enc.steps / batches)
    points = min(enc.eval_points, epochs)
    eval_epochs = {math.ceil(epochs * (k + 1) / points) for k in range(points)}
    bar = progress_bar(total=enc.steps, initial=min(enc.steps, start * batches), leave=False,
                       desc=f"encoder {enc.arch} seed {seed}",
                       **({"disable": True} if not (progress and main) else {}))
    sync = synced_batchnorm(model) if world > 1 else contextlib.nullcontext(model)
    try:
        with sync:
            net = accelerator.prepare_model(model) if world > 1 else model
            for epoch in range(start, epochs):
                lr = optimizer.param_groups[0]["lr"]
                record = _train_epoch(net, optimizer, x, length, sel, y, enc.in_frames,
                                      enc.batch_size, gen, device, bar, accelerator, scheduler,
                                      max_batches=enc.steps - epoch * batches)
                record = {"epoch": epoch + 1, "step": min(enc.steps, (epoch + 1) * batches),
                          "lr": lr, **record}
                if monitor is not None and epoch + 1 in eval_epochs and main:
                    record["seen_acc"] = encoder_accuracy(model, monitor, seen, cfg)
                history.append(record)
                bar.set_postfix(loss=f"{record['loss']:.3f}", acc=f"{record['train_acc']:.2f}",
                                refresh=False)
                if main:
                    save_checkpoint(root / "epochs", epoch + 1, prefixed("model", model.state_dict()), {
                        "key": key, "epoch": epoch + 1, "history": json.dumps(history),
                        "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                        "generator": gen.get_state(),
                    }, keep=1)
                if on_epoch is not None:
                    on_epoch(epoch + 1, record)
    finally:
        bar.close()
    if world > 1:
        _check_agreement(model, accelerator)
        if main:
            print(f"encoder {enc.arch} (seed {seed}): pre-trained data-parallel over {world} "
                  "processes; their weights agree", flush=True)
    if main:
        save_checkpoint(root / "final", epochs, prefixed("model", model.state_dict()), {
            "key": key, "history": json.dumps(history), "seen": seen, "seed": int(seed),
            "encoder": json.dumps(dataclasses.asdict(enc)),
        }, keep=1)
        shutil.rmtree(root / "epochs", ignore_errors=True)
    if world > 1:
        accelerator.wait_for_everyone()  # the final weights are on disk for every process
    model.history = history
    return _freeze(model)


def _check_agreement(model: nn.Module, accelerator) -> None:
    """Every process must hold the main process's weights (a bug otherwise, not a user error)."""
    from accelerate.utils import broadcast_object_list

    mine = weights_digest(model)
    ours = broadcast_object_list([mine])[0]
    agree = accelerator.reduce(torch.tensor([float(mine == ours)], device=accelerator.device), "sum")
    if int(agree.item()) != accelerator.num_processes:
        raise RuntimeError(f"process {accelerator.process_index}: encoder weights differ between "
                           "processes after data-parallel pre-training")


def _batches(encoder: nn.Module, data: dict, in_frames: int, augment: bool, batch_size: int,
             rows: np.ndarray | None = None):
    """(slice into the selected rows, encoder input on the encoder's device) per batch. With
    `augment` each sequence's draw is fixed (seed TEST_AUGMENT_SEED) whatever the batching."""
    x, _, length = _arrays(data)
    rows = np.arange(len(length)) if rows is None else rows
    device = next(encoder.parameters()).device
    uniforms = None
    if augment:
        gen = torch_generator(TEST_AUGMENT_SEED)
        uniforms = torch.rand(len(length), AUGMENT_UNIFORMS, generator=gen, dtype=torch.float64)
    for s in range(0, len(rows), batch_size):
        idx = rows[s:s + batch_size]
        u = None if uniforms is None else uniforms[idx]
        xb = preprocess(x[idx], length[idx], in_frames, augment=augment, uniforms=u)
        yield slice(s, s + len(idx)), xb.to(device)


def extract_features(encoder: nn.Module, data: dict, cfg, batch_size: int = 256) -> torch.Tensor:
    """Frozen features (N, width, out_frames, 25) as float16 on the CPU, in eval mode, with
    the test-time augmentation only when `encoder.test_augment` (cfg may be the whole
    experiment config or its EncoderConfig)."""
    enc = getattr(cfg, "encoder", cfg)
    n = len(_arrays(data)[2])
    out = torch.empty(n, enc.width, enc.out_frames, 25, dtype=torch.float16)
    was_training = encoder.training
    encoder.eval()
    try:
        with torch.no_grad():
            for where, xb in _batches(encoder, data, enc.in_frames, enc.test_augment, batch_size):
                out[where] = encoder.features(xb).to(torch.float16).cpu()
    finally:
        encoder.train(was_training)
    return out


def encoder_accuracy(encoder: nn.Module, data: dict, classes_subset: list[int], cfg=None,
                     batch_size: int = 256) -> float:
    """Top-1 accuracy of the encoder's own classifier on the sequences of `classes_subset`
    (the seen classes in the order given to `pretrain`: logit i = classes_subset[i]). The
    input pipeline follows `cfg` (experiment or EncoderConfig) when given, else the
    encoder's own in_frames / test_augment."""
    classes = [int(c) for c in classes_subset]
    if len(classes) != encoder.fc.out_features:
        raise ValueError(f"{len(classes)} classes for an encoder with "
                         f"{encoder.fc.out_features} logits")
    _, y_all, _ = _arrays(data)
    rows = np.flatnonzero(np.isin(y_all, classes))
    if len(rows) == 0:
        return math.nan
    label = {c: i for i, c in enumerate(classes)}
    target = torch.tensor([label[int(c)] for c in y_all[rows]])
    enc = getattr(cfg, "encoder", cfg)
    in_frames = encoder.in_frames if enc is None else enc.in_frames
    augment = getattr(encoder, "test_augment", False) if enc is None else enc.test_augment
    was_training = encoder.training
    encoder.eval()
    correct = 0
    try:
        with torch.no_grad():
            for where, xb in _batches(encoder, data, in_frames, augment, batch_size, rows):
                pred = encoder(xb).argmax(1).cpu()
                correct += int((pred == target[where]).sum())
    finally:
        encoder.train(was_training)
    return correct / len(rows)
