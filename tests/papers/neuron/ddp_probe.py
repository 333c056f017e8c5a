"""Run under torchrun with 2 processes (test_two_processes.py): two epochs of data-parallel
encoder pre-training (pretrain._train_epoch with an accelerator: shared batches, global batch
statistics, scaled loss, DDP) in float64 must equal the one-process epochs, which the main
process also computes, to rounding. The global batch of 9 is shared 5 / 4, so the loss
scaling is tested with unequal shares. Writes the differences as JSON to argv[1]."""

import contextlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from papers.neuron import pretrain as P  # noqa: E402
from papers.neuron.config import EncoderConfig  # noqa: E402
from papers.neuron.encoder import build_encoder  # noqa: E402
from shared.device import close_distributed, make_accelerator  # noqa: E402


def fake_data(classes: int = 3, per_class: int = 8) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
    rng = np.random.default_rng(0)
    n = classes * per_class
    x = np.zeros((n, 300, 150), np.float32)
    y = np.repeat(np.arange(classes), per_class)
    length = rng.integers(20, 41, n).astype(np.int64)
    for i in range(n):
        t = np.arange(length[i])
        move = np.zeros((length[i], 1, 3))
        move[:, 0, y[i]] = np.sin(2 * np.pi * t / length[i])
        x[i, : length[i], :75] = (rng.normal(0, 0.2, (1, 25, 3)) + move).reshape(length[i], 75)
    return x, length, torch.tensor(y)


def train(accelerator) -> tuple[dict, list]:
    x, length, y = fake_data()
    torch.manual_seed(0)
    model = build_encoder(EncoderConfig(width=8, in_frames=16, out_frames=4, spatial_bn="channel"), 3).double()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True,
                                weight_decay=1e-4)
    gen = torch.Generator().manual_seed(5)
    history = []
    sync = P.synced_batchnorm(model) if accelerator else contextlib.nullcontext()
    with sync:
        net = accelerator.prepare_model(model) if accelerator else model
        for _ in range(2):
            history.append(P._train_epoch(net, optimizer, x, length, np.arange(len(y)), y, 16, 9,
                                          gen, torch.device("cpu"), None, accelerator))
    return {k: v.detach().clone() for k, v in model.state_dict().items()}, history


def main() -> None:
    torch.set_num_threads(1)
    accelerator = make_accelerator("cpu", "no")
    assert accelerator.num_processes == 2, accelerator.num_processes
    reference = train(None) if accelerator.is_main_process else None
    weights, history = train(accelerator)
    if accelerator.is_main_process:
        ref_w, ref_h = reference
        floats = [k for k in ref_w if ref_w[k].is_floating_point()]
        diff = {k: float((weights[k] - ref_w[k]).abs().max()) for k in floats}
        Path(sys.argv[1]).write_text(json.dumps({
            "processes": accelerator.num_processes,
            "max_abs_diff": max(diff.values()), "worst": max(diff, key=diff.get),
            "max_abs_weight": max(float(ref_w[k].abs().max()) for k in floats),
            "loss": [h["loss"] for h in history], "ref_loss": [h["loss"] for h in ref_h],
            "acc": [h["train_acc"] for h in history], "ref_acc": [h["train_acc"] for h in ref_h],
        }))
    close_distributed()


if __name__ == "__main__":
    main()
