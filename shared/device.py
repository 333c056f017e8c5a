"""Device and precision choice, and an `accelerate.Accelerator` factory so that network
training runs unchanged on one CPU, one GPU or several GPUs under `accelerate launch`."""

from __future__ import annotations

import os

import torch

from shared import UserError

PRECISIONS = {"no": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"device={name}: not a device (use auto, cpu, cuda, cuda:N or mps)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device={name}: CUDA is not available on this machine")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"device={name}: MPS is not available on this machine")
    return device


def resolve_dtype(precision: str, device: torch.device) -> torch.dtype:
    """The autocast dtype for `precision`; fp16 on a CPU falls back to bf16."""
    if precision not in PRECISIONS:
        raise UserError(f"precision={precision}: choose from {', '.join(PRECISIONS)}")
    if precision == "fp16" and device.type == "cpu":
        return torch.bfloat16
    return PRECISIONS[precision]


def make_accelerator(device: str = "auto", precision: str = "no", **kwargs):
    """An Accelerator honouring `device=`; under `accelerate launch` it spans all processes."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    resolved = resolve_device(device)
    if precision == "fp16" and resolved.type == "cpu":
        precision = "bf16"
    if int(os.environ.get("WORLD_SIZE", "1")) == 1:
        # One process: accelerate keeps a process-wide state that refuses a second
        # Accelerator with other settings (a second run in the same Python, a test).
        AcceleratorState._reset_state(reset_partial_state=True)
    return Accelerator(cpu=resolved.type == "cpu", mixed_precision=precision, **kwargs)


def close_distributed(wait: bool = True) -> None:
    """Tear down torch.distributed's default process group, if one was started (by
    `accelerate` under torchrun, or by hand). Without this, gloo's worker threads can
    abort the interpreter at exit (SIGABRT) while other ranks are still running.
    `wait` first lines every rank up; pass False after an error, when peers may never come."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return
    if wait:
        dist.barrier()
    dist.destroy_process_group()
