"""Experiment 3 and the paper-scale run: train a network with minibatch SGD and read SGD,
LAWA (epoch-end windows), optional FWA (step windows), SWA and EMA off one trajectory. With
`train.swa_lr` > 0, SWA gets a step size of its own, as SWA is used: a branch of the run
continues from the start epoch at that step size on the same batches (`SWABranch`).

Runs checkpoint every `train.checkpoint_every` epochs (model, optimizer, scheduler, all
averagers, RNG states) and continue with `resume=latest`; batches come from a permutation
seeded by (seed, epoch), so a resumed run sees exactly the batches of an uninterrupted one.
Training goes through `accelerate`, so `accelerate launch -m papers.fwa train ...` spreads
each batch over several GPUs.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import torch
from accelerate.utils import broadcast_object_list
from torch import nn
from torch.nn.functional import cross_entropy
from torch.optim.swa_utils import SWALR, update_bn

from papers.fwa.averaging import Averagers, HorizonWindows, load_weights
from papers.fwa.config import FWAConfig, TrainConfig
from papers.fwa.data import Split, cifar, mnist1d
from papers.fwa.model import build_model
from shared import UserError
from shared.checkpoint import (
    latest_checkpoint,
    load_checkpoint,
    prefixed,
    save_checkpoint,
    unprefixed,
)
from shared.cli import Context
from shared.config import to_dict
from shared.device import make_accelerator
from shared.runs import (
    check_same_config,
    is_done,
    mark_done,
    read_summary,
    resolve_run_dir,
    write_run_info,
)
from shared.seeding import rng_state, seed_everything, set_rng_state, torch_generator
from shared.tracking import Tracker, progress


def method_name(cfg: TrainConfig) -> str:
    return f"train-{cfg.dataset}"


def load_split(cfg: FWAConfig) -> Split:
    if cfg.train.dataset == "mnist1d":
        return mnist1d(cfg.data_dir, cfg.train.mnist1d_samples, seed=0)
    return cifar(cfg.train.dataset, cfg.train.data_path)


def lr_factor(cfg: TrainConfig, total_steps: int):
    if cfg.lr_schedule == "cosine":
        return lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / total_steps))
    return lambda step: 1.0


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random 4-pixel-padded 32×32 crop and horizontal flip, per image."""
    n = len(x)
    padded = nn.functional.pad(x, (4, 4, 4, 4), mode="reflect")
    dx, dy = torch.randint(0, 9, (2, n), generator=gen)
    flip = torch.rand(n, generator=gen) < 0.5
    out = torch.stack([padded[i, :, dy[i]:dy[i] + 32, dx[i]:dx[i] + 32] for i in range(n)])
    out[flip] = out[flip].flip(-1)
    return out


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, device, batch: int = 1024):
    model.eval()
    loss, correct = 0.0, 0
    for start in range(0, len(x), batch):
        xb, yb = x[start:start + batch].to(device), y[start:start + batch].to(device)
        logits = model(xb).float()
        loss += float(cross_entropy(logits, yb, reduction="sum"))
        correct += int((logits.argmax(-1) == yb).sum())
    return loss / len(x), correct / len(x)


def has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def evaluate_methods(model, averagers: Averagers, split: Split, cfg: TrainConfig, device,
                     methods: list[str] | None = None) -> dict:
    """test/train loss and accuracy and the generalization gaps of every method's output
    (of `methods` only, if given).

    An averaged output gets its own BatchNorm statistics (`update_bn` over training
    batches); SGD's last iterate keeps the running statistics it was trained with (the model
    as it stands, its usual evaluation)."""
    eval_model = copy.deepcopy(model)
    x_tr, y_tr = split.x_train[: cfg.train_eval_samples], split.y_train[: cfg.train_eval_samples]
    metrics = {}
    for method in averagers.methods if methods is None else methods:
        if not averagers.ready(method):
            continue
        if method == "sgd":
            eval_model.load_state_dict(model.state_dict())  # weights and BN buffers as trained
        else:
            load_weights(eval_model, averagers.weights(method, model))
        if method != "sgd" and has_batchnorm(eval_model):  # averaged weights need their own BN statistics
            loader = [x_tr[i:i + 256].to(device) for i in range(0, len(x_tr), 256)]
            update_bn(loader, eval_model)
        test_loss, test_acc = evaluate(eval_model, split.x_test, split.y_test, device)
        train_loss, train_acc = evaluate(eval_model, x_tr, y_tr, device)
        metrics.update({
            f"{method}/test_acc": test_acc, f"{method}/train_acc": train_acc,
            f"{method}/test_loss": test_loss, f"{method}/train_loss": train_loss,
            f"{method}/loss_gap": test_loss - train_loss, f"{method}/acc_gap": train_acc - test_acc,
        })
    return metrics


