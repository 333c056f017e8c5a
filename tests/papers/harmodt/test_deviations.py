"""Issue 21: the released method's prompts, task gradients, trunk, normalisation, v2 data
names, the k = 0 ablation and the unseen-task mask, each on a hand-made example."""

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from papers.harmodt.config import HarmoConfig, HarmoDTConfig, ModelConfig
from papers.harmodt.data import _load, fit_normaliser
from papers.harmodt.harmony import HarmonyMasks, mask_update_gradients
from papers.harmodt.masks import top_voted_mask
from papers.harmodt.model import build_model
from papers.harmodt.train import Trainer
from shared import UserError
from shared.offline_rl.batches import TaskData
from shared.offline_rl.episodes import Episode
from shared.offline_rl.segments import STD_EPS


def _episode(obs: np.ndarray, rewards: np.ndarray, task: str = "toy") -> Episode:
    t = len(rewards)
    return Episode(observations=obs.astype(np.float32), actions=np.full((t, 4), 0.1, np.float32),
                   rewards=rewards.astype(np.float32), terminals=np.zeros(t, bool),
                   timeouts=np.eye(t, dtype=bool)[-1], success=np.zeros(t, bool), task=task)


def _cfg(*fields) -> HarmoDTConfig:
    cfg = HarmoDTConfig()
    cfg.model = dataclasses.replace(cfg.model, hidden=16, layers=1, context=4, prompt_steps=3,
                                    mlp_hidden=16, dropout=0.0)
    cfg.data = dataclasses.replace(cfg.data, max_steps=20)
    for section, key, value in fields:
        setattr(cfg, section, dataclasses.replace(getattr(cfg, section), **{key: value}))
    return cfg


def _tasks(n_tasks: int = 2) -> list[TaskData]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(n_tasks):
        eps = [_episode(rng.normal(3 * i, 1 + i, (12, 39)), np.full(12, r)) for r in (1.0, 5.0, 2.0)]
        prompts = [_episode(rng.normal(3 * i, 1 + i, (10, 39)), np.full(10, r)) for r in (3.0, 7.0, 4.0)]
        out.append(TaskData(f"task{i}", eps, prompts))
    return out


def test_prompts_are_the_last_steps_of_the_highest_return_demonstration():
    tasks = _tasks()
    trainer = Trainer(_cfg(), "prompt-dt", tasks, seed=0)
    batch = trainer.batches.batch(1, 4, np.random.default_rng(0))
    best = tasks[1].prompts[1]  # return 70 of 30, 70, 40
    norm = trainer.norm.for_task(1)
    start = len(best) - 3 - 1  # the last 3 steps but the final one, as the released get_prompt
    expected = (best.observations[start:start + 3] - norm.mean) / norm.std
    for row in range(4):  # every row, whatever the generator: deterministic
        np.testing.assert_allclose(batch["prompt_states"][row], expected, rtol=1e-6)
    assert batch["prompt_timesteps"][0].tolist() == [start, start + 1, start + 2]
    window = Trainer(_cfg(("data", "prompt", "window")), "prompt-dt", tasks, seed=0)
    rows = window.batches.batch(1, 8, np.random.default_rng(0))["prompt_timesteps"]
    assert len({tuple(r) for r in rows.tolist()}) > 1  # the old random windows


def test_per_task_normalisation_statistics():
    tasks = _tasks()
    cfg = _cfg()
    norm = fit_normaliser(cfg, "harmodt-f", [t.episodes for t in tasks])
    assert norm.per_task and norm.mean.shape == (2, 39)
    for i, t in enumerate(tasks):
        states = np.concatenate([e.observations for e in t.episodes])
        np.testing.assert_allclose(norm.mean[i], states.mean(0), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(norm.std[i], states.std(0) + STD_EPS, rtol=1e-5)
    shared = fit_normaliser(cfg, "g-harmodt", [t.episodes for t in tasks])  # task-agnostic
    every = np.concatenate([e.observations for t in tasks for e in t.episodes])
    assert not shared.per_task
    np.testing.assert_allclose(shared.mean, every.mean(0), rtol=1e-5, atol=1e-6)
    assert not fit_normaliser(_cfg(("data", "normalise", "shared")), "harmodt-f",
                              [t.episodes for t in tasks]).per_task
    trainer = Trainer(cfg, "harmodt-f", tasks, seed=0)  # the training segments use task i's stats
    np.testing.assert_allclose(trainer.batches.segments[1].states[0],
                               (tasks[1].episodes[0].observations - norm.mean[1]) / norm.std[1], rtol=1e-5)


class Toy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(4))
        self.embed = nn.Parameter(torch.zeros(1))  # never masked, but clipped with the rest


