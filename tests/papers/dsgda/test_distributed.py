"""Placement of the m clients on the processes of the distributed backend, without starting
any (the launches are in test_two_processes.py): contiguous blocks for any world size ≤ m,
each rank's mixing from its own block plus what its peers send equals W x for every W and
world size, and every launch mistake is one line before any rendezvous (world size > m, NCCL
asked to put two processes on one GPU, the simulation or `reproduce` under torchrun)."""

import pytest
import torch

from papers.dsgda import distributed
from papers.dsgda.distributed import Mixer, blocks
from papers.dsgda.topology import as_tensor, mixing_matrix


@pytest.mark.parametrize("m,world", [(8, 1), (8, 2), (8, 3), (8, 4), (8, 8), (16, 5), (5, 5)])
def test_blocks_are_contiguous_and_balanced(m, world):
    bounds = blocks(m, world)
    assert bounds[0][0] == 0 and bounds[-1][1] == m
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    sizes = [hi - lo for lo, hi in bounds]
    assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1


def _mix_by_blocks(W, x, world):
    """Every rank's Mixer, with the point-to-point exchange done by hand."""
    bounds = blocks(W.shape[-1], world)
    mixers = [Mixer(W, r, bounds) for r in range(world)]
    states = [x[:, lo:hi] for lo, hi in bounds]
    sent = [mixer.outgoing(state) for mixer, state in zip(mixers, states)]
    for r, mixer in enumerate(mixers):  # what r sends s is what s expects from r
        for s, tensor in sent[r].items():
            assert tensor.shape[1] == len(mixers[s].recv[r][0])
        assert set(mixer.recv) == {s for s in range(world) if r in sent[s]}
    out = [mixer.combine(state, {s: sent[s][r] for s in mixer.recv})
           for r, (mixer, state) in enumerate(zip(mixers, states))]
    return torch.cat(out, 1), mixers


@pytest.mark.parametrize("topology,m", [("ring", 8), ("torus", 9), ("star", 8), ("graph", 10)])
@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_block_mixing_is_W_times_x(topology, m, world):
    spec = "random_regular_graph:d=3,seed=0" if topology == "graph" else ""
    W = as_tensor(mixing_matrix(topology, m, spec)).expand(3, m, m).clone()
    x = torch.randn(3, m, 5, generator=torch.Generator().manual_seed(world), dtype=torch.float64)
    mixed, mixers = _mix_by_blocks(W, x, world)
    assert torch.allclose(mixed, torch.bmm(W, x), rtol=1e-12, atol=1e-14)
    assert not any(m_.full for m_ in mixers)
    if topology == "ring" and world == 2:  # blocks 0..3 | 4..7: only the clients at the seams travel
        assert mixers[0].send == {1: [0, 3]} and mixers[0].recv[1][0] == [4, 7]


def test_full_W_is_one_all_reduce_and_a_single_rank_has_no_peers():
    W = as_tensor(mixing_matrix("full", 8)).expand(2, 8, 8).clone()
    assert Mixer(W, 0, blocks(8, 2)).full
    ring = as_tensor(mixing_matrix("ring", 8)).expand(2, 8, 8).clone()
    assert Mixer(ring, 0, blocks(8, 1)).peers == []


@pytest.fixture
def torchrun_env(monkeypatch):
    """As torchrun sets it for rank 0 of `world` processes on one node (no rendezvous runs)."""
    def set_env(world: int):
        for key, value in {"RANK": "0", "WORLD_SIZE": str(world), "LOCAL_RANK": "0",
                           "LOCAL_WORLD_SIZE": str(world), "MASTER_ADDR": "127.0.0.1",
                           "MASTER_PORT": "1"}.items():
            monkeypatch.setenv(key, value)
    return set_env


def test_more_processes_than_clients_is_one_line(one_line_error, torchrun_env):
    torchrun_env(8)
    line = one_line_error("dsgda", "train", ["sgda.backend=distributed", "sgda.clients=4", "wandb=false"])
    assert "world size 8 > sgda.clients = 4" in line


def test_nccl_with_more_processes_than_gpus_is_one_line(one_line_error, torchrun_env, monkeypatch):
    torchrun_env(16)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 8)
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: pytest.fail("reached set_device"))
    line = one_line_error("dsgda", "train", ["sgda.backend=distributed", "sgda.clients=16",
                                             "sgda.samples_per_client=4", "wandb=false"])
    assert "NCCL cannot put two processes on one GPU" in line and "--nproc_per_node=8" in line


def test_local_rank_maps_onto_the_visible_gpus(torchrun_env, monkeypatch):
    torchrun_env(2)
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    chosen = []
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    monkeypatch.setattr(distributed.dist, "is_initialized", lambda: True)
    monkeypatch.setattr(distributed.dist, "get_rank", lambda: 1)
    monkeypatch.setattr(distributed.dist, "get_world_size", lambda: 2)
    assert distributed.init("nccl", 8) == (1, 2, torch.device("cuda:1"))
    assert chosen == [torch.device("cuda:1")]


@pytest.mark.parametrize("command,message", [
    ("train", "needs sgda.backend=distributed"),  # sgda.backend=simulation: every rank would write a run
    ("reproduce", "run it without torchrun"),  # every rank would write a result set
])
def test_one_process_commands_under_torchrun_are_one_line(one_line_error, torchrun_env, command, message):
    torchrun_env(2)
    assert message in one_line_error("dsgda", command, ["wandb=false"])
