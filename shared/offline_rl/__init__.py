"""Offline multi-task Meta-World RL and the Decision Transformer substrate.

Data: d4rl cannot be installed and the authors' data are not available, so datasets are
generated locally from Meta-World 3's scripted expert policies with scheduled noise
(`QUALITIES`), cached as checksummed Minari datasets (`load_datasets`), and policies are
scored with a batched multi-process `Evaluator`. Users who have real data can read it instead
(`source="d4rl"` or `"npz"`). MT1 goals are observable (multi-task RL); `benchmark="ML1"`
builds Meta-World's partially observable meta-RL envs with its train/test goal split
(`tasks`, `datasets`, `evaluator`).

Decision Transformer (`dt`, `segments`, `prompts`, `batches`, `policy`, `masks`): the GPT-2
backbone with prompt / task-token conditioning, `encode()` features and optional per-task
heads; normalisation, left-padded K-step segments, prompts ("window" or Prompt-DT's
"best-tail") and multi-task batches; a batched `DTPolicy` with a prompt and a weight set per
episode; binary-mask helpers for subnetwork training.

    tasks = task_set("MT10")
    data = load_datasets(tasks, "near-optimal", 100, seed=0, max_steps=200, data_dir="data")
    with Evaluator(tasks, goals=list(range(10)), max_steps=200, workers=0) as ev:
        print(ev.run(policy)["success"])
"""

import importlib

from shared.offline_rl.datasets import dataset_key, generate_episodes, load_datasets
from shared.offline_rl.episodes import QUALITIES, Episode, QualityRecipe, episode_seed
from shared.offline_rl.evaluator import Evaluator
from shared.offline_rl.policies import RandomBatchPolicy, ScriptedBatchPolicy
from shared.offline_rl.readers import read_d4rl_hdf5, read_episode_npz_dir
from shared.offline_rl.report import dataset_report
from shared.offline_rl.tasks import (
    TASK_SETS,
    goal_position,
    goal_vectors,
    make_env,
    scripted_policy,
    task_set,
)

# The Decision-Transformer names import torch and transformers, which the data-generation and
# evaluator worker processes never need: they load on first use.
_LAZY = {
    "DecisionTransformer": "dt", "action_loss": "dt", "PAD_ACTION": "segments",
    "Normaliser": "segments", "SegmentSampler": "segments", "PromptSelector": "prompts",
    "MultiTaskBatches": "batches", "TaskData": "batches", "DTPolicy": "policy",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"shared.offline_rl.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'shared.offline_rl' has no attribute {name!r}")


__all__ = [
    "PAD_ACTION", "QUALITIES", "TASK_SETS", "DTPolicy", "DecisionTransformer", "Episode",
    "Evaluator", "MultiTaskBatches", "Normaliser", "PromptSelector", "QualityRecipe",
    "RandomBatchPolicy", "ScriptedBatchPolicy", "SegmentSampler", "TaskData", "action_loss",
    "dataset_key", "dataset_report", "episode_seed", "generate_episodes", "goal_position",
    "goal_vectors", "load_datasets", "make_env", "read_d4rl_hdf5", "read_episode_npz_dir",
    "scripted_policy", "task_set",
]