class SWABranch:
    """SWA with a step size of its own (Izmailov et al. 2018): at the start epoch a copy of
    SGD's model and optimizer (momentum buffers included) continues on the same batches, its
    step size set by torch's SWALR (annealed from SGD's over `swa_anneal_epochs` epochs, then
    constant at `swa_lr`), and the uniform average of its epoch ends is the `swa` output. The
    main run, and every other method read off it, is untouched."""

    def __init__(self, trainer: Trainer) -> None:
        tc = trainer.tc
        model = copy.deepcopy(trainer.net)
        optimizer = torch.optim.SGD(model.parameters(), lr=trainer.scheduler.get_last_lr()[0],
                                    momentum=tc.momentum, weight_decay=tc.weight_decay)
        # a deep copy: load_state_dict keeps tensors that need no cast, so the momentum
        # buffers would otherwise be shared with (and updated in place by) SGD's run
        optimizer.load_state_dict(copy.deepcopy(trainer.optimizer.state_dict()))
        for group in optimizer.param_groups:  # SWALR anneals from SGD's current step size
            group["lr"] = trainer.scheduler.get_last_lr()[0]
            group.pop("initial_lr", None)
        self.accelerator = trainer.accelerator
        self.model, self.optimizer = self.accelerator.prepare(model, optimizer)
        self.scheduler = SWALR(self.optimizer, swa_lr=tc.swa_lr, anneal_epochs=tc.swa_anneal_epochs)
        self.averagers = Averagers(self.net, swa_every="epoch")

    @property
    def net(self) -> nn.Module:
        return self.accelerator.unwrap_model(self.model)

    def on_epoch(self) -> None:
        self.averagers.on_epoch(self.net)
        self.scheduler.step()

    def state(self) -> tuple[dict[str, torch.Tensor], dict]:
        avg_tensors, counts = self.averagers.state()
        tensors = {**prefixed("model", self.net.state_dict()), **prefixed("avg", avg_tensors)}
        return tensors, {"counts": counts, "optimizer": self.optimizer.state_dict(),
                         "scheduler": self.scheduler.state_dict()}

    def load_state(self, tensors: dict[str, torch.Tensor], state: dict) -> None:
        self.net.load_state_dict(unprefixed("model", tensors))
        self.averagers.load_state(unprefixed("avg", tensors), state["counts"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])


