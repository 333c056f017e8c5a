import json

import pytest
import torch

from shared.checkpoint import (
    CheckpointError,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
)
from shared.seeding import rng_state


def _optimizer_state():
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    return model, opt


def test_round_trip_restores_tensors_and_sidecar_state_exactly(tmp_path):
    model, opt = _optimizer_state()
    state = {"step": 7, "optimizer": opt.state_dict(), "rng": rng_state(), "name": "x"}
    path = save_checkpoint(tmp_path, 7, model.state_dict(), state)
    tensors, loaded = load_checkpoint(path)
    for key, value in model.state_dict().items():
        assert torch.equal(tensors[key], value)
    assert loaded["step"] == 7 and loaded["name"] == "x"
    buf = opt.state_dict()["state"][0]["momentum_buffer"]
    assert torch.equal(loaded["optimizer"]["state"][0]["momentum_buffer"], buf)


def test_only_the_newest_checkpoints_are_kept_and_no_temporary_dirs_remain(tmp_path):
    for step in (1, 2, 3):
        save_checkpoint(tmp_path, step, {"w": torch.ones(2) * step}, {"step": step}, keep=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_000000002", "step_000000003"]
    assert latest_checkpoint(tmp_path).name == "step_000000003"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp")]


def test_tied_weights_can_be_saved(tmp_path):
    w = torch.randn(3, 3)
    tensors, _ = load_checkpoint(save_checkpoint(tmp_path, 1, {"a": w, "b": w}, {}))
    assert torch.equal(tensors["a"], tensors["b"])


def test_truncated_checkpoint_is_refused(tmp_path):
    path = save_checkpoint(tmp_path, 1, {"w": torch.randn(100)}, {"step": 1})
    data = (path / "tensors.safetensors").read_bytes()
    (path / "tensors.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(path)


def test_flipped_byte_is_refused(tmp_path):
    path = save_checkpoint(tmp_path, 1, {"w": torch.zeros(100)}, {"step": 1})
    data = bytearray((path / "state.pt").read_bytes())
    data[-10] ^= 0xFF
    (path / "state.pt").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256"):
        load_checkpoint(path)


def test_missing_manifest_is_refused(tmp_path):
    path = save_checkpoint(tmp_path, 1, {"w": torch.zeros(1)}, {})
    (path / "manifest.json").unlink()
    with pytest.raises(CheckpointError, match="incomplete"):
        load_checkpoint(path)


class _Payload:
    def __reduce__(self):
        return (print, ("unpickled!",))


def test_a_sidecar_holding_arbitrary_objects_is_never_unpickled(tmp_path, capsys):
    path = save_checkpoint(tmp_path, 1, {"w": torch.zeros(1)}, {})
    torch.save({"evil": _Payload()}, path / "state.pt")
    manifest = json.loads((path / "manifest.json").read_text())  # a consistent manifest
    import hashlib
    blob = (path / "state.pt").read_bytes()
    manifest["files"]["state.pt"] = {"bytes": len(blob), "sha256": hashlib.sha256(blob).hexdigest()}
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_checkpoint(path)
    assert "unpickled!" not in capsys.readouterr().out


def test_a_corrupt_newest_checkpoint_falls_back_to_the_previous_intact_one(tmp_path, capsys):
    save_checkpoint(tmp_path, 1, {"w": torch.ones(10)}, {"step": 1})
    newest = save_checkpoint(tmp_path, 2, {"w": torch.zeros(10)}, {"step": 2})
    data = (newest / "tensors.safetensors").read_bytes()
    (newest / "tensors.safetensors").write_bytes(data[:-3])
    assert latest_checkpoint(tmp_path).name == "step_000000001"
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "step_000000002" in err[0] and "previous intact checkpoint" in err[0]
    assert latest_checkpoint(tmp_path, verify=False).name == "step_000000002"


def test_when_no_checkpoint_is_intact_the_newest_error_is_raised(tmp_path):
    only = save_checkpoint(tmp_path, 1, {"w": torch.ones(10)}, {"step": 1})
    (only / "manifest.json").unlink()
    with pytest.raises(CheckpointError, match="incomplete"):
        latest_checkpoint(tmp_path)
