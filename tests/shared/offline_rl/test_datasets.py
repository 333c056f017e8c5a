import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace

import numpy as np
import pytest

import shared.offline_rl.datasets as datasets_module
from shared import UserError
from shared.cache import file_sha256
from shared.offline_rl import QUALITIES, dataset_key, episode_seed, load_datasets
from shared.offline_rl.store import read_dataset, write_dataset

TASKS = ["reach-v3", "push-v3"]
FIELDS = ("observations", "actions", "rewards", "terminals", "timeouts", "success",
          "final_observation")
ARGS = {"seed": 0, "max_steps": 20}


def assert_same(a, b):
    assert a.keys() == b.keys()
    for task in a:
        assert len(a[task]) == len(b[task])
        for x, y in zip(a[task], b[task]):
            assert (x.task, x.goal, x.seed) == (y.task, y.goal, y.seed)
            for field in FIELDS:
                assert np.array_equal(getattr(x, field), getattr(y, field)), field


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """near-optimal, 6 episodes x 20 steps of two tasks, generated with two workers."""
    data_dir = tmp_path_factory.mktemp("data")
    return data_dir, load_datasets(TASKS, "near-optimal", 6, **ARGS, data_dir=data_dir, workers=2)


def no_generation(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("generated although the cache holds the data")

    monkeypatch.setattr(datasets_module, "generate_episodes", fail)


def dataset_dirs(data_dir):
    return sorted(p for p in (data_dir / "minari").iterdir() if not p.name.startswith("."))


def test_episodes_have_the_documented_layout(built):
    _, data = built
    episode = data["reach-v3"][0]
    assert episode.observations.shape == (20, 39) and episode.observations.dtype == np.float32
    assert episode.actions.shape == (20, 4) and np.abs(episode.actions).max() <= 1
    assert episode.rewards.dtype == np.float32 and episode.success.dtype == bool
    assert not episode.terminals.any() and episode.timeouts.tolist() == [False] * 19 + [True]
    assert [ep.goal for ep in data["push-v3"]] == list(range(6))
    assert [ep.seed for ep in data["push-v3"]] == [episode_seed(0, "push-v3", j) for j in range(6)]
    assert episode.total_return == pytest.approx(float(episode.rewards.sum()), rel=1e-6)


def test_second_load_hits_the_cache(built, monkeypatch):
    data_dir, data = built
    no_generation(monkeypatch)
    assert_same(load_datasets(TASKS, "near-optimal", 6, **ARGS, data_dir=data_dir), data)
    assert len(dataset_dirs(data_dir)) == 2


def test_regeneration_is_bit_identical_for_any_workers(built, tmp_path):
    _, data = built
    fresh = load_datasets(TASKS, "near-optimal", 6, **ARGS, data_dir=tmp_path, workers=1)
    assert_same(fresh, data)
    assert_same(load_datasets(TASKS, "near-optimal", 6, **ARGS, data_dir=tmp_path), data)


def test_manifest_records_checksums_seeds_and_stats(built):
    data_dir, data = built
    reach = next(p for p in dataset_dirs(data_dir) if "reach-v3" in p.name)
    manifest = json.loads((reach / "manifest.json").read_text())
    assert set(manifest["files"]) == {"data/main_data.hdf5", "data/metadata.json"}
    assert manifest["seeds"] == [ep.seed for ep in data["reach-v3"]]
    assert manifest["goals"] == [0, 1, 2, 3, 4, 5]
    assert manifest["stats"]["steps"] == 120 and manifest["key_parts"]["episodes"] == 6
    assert manifest["key"] in reach.name and manifest["key_parts"]["versions"]["metaworld"]


def test_sub_optimal_is_the_first_half_of_near_optimal(built, monkeypatch):
    data_dir, _ = built
    longer = load_datasets(TASKS[:1], "near-optimal", 12, **ARGS, data_dir=data_dir)
    no_generation(monkeypatch)
    sub = load_datasets(TASKS[:1], "sub-optimal", 6, **ARGS, data_dir=data_dir)
    assert_same(sub, {"reach-v3": longer["reach-v3"][:6]})


def test_near_optimal_success_rises_across_the_buffer(tmp_path):
    data = load_datasets(["reach-v3"], "near-optimal", 16, seed=0, max_steps=80,
                         data_dir=tmp_path, workers=1)
    success = np.array([ep.succeeded for ep in data["reach-v3"]], dtype=float)
    returns = np.array([ep.total_return for ep in data["reach-v3"]])
    assert success[:4].mean() < success[-4:].mean() == 1.0
    assert returns[:4].mean() < returns[-4:].mean()


def corrupt_target(data_dir):
    return next(p for p in dataset_dirs(data_dir) if "push-v3" in p.name)


def test_truncated_file_is_refused_in_one_line(tmp_path):
    load_datasets(TASKS[1:], "expert", 2, **ARGS, data_dir=tmp_path, workers=1)
    hdf5 = corrupt_target(tmp_path) / "data" / "main_data.hdf5"
    hdf5.write_bytes(hdf5.read_bytes()[:-100])
    with pytest.raises(UserError, match="corrupt") as info:
        load_datasets(TASKS[1:], "expert", 2, **ARGS, data_dir=tmp_path, workers=1)
    assert "\n" not in str(info.value) and str(corrupt_target(tmp_path)) in str(info.value)
    assert hdf5.exists()  # refused, not silently regenerated


def test_unreadable_file_with_matching_checksums_is_refused(tmp_path):
    load_datasets(TASKS[1:], "expert", 2, **ARGS, data_dir=tmp_path, workers=1)
    target = corrupt_target(tmp_path)
    hdf5 = target / "data" / "main_data.hdf5"
    hdf5.write_bytes(hdf5.read_bytes()[:1000])
    manifest = json.loads((target / "manifest.json").read_text())
    manifest["files"]["data/main_data.hdf5"] = file_sha256(hdf5)
    (target / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError, match="corrupt \\(cannot read") as info:
        load_datasets(TASKS[1:], "expert", 2, **ARGS, data_dir=tmp_path, workers=1)
    assert "\n" not in str(info.value)


def test_missing_manifest_is_refused_as_incomplete(tmp_path):
    load_datasets(TASKS[1:], "expert", 2, **ARGS, data_dir=tmp_path, workers=1)
    (corrupt_target(tmp_path) / "manifest.json").unlink()
    with pytest.raises(UserError, match="incomplete") as info:
        load_datasets(TASKS[1:], "expert", 2, **ARGS, data_dir=tmp_path, workers=1)
    assert "\n" not in str(info.value)


def test_a_dataset_stored_meanwhile_by_another_process_wins(built, tmp_path):
    _, data = built
    target = tmp_path / "minari" / "metaworld-reach-v3-x-v0"
    info = {"description": "test"}
    assert write_dataset(target, data["reach-v3"], info) is True
    assert write_dataset(target, data["push-v3"], info) is False
    assert_same({"reach-v3": read_dataset(target, "reach-v3")[1]}, {"reach-v3": data["reach-v3"]})
    assert [p.name for p in target.parent.iterdir()] == [target.name]  # no scratch left


def _load_in_child(data_dir):
    return load_datasets(["reach-v3"], "expert", 3, **ARGS, data_dir=data_dir, workers=1)


def test_concurrent_builders_of_one_dataset_agree(tmp_path):
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=context) as pool:
        first, second = pool.map(_load_in_child, [tmp_path, tmp_path])
    assert_same(first, second)
    assert_same(_load_in_child(tmp_path), first)
    assert len(list((tmp_path / "minari").iterdir())) == 1  # one dataset, no scratch left


