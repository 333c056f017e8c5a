import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    """The toy networks here run faster on one thread, and far faster when other jobs load the
    CPU (thread contention made a 0.1 s policy test take 18 s)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
