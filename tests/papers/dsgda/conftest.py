"""dsgda's tests run torch on one thread, as `reproduce`'s workers do (run_job): the tensors
are small, and on a shared 2-core box a second thread per process only oversubscribes the
cores (the eval and train tests ran 3–4× slower with torch's default)."""

import pytest
import torch


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