def test_task_gradients_are_clipped_then_masked_then_averaged():
    model = Toy()
    grads = {0: [3.0, 4.0, 0.0, 0.0], 1: [0.0, 0.0, 0.1, 0.1]}  # norms 5 and 0.1414 (+ embed)
    embed = {0: 0.0, 1: 0.0}

    def loss(task):
        return (torch.tensor(grads[task]) * model.w).sum() + embed[task] * model.embed.sum()

    masks = HarmonyMasks(model, HarmoConfig(), 2, [0, 1], "fisher", torch.Generator().manual_seed(0))
    masks.masks = [{"w": torch.tensor([True, False, True, True])}, {"w": torch.tensor([True, True, False, True])}]
    g = [masks.task_gradient(t, loss) for t in (0, 1)]
    np.testing.assert_allclose(g[0]["w"], [0.15, 0.2, 0, 0], rtol=1e-5)  # clipped to norm 0.25
    np.testing.assert_allclose(g[1]["w"], [0, 0, 0.1, 0.1], rtol=1e-6)  # under the clip: unchanged
    g_bar, prune, revive = mask_update_gradients(g, masks.masks, [0, 1])
    # masked: task 0 → [0.15, 0, 0, 0], task 1 → [0, 0, 0, 0.1]; mean:
    np.testing.assert_allclose(g_bar["w"], [0.075, 0.0, 0.0, 0.05], rtol=1e-5)
    np.testing.assert_allclose(prune[1]["w"], [0, 0, 0, 0.1], rtol=1e-6)
    np.testing.assert_allclose(revive[0]["w"], [0.15, 0.2, 0, 0], rtol=1e-5)  # dense (defect fixed)
    old = mask_update_gradients(g, masks.masks, [0, 1], task_grad="dense")[0]
    np.testing.assert_allclose(old["w"], [0.075, 0.1, 0.05, 0.05], rtol=1e-5)
    masks.cfg = dataclasses.replace(masks.cfg, task_grad="dense")
    np.testing.assert_allclose(masks.task_gradient(0, loss)["w"], [3, 4, 0, 0])  # unclipped


def test_k0_masks_stay_bitwise_unchanged_through_training(tmp_path, make_cfg):
    from papers.harmodt.data import load_task_data

    cfg = make_cfg(tmp_path, "harmo.k_max=5")
    trainer = Trainer(cfg, "harmodt-k0", load_task_data(cfg, "near-optimal"), seed=0)
    masks = [{n: m.clone() for n, m in mask.items()} for mask in trainer.harmony.masks]
    theta = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    updates = []
    while trainer.iteration < cfg.train.iterations:  # mask updates due at 4 and 8
        updates.append(trainer.step().get("k"))
    assert updates.count(0) == 2
    for new, old in zip(trainer.harmony.masks, masks):
        assert all(torch.equal(new[n], old[n]) for n in old)
    assert any(not torch.equal(p, theta[n]) for n, p in trainer.model.named_parameters())
    f = Trainer(cfg, "harmodt-f", load_task_data(cfg, "near-optimal"), seed=0)
    assert f.harmony.update_masks(f.loss_on, 2, progress=0.5) == 10  # the learned variant does move


def test_npz_accepts_v2_folder_names(tmp_path, capsys):
    folder = tmp_path / "reach-v2"
    folder.mkdir()
    for j in range(3):
        np.savez(folder / f"{j}.npz", observations=np.full((5, 39), j, np.float32),
                 actions=np.zeros((5, 4), np.float32), rewards=np.ones(5, np.float32))
    cfg = _cfg(("data", "source", "npz"), ("data", "path", str(tmp_path)))
    data = _load(cfg, ["reach-v3"], "near-optimal", 2)
    assert [e.observations[0, 0] for e in data["reach-v3"]] == [0.0, 1.0]
    assert data["reach-v3"][0].task == "reach-v3"
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "v2" in err[0] and "v3" in err[0]
    with pytest.raises(UserError, match="push-v2"):
        _load(cfg, ["push-v3"], "near-optimal", 2)


def test_embed_ln_acts_on_the_main_tokens_only():
    cfg = ModelConfig(hidden=16, layers=1, heads=1, context=3, prompt_steps=2, dropout=0.0, mlp_hidden=16)
    torch.manual_seed(0)
    b = {"states": torch.randn(2, 3, 39), "actions": torch.randn(2, 3, 4), "rtg": torch.randn(2, 3, 1),
         "timesteps": torch.zeros(2, 3, dtype=torch.long), "mask": torch.ones(2, 3)}
    prompt = {f"prompt_{k}": v[:, :2].clone() for k, v in b.items()}
    other = {k: v * 3 if v.dtype.is_floating_point and "mask" not in k else v for k, v in prompt.items()}
    for scope, prompt_moves in (("main", True), ("all", False)):
        model = build_model("prompt-dt", dataclasses.replace(cfg, embed_ln=scope), 39, 4, 20, 1).eval()
        with torch.no_grad():  # a zero LayerNorm erases what it normalises
            model.embed_ln.weight.zero_()
            model.embed_ln.bias.zero_()
            a, c = model({**b, **prompt}), model({**b, **other})
        assert (not torch.allclose(a, c)) == prompt_moves, scope


def test_the_unseen_mask_keeps_the_most_voted_half():
    masks = [{"w": torch.tensor([True, True, True, False, False, True])},
             {"w": torch.tensor([True, True, False, False, True, False])},
             {"w": torch.tensor([True, False, False, False, True, False])}]
    theta = {"w": torch.tensor([0.0, 0.1, 0.9, 5.0, 0.2, 0.3])}
    # votes 3, 2, 1, 0, 2, 1 → keep 3: entries 0, 1, 4; then among the 1-votes |θ| 0.9 > 0.3
    assert top_voted_mask(masks, 0.5, theta)["w"].tolist() == [True, True, False, False, True, False]
    assert top_voted_mask(masks, 1 / 3, theta)["w"].tolist() == [True, True, True, False, True, False]