def test_dataset_key_covers_its_inputs():
    recipe = QUALITIES["near-optimal"]
    base = dataset_key("reach-v3", "near-optimal", 10, 0, 20, recipe)
    assert base == dataset_key("reach-v3", "near-optimal", 10, 0, 20, recipe)
    others = [
        dataset_key("push-v3", "near-optimal", 10, 0, 20, recipe),
        dataset_key("reach-v3", "expert", 10, 0, 20, recipe),
        dataset_key("reach-v3", "near-optimal", 11, 0, 20, recipe),
        dataset_key("reach-v3", "near-optimal", 10, 1, 20, recipe),
        dataset_key("reach-v3", "near-optimal", 10, 0, 21, recipe),
        dataset_key("reach-v3", "near-optimal", 10, 0, 20, replace(recipe, eps_start=0.5)),
        dataset_key("reach-v3", "near-optimal", 10, 0, 20, recipe, benchmark_seed=1),
    ]
    assert len({base, *others}) == 8


@pytest.mark.parametrize("kwargs,match", [
    ({"quality": "medium"}, "quality"), ({"source": "web"}, "source"),
    ({"episodes": 0}, "episodes"), ({"tasks": ["reach"]}, "reach-v3"),
    ({"max_steps": 501}, "max_steps"),
])
def test_bad_arguments_are_user_errors(tmp_path, kwargs, match):
    args = {"tasks": ["reach-v3"], "quality": "expert", "episodes": 2, "seed": 0,
            "max_steps": 20, "data_dir": tmp_path, **kwargs}
    with pytest.raises(UserError, match=match):
        load_datasets(args.pop("tasks"), args.pop("quality"), args.pop("episodes"), **args)


def test_a_relative_data_dir_works(tmp_path, monkeypatch):
    from shared.offline_rl import load_datasets

    monkeypatch.chdir(tmp_path)
    data = load_datasets(["reach-v3"], "expert", 1, seed=0, max_steps=5, data_dir="rel/data", workers=1)
    again = load_datasets(["reach-v3"], "expert", 1, seed=0, max_steps=5, data_dir="rel/data", workers=1)
    assert len(data["reach-v3"]) == 1 and len(data["reach-v3"][0]) == 5
    assert (data["reach-v3"][0].actions == again["reach-v3"][0].actions).all()
    assert any((tmp_path / "rel" / "data" / "minari").iterdir())


def test_the_quality_schedule_follows_progress_to_the_power_curve():
    from shared.offline_rl import QUALITIES, QualityRecipe

    near = QUALITIES["near-optimal"]
    assert near.curve == 0.5
    eps, sigma = near.schedule(1, 5)  # progress (1/4) ** 0.5 = 0.5
    assert (eps, sigma) == pytest.approx((0.5, 0.55))
    assert near.schedule(0, 5) == (1.0, 1.0) and near.schedule(4, 5) == pytest.approx((0.0, 0.1))
    linear = QualityRecipe(1.0, 0.0, 1.0, 0.1, generation="near-optimal")
    assert linear.schedule(1, 5) == pytest.approx((0.75, 0.775))
