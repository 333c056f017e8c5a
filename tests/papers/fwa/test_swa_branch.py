"""SWA with a step size of its own: a branch of the run from the start epoch (SWABranch)."""
from pathlib import Path

import pytest
import torch

import papers.fwa
from papers.fwa.config import FWAConfig
from papers.fwa.train import Trainer, load_split
from shared.config import load_config

PAPER_DIR = Path(papers.fwa.__file__).parent
RUN = ("train.mnist1d_samples=600", "train.epochs=4", "train.swa_start=0.5", "train.lr=0.1",
       "train.momentum=0.5")


def _trainer(tmp_path, *extra) -> Trainer:
    cfg = load_config(FWAConfig, PAPER_DIR / "configs", "smoke",
                      [f"data_dir={tmp_path / 'data'}", "wandb=false", *RUN, *extra])
    return Trainer(cfg, load_split(cfg), seed=0)


def _train(trainer: Trainer, epochs: int) -> Trainer:
    for _ in range(epochs):
        trainer.train_epoch()
    return trainer


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> dict:
    """Final metrics of the run without a branch (SWA read off SGD's trajectory)."""
    return _train(_trainer(tmp_path_factory.mktemp("fwa-swa")), 4).evaluate()


def test_a_branch_at_sgds_own_step_size_gives_the_swa_read_off_sgds_trajectory(tmp_path, shared):
    own = _train(_trainer(tmp_path, "train.swa_lr=0.1"), 4)
    assert own.branch is not None and int(own.branch.averagers.swa.n_averaged) == 2
    branched = own.evaluate()
    assert set(branched) == set(shared)
    for key, value in shared.items():
        assert branched[key] == pytest.approx(value, rel=1e-6, abs=1e-7), key


def test_a_branch_at_another_step_size_changes_only_swa(tmp_path, shared):
    own = _train(_trainer(tmp_path, "train.swa_lr=0.01"), 4)
    assert own.branch.optimizer.param_groups[0]["lr"] == pytest.approx(0.01)
    assert own.optimizer.param_groups[0]["lr"] == pytest.approx(0.1)  # SGD's run is untouched
    branched = own.evaluate()
    for key, value in shared.items():
        if key.startswith("swa/"):
            continue
        assert branched[key] == value, key
    assert branched["swa/train_loss"] != pytest.approx(shared["swa/train_loss"], rel=1e-3)


def test_the_branch_anneals_from_sgds_step_size_to_its_own(tmp_path):
    trainer = _trainer(tmp_path, "train.swa_lr=0.02", "train.swa_anneal_epochs=2",
                       "train.swa_start=0")
    seen = []
    for _ in range(4):
        trainer.train_epoch()
        seen.append(trainer.branch.optimizer.param_groups[0]["lr"])  # for the next epoch
    # cosine from SGD's 0.1: halfway after one of the two annealing epochs, then constant
    assert seen == pytest.approx([0.5 * 0.1 + 0.5 * 0.02, 0.02, 0.02, 0.02])


def test_save_and_restore_keep_the_branch(tmp_path):
    whole = _train(_trainer(tmp_path, "train.swa_lr=0.03"), 4).evaluate()
    first = _train(_trainer(tmp_path, "train.swa_lr=0.03"), 3)
    first.save(tmp_path / "run")
    (ckpt,) = sorted((tmp_path / "run" / "checkpoints").iterdir())
    resumed = _trainer(tmp_path, "train.swa_lr=0.03")
    resumed.restore(ckpt)
    assert resumed.branch is not None
    torch.testing.assert_close(list(resumed.branch.net.parameters()),
                               list(first.branch.net.parameters()), rtol=0, atol=0)
    assert _train(resumed, 1).evaluate() == whole