class Trainer:
    """One training run: model, optimizer, scheduler and averagers (and SWA's own branch when
    `train.swa_lr` > 0), with save/restore."""

    def __init__(self, cfg: FWAConfig, split: Split, seed: int) -> None:
        tc = cfg.train
        self.cfg, self.tc, self.split, self.seed = cfg, tc, split, seed
        self.accelerator = make_accelerator(cfg.device, cfg.precision)
        self.device = self.accelerator.device
        seed_everything(seed, cfg.deterministic)
        model = build_model(tc, tuple(split.x_train.shape[1:]), split.num_classes).to(self.device)
        optimizer = torch.optim.SGD(model.parameters(), lr=tc.lr, momentum=tc.momentum,
                                    weight_decay=tc.weight_decay)
        self.model, self.optimizer = self.accelerator.prepare(model, optimizer)
        self.steps_per_epoch = math.ceil(len(split.x_train) / tc.batch_size)
        check_shards(len(split.x_train), tc.batch_size, self.accelerator.num_processes)
        total = tc.epochs * self.steps_per_epoch
        if tc.fwa_windows and 2 * max(tc.fwa_windows) > total:
            raise UserError(f"config key 'train.fwa_windows': FWA needs every window k ≤ T/2, but "
                            f"k = {max(tc.fwa_windows)} > {total / 2:g} (T = {tc.epochs} epochs × "
                            f"{self.steps_per_epoch} steps)")
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_factor(tc, tc.epochs * self.steps_per_epoch))
        # FWA over steps by running sums over the last k steps before each evaluation (the
        # horizons are known in advance): memory O(P), a step outside every window costs nothing
        horizon = (HorizonWindows(evaluation_steps(tc, self.steps_per_epoch), self.net.parameters(),
                                  windows=tc.fwa_windows) if tc.fwa_windows else None)
        self.swa_epoch = int(tc.swa_start * tc.epochs)
        own_swa = tc.swa_lr > 0  # SWA on a branch of its own, from swa_epoch (SWABranch)
        self.averagers = Averagers(self.net, horizon_windows=horizon,
                                   epoch_windows=tc.lawa_windows,
                                   swa_every=None if own_swa else "epoch",
                                   ema_decay=tc.ema_decay, swa_start=self.swa_epoch)
        self.branch: SWABranch | None = None
        self.epoch = 0

    @property
    def methods(self) -> list[str]:
        """Every method this run outputs (SWA last when it has a branch of its own)."""
        return self.averagers.methods + (["swa"] if self.tc.swa_lr > 0 else [])

    @property
    def net(self) -> nn.Module:
        return self.accelerator.unwrap_model(self.model)

    @property
    def step(self) -> int:
        return self.epoch * self.steps_per_epoch

    def train_epoch(self) -> float:
        """One epoch over a permutation seeded by (seed, epoch); returns the mean loss."""
        acc, tc = self.accelerator, self.tc
        gen = torch_generator(self.seed * 100_003 + self.epoch)
        order = torch.randperm(len(self.split.x_train), generator=gen)
        if tc.swa_lr > 0 and self.branch is None and self.epoch >= self.swa_epoch:
            self.branch = SWABranch(self)
        self.model.train()
        if self.branch is not None:
            self.branch.model.train()
        total = 0.0
        for start in range(0, len(order), tc.batch_size):
            batch = order[start:start + tc.batch_size]
            idx = batch[acc.process_index::acc.num_processes]
            x, y = self.split.x_train[idx], self.split.y_train[idx]
            if tc.augment:
                x = augment(x, gen)
            total += float(self.train_step(x, y, len(batch)))
            if self.branch is not None:  # SWA's own trajectory, on the same batch
                sgd_step(self.branch.model, self.branch.optimizer, acc, x, y, len(batch))
        self.averagers.on_epoch(self.net)
        if self.branch is not None:
            self.branch.on_epoch()
        self.epoch += 1
        return total / self.steps_per_epoch

    def train_step(self, x: torch.Tensor, y: torch.Tensor, global_batch: int) -> torch.Tensor:
        """One SGD step on this process's share (x, y) of a batch of `global_batch` samples,
        then the per-step averagers (FWA windows, EMA); returns the batch's mean loss.

        One process: the mean cross-entropy. Several: this process's summed loss × world /
        global_batch, so that DDP's gradient mean is the whole batch's mean gradient even when
        the shares differ in size (the returned loss is then this process's contribution)."""
        loss = sgd_step(self.model, self.optimizer, self.accelerator, x, y, global_batch)
        self.scheduler.step()
        self.averagers.on_step(self.net)
        return loss

    def save(self, run_dir: Path) -> None:
        avg_tensors, counts = self.averagers.state()
        tensors = {**prefixed("model", self.net.state_dict()), **prefixed("avg", avg_tensors)}
        state = {"epoch": self.epoch, "seed": self.seed, "counts": counts, "rng": rng_state(),
                 "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()}
        if self.branch is not None:
            branch_tensors, state["swa_branch"] = self.branch.state()
            tensors.update(prefixed("swa_branch", branch_tensors))
        save_checkpoint(run_dir / "checkpoints", self.step, tensors, state,
                        keep=self.tc.keep_checkpoints)

    def restore(self, ckpt: Path) -> None:
        tensors, state = load_checkpoint(ckpt, device=self.device)
        self.net.load_state_dict(unprefixed("model", tensors))
        self.averagers.load_state(unprefixed("avg", tensors), state["counts"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])
        self.epoch = int(state["epoch"])
        if "swa_branch" in state:
            self.branch = SWABranch(self)
            self.branch.load_state(unprefixed("swa_branch", tensors), state["swa_branch"])

    def evaluate(self) -> dict:
        metrics = evaluate_methods(self.net, self.averagers, self.split, self.tc, self.device)
        if self.branch is not None:
            metrics.update(evaluate_methods(self.branch.net, self.branch.averagers, self.split,
                                            self.tc, self.device, methods=["swa"]))
        return metrics


def sgd_step(model: nn.Module, optimizer, acc, x: torch.Tensor, y: torch.Tensor,
             global_batch: int) -> torch.Tensor:
    """One SGD step of `model` on this process's share (x, y) of a batch of `global_batch`
    samples; returns the batch's mean loss (several processes: see `Trainer.train_step`)."""
    with acc.autocast():
        logits = model(x.to(acc.device))
        if acc.num_processes == 1:
            loss = cross_entropy(logits, y.to(acc.device))
        else:
            loss = (cross_entropy(logits, y.to(acc.device), reduction="sum")
                    * (acc.num_processes / global_batch))
    optimizer.zero_grad(set_to_none=True)
    acc.backward(loss)
    optimizer.step()
    return loss.detach()


def evaluation_steps(tc: TrainConfig, steps_per_epoch: int) -> list[int]:
    """The SGD steps after which `train` evaluates: every `eval_every` epochs and the last."""
    epochs = [e for e in range(1, tc.epochs + 1) if e % tc.eval_every == 0 or e == tc.epochs]
    return [e * steps_per_epoch for e in epochs]


def check_shards(samples: int, batch_size: int, processes: int) -> None:
    """Under a launcher every process takes samples rank::world of each batch, so each batch
    (the last, shorter one too) needs at least one sample per process."""
    if processes == 1:
        return
    last = samples % batch_size or batch_size
    if min(batch_size, samples, last) < processes:
        raise UserError(f"config key 'train.batch_size': {batch_size} over {processes} processes "
                        f"leaves a process without samples in some batch ({samples} training "
                        f"samples, last batch {last}); use a batch of at least {processes} whose "
                        f"last batch has at least {processes} samples")


def train(cfg: FWAConfig, ctx: Context, seed: int | None = None) -> dict:
    """Train one seed; returns {"run_dir", "final"} (final metrics of every method)."""
    seed = cfg.seed if seed is None else seed
    tc = cfg.train
    split = load_split(cfg)
    trainer = Trainer(cfg, split, seed)
    main = trainer.accelerator.is_main_process
    # Only the main process resolves (and may create and lock) the run directory; the others
    # get it, or the main process's one-line error, so every process stops alike.
    choice: list = [None]
    if main:
        try:
            choice = [resolve_run_dir(cfg.resume, cfg.runs_dir, ctx.slug, ctx.config_name,
                                      method_name(tc), seed)]
        except UserError as exc:
            choice = [str(exc)]
    (chosen,) = broadcast_object_list(choice) if trainer.accelerator.num_processes > 1 else choice
    if isinstance(chosen, str):
        raise UserError(chosen)
    run_dir, resuming = chosen
    if resuming:
        check_same_config(run_dir, cfg, ("train.", "precision", "deterministic", "data_dir"))
        if is_done(run_dir):  # finished before: reuse its final metrics
            return {"run_dir": run_dir, "final": read_summary(run_dir)["final"]}
    ckpt = latest_checkpoint(run_dir / "checkpoints") if resuming else None
    if ckpt is not None:
        trainer.restore(ckpt)
    if main:
        write_run_info(run_dir, cfg, {"seed": seed, "resumed_from": str(ckpt) if ckpt else None})
    tracker = Tracker(run_dir, slug=ctx.slug, group=f"{ctx.config_name}-{method_name(tc)}",
                      name=f"{ctx.slug}__{method_name(tc)}__{ctx.config_name}__{seed}",
                      config=to_dict(cfg), use_wandb=cfg.wandb and main,
                      resume_step=trainer.step if ckpt and main else None)
    bar = progress(total=tc.epochs, initial=trainer.epoch, desc=f"train seed {seed}", leave=False)
    final = None
    with tracker:
        while trainer.epoch < tc.epochs:
            train_loss = trainer.train_epoch()
            bar.update(1)
            last = trainer.epoch == tc.epochs
            if main and (trainer.epoch % tc.eval_every == 0 or last):
                evaluation = trainer.evaluate()
                tracker.log({"epoch": trainer.epoch, "train_loss_running": train_loss,
                             "lr": trainer.scheduler.get_last_lr()[0], **evaluation},
                            step=trainer.step)
                bar.set_postfix(test_acc=f"{evaluation['sgd/test_acc']:.3f}", refresh=False)
                final = evaluation if last else None
            if main and (trainer.epoch % tc.checkpoint_every == 0 or last):
                trainer.save(run_dir)
        bar.close()
        if main and final is None:  # killed after the last checkpoint, before finishing
            final = trainer.evaluate()
        tracker.summary(final or {})
    if main:
        (run_dir / "summary.json").write_text(json.dumps({"seed": seed, "final": final}, indent=2))
        mark_done(run_dir)
    return {"run_dir": run_dir, "final": final or {}}


