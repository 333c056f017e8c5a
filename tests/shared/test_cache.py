import numpy as np
import pytest

from shared import UserError
from shared.cache import cache_key, cached_arrays


def test_built_once_then_read_back(tmp_path):
    calls = []

    def build():
        calls.append(1)
        return {"x": np.arange(5)}

    path = tmp_path / "d.npz"
    assert cached_arrays(path, build)["x"].tolist() == [0, 1, 2, 3, 4]
    assert cached_arrays(path, build)["x"].tolist() == [0, 1, 2, 3, 4]
    assert len(calls) == 1


def test_corrupt_cache_is_refused(tmp_path):
    path = tmp_path / "d.npz"
    cached_arrays(path, lambda: {"x": np.arange(100)})
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(UserError, match="corrupt"):
        cached_arrays(path, lambda: {"x": np.arange(100)})


def test_cache_key_depends_on_every_part():
    assert cache_key(a=1, b=2) == cache_key(b=2, a=1)
    assert cache_key(a=1, b=2) != cache_key(a=1, b=3)


def test_the_checksum_is_in_place_before_the_data_file_appears(tmp_path, monkeypatch):
    """Another process building the same cache must never find data without its checksum."""
    import shared.cache

    path = tmp_path / "d.npz"
    real_replace, seen = shared.cache.os.replace, []

    def spying_replace(src, dst):
        real_replace(src, dst)
        if str(dst) == str(path):
            seen.append(path.with_suffix(".npz.sha256").exists())

    monkeypatch.setattr(shared.cache.os, "replace", spying_replace)
    cached_arrays(path, lambda: {"x": np.arange(3)})
    assert seen == [True]
