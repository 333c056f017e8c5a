"""The build cache: built once under a lock, checksummed, renamed into place; damage is a
one-line user error."""

import json
import multiprocessing
import shutil
import time

import pytest

from shared import UserError
from shared.t2i.cache import CacheMismatch, build_once, cached, open_cache


def write_files(directory):
    (directory / "weights.bin").write_bytes(bytes(range(256)) * 4)
    (directory / "sub").mkdir()
    (directory / "sub" / "vocab.json").write_text('["a", "b"]\n')


def read_files(directory):
    return (directory / "weights.bin").read_bytes(), json.loads((directory / "sub" / "vocab.json").read_text())


def test_first_call_builds_a_checksummed_directory_and_the_second_reads_it(tmp_path):
    path, calls = tmp_path / "kind" / "key", []

    def build(directory):
        calls.append(directory)
        write_files(directory)

    first = cached(path, build, read_files, "test model")
    assert first[1] == ["a", "b"] and len(calls) == 1 and calls[0] != path
    manifest = json.loads((path / "manifest.json").read_text())
    assert set(manifest["files"]) == {"weights.bin", "sub/vocab.json"}
    assert manifest["files"]["weights.bin"]["bytes"] == 1024
    assert not list(path.parent.glob(".*.tmp"))
    assert cached(path, build, read_files, "test model") == first and len(calls) == 1


def test_a_failed_build_leaves_nothing(tmp_path):
    path = tmp_path / "key"

    def broken(directory):
        write_files(directory)
        raise RuntimeError("killed mid-build")

    with pytest.raises(RuntimeError):
        build_once(path, broken)
    assert not path.exists() and not list(tmp_path.glob(".*.tmp"))
    assert cached(path, write_files, read_files, "test model")[1] == ["a", "b"]


@pytest.mark.parametrize("damage", ["flip", "truncate", "no-manifest", "missing-file", "unreadable"])
def test_corrupt_cache_is_a_one_line_user_error(tmp_path, damage):
    path = build_once(tmp_path / "key", write_files)
    weights = path / "weights.bin"
    blob = bytearray(weights.read_bytes())
    if damage == "flip":
        blob[-10] ^= 0xFF
        weights.write_bytes(bytes(blob))
    elif damage == "truncate":
        weights.write_bytes(bytes(blob[: len(blob) // 2]))
    elif damage == "no-manifest":
        (path / "manifest.json").unlink()
    elif damage == "missing-file":
        (path / "sub" / "vocab.json").unlink()
    with pytest.raises(UserError) as err:
        if damage == "unreadable":  # intact files a reader cannot parse
            open_cache(path, "test model", lambda d: json.loads((d / "weights.bin").read_text()))
        else:
            open_cache(path, "test model", read_files)
    message = str(err.value)
    assert "\n" not in message and str(path) in message and "delete" in message and "test model" in message


def test_a_cache_that_does_not_fit_is_a_one_line_user_error(tmp_path):
    path = build_once(tmp_path / "key", write_files)

    def picky(directory):
        raise CacheMismatch("has 2 words, expected 3")

    with pytest.raises(UserError, match="has 2 words, expected 3; delete"):
        open_cache(path, "test model", picky)


def _slow_build(path, log):
    def build(directory):
        with open(log, "a") as fh:
            fh.write("built\n")
        time.sleep(0.5)
        write_files(directory)

    build_once(path, build)


def test_concurrent_callers_wait_for_one_build(tmp_path):
    log, path = tmp_path / "log", tmp_path / "cache" / "key"
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_slow_build, args=(path, log)) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert [w.exitcode for w in workers] == [0, 0, 0]
    assert log.read_text() == "built\n"
    assert read_files(path)[1] == ["a", "b"]
    shutil.rmtree(path)
    _slow_build(path, log)  # a deleted cache is rebuilt
    assert log.read_text() == "built\nbuilt\n"
