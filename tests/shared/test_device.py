import pytest
import torch

from shared import UserError
from shared.device import close_distributed, make_accelerator, resolve_device, resolve_dtype


def test_cpu_and_auto():
    assert resolve_device("cpu").type == "cpu"
    expected = "cuda" if torch.cuda.is_available() else None
    if expected:
        assert resolve_device("auto").type == "cuda"
    else:
        assert resolve_device("auto").type in ("cpu", "mps")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_asking_for_cuda_without_it_is_a_user_error():
    with pytest.raises(UserError, match="CUDA is not available"):
        resolve_device("cuda")


def test_bad_device_name_is_a_user_error():
    with pytest.raises(UserError, match="not a device"):
        resolve_device("tpu9")


def test_precision_to_dtype():
    cpu = torch.device("cpu")
    assert resolve_dtype("no", cpu) is torch.float32
    assert resolve_dtype("bf16", cpu) is torch.bfloat16
    assert resolve_dtype("fp16", cpu) is torch.bfloat16  # no fp16 autocast on CPU
    assert resolve_dtype("fp16", torch.device("cuda")) is torch.float16
    with pytest.raises(UserError):
        resolve_dtype("fp8", cpu)


def test_accelerator_honours_device_override():
    acc = make_accelerator("cpu", "no")
    assert acc.device.type == "cpu" and acc.num_processes == 1


def test_a_second_accelerator_with_other_settings_in_one_process_works():
    assert make_accelerator("cpu", "no").mixed_precision == "no"
    assert make_accelerator("cpu", "bf16").mixed_precision == "bf16"


def test_close_distributed_tears_down_the_process_group(tmp_path):
    import torch.distributed as dist

    close_distributed()  # nothing started: a no-op
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0,
                            world_size=1)
    try:
        assert dist.is_initialized()
        close_distributed()
        assert not dist.is_initialized()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
