"""Neuron's shared, session-scoped test data: the MiniLM text embeddings (48 classes × 6 levels
× 10 descriptions, ~25 s on 2 cores) are computed once and copied into every data_dir that
needs them, and the smoke `reproduce` runs once for every test that reads its outputs.

Every neuron test runs with one torch intra-op thread: on 2 shared cores torch's default (one
thread per core) mostly spins against the other process (test_encoder's pre-training tests:
45 s with the default, 2 s with one thread). Nothing asserted depends on the thread count."""

import contextlib
import json
import shutil
from pathlib import Path

import pytest
import torch

import papers.neuron
from papers.neuron.__main__ import main

PAPER_DIR = Path(papers.neuron.__file__).parent


@contextlib.contextmanager
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    with one_thread():
        yield


@pytest.fixture(scope="session")
def neuron_minilm():
    """The real MiniLM sentence encoder, loaded once."""
    from papers.neuron import text

    return text.load_encoder("minilm")


@pytest.fixture(scope="session")
def neuron_text(neuron_minilm, tmp_path_factory):
    """(embeddings (48, 6, 10, 384), cache dir, encoder loads): the default text config's
    embeddings, computed once with the session's MiniLM; the cache dir holds its .npz."""
    from papers.neuron import text
    from papers.neuron.classes import all_classes
    from papers.neuron.config import TextConfig

    cache = tmp_path_factory.mktemp("neuron-text")
    loads = []
    with pytest.MonkeyPatch.context() as mp, one_thread():
        mp.setattr(text, "load_encoder", lambda name: loads.append(name) or neuron_minilm)
        emb = text.embed_descriptions(all_classes(), TextConfig(), cache)
    return emb, cache, loads


def seed_data_dir(data_dir: Path, *sources: Path, patterns=("text-*",)) -> Path:
    """Copy the cached files matching `patterns` (with their checksums) from each source's
    neuron/ folder into data_dir/neuron/; returns data_dir."""
    (data_dir / "neuron").mkdir(parents=True, exist_ok=True)
    for source in sources:
        for pattern in patterns:
            for path in (Path(source) / "neuron").glob(pattern):
                if path.is_file():
                    shutil.copy2(path, data_dir / "neuron" / path.name)
    return data_dir


@pytest.fixture(scope="session")
def neuron_seed_data_dir():
    """`seed_data_dir(data_dir, *sources, patterns=("text-*",))` for a test's own data_dir."""
    return seed_data_dir


@pytest.fixture(scope="session")
def neuron_smoke(neuron_text, tmp_path_factory):
    """(runs root, reproduce dir, results) of one smoke `reproduce` (1 process), with the text
    cache seeded from the session's embeddings; its data_dir is root/data."""
    root = tmp_path_factory.mktemp("neuron-smoke")
    seed_data_dir(root / "data", neuron_text[1])
    with one_thread():
        assert main(["reproduce", "--config", "smoke", f"runs_dir={root}", f"data_dir={root}/data",
                     "wandb=false"]) == 0
    out = sorted((root / "neuron" / "smoke" / "reproduce").iterdir())[0]
    return root, out, json.loads((out / "results.json").read_text())
