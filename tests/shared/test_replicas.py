"""shared.replicas without a launcher, and the share-normalised action loss it relies on
(the 2-process behaviour is tested end to end in tests/papers/harmodt/test_two_processes.py)."""

import pytest
import torch

from shared import UserError
from shared.offline_rl.dt import action_loss
from shared.replicas import Replicas


def test_one_process_is_the_identity(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    r = Replicas(torch.device("cpu"))
    assert (r.world, r.rank, r.is_main) == (1, 0, True)
    assert r.shard(7) == slice(0, 7) and r.sum(2.5) == 2.5 and r.broadcast({"a": 1}) == {"a": 1}
    assert r.from_main(lambda: 3) == 3 and r.main_first(lambda: 4) == 4
    with pytest.raises(UserError, match="bad"):
        r.from_main(lambda: (_ for _ in ()).throw(UserError("bad")))


@pytest.mark.parametrize("rows,world", [(8, 2), (7, 2), (5, 4), (32, 3)])
def test_shards_cover_the_rows_once_and_differ_by_at_most_one(rows, world):
    r = Replicas(torch.device("cpu"))
    shards = []
    for rank in range(world):
        r.world, r.rank = world, rank
        shards.append(r.shard(rows))
    assert [i for s in shards for i in range(rows)[s]] == list(range(rows))
    sizes = [s.stop - s.start for s in shards]
    assert max(sizes) - min(sizes) <= 1


def test_share_losses_add_up_to_the_whole_batch_loss():
    gen = torch.Generator().manual_seed(0)
    pred, target = torch.randn(6, 5, 4, generator=gen), torch.randn(6, 5, 4, generator=gen)
    mask = torch.rand(6, 5, generator=gen) > 0.3
    whole = action_loss(pred, target, mask)
    count = float(mask.sum()) * 4
    shares = [action_loss(pred[s], target[s], mask[s], count) for s in (slice(0, 2), slice(2, 6))]
    torch.testing.assert_close(sum(shares), whole, rtol=1e-6, atol=0)


def test_gpu_ranks_map_onto_the_visible_devices(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "3")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert Replicas.local_device(torch.device("cuda")) == torch.device("cuda", 1)
    assert Replicas.local_device(torch.device("cuda", 0)) == torch.device("cuda", 0)  # explicit
    assert Replicas.local_device(torch.device("cpu")) == torch.device("cpu")
