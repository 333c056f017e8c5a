"""Offline multi-task Meta-World data for Decision-Transformer-style papers.

d4rl cannot be installed and the authors' data are not available, so datasets are generated
locally from Meta-World 3's scripted expert policies with scheduled noise (`QUALITIES`),
cached as checksummed Minari datasets (`load_datasets`), and policies are scored with a
batched multi-process `Evaluator`. Users who have real data can read it instead
(`source="d4rl"` or `"npz"`).

    tasks = task_set("MT10")
    data = load_datasets(tasks, "near-optimal", 100, seed=0, max_steps=200, data_dir="data")
    with Evaluator(tasks, goals=list(range(10)), max_steps=200, workers=0) as ev:
        print(ev.run(policy)["success"])
"""

from shared.offline_rl.datasets import dataset_key, generate_episodes, load_datasets
from shared.offline_rl.episodes import QUALITIES, Episode, QualityRecipe, episode_seed
from shared.offline_rl.evaluator import Evaluator
from shared.offline_rl.policies import RandomBatchPolicy, ScriptedBatchPolicy
from shared.offline_rl.readers import read_d4rl_hdf5, read_episode_npz_dir
from shared.offline_rl.report import dataset_report
from shared.offline_rl.tasks import TASK_SETS, make_env, scripted_policy, task_set

__all__ = [
    "QUALITIES", "TASK_SETS", "Episode", "Evaluator", "QualityRecipe", "RandomBatchPolicy",
    "ScriptedBatchPolicy", "dataset_key", "dataset_report", "episode_seed", "generate_episodes",
    "load_datasets", "make_env", "read_d4rl_hdf5", "read_episode_npz_dir", "scripted_policy",
    "task_set",
]
