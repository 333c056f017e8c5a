"""The continual trainer on the smoke sequence: data isolation, Grow, Prune, determinism and
resume in the middle of the sequence."""

import json

import pytest
import torch

from papers.compoformer.config import METHODS
from papers.compoformer.train import REPLAY, Trainer, default_loader, train
from shared.cli import Context

CTX = Context("compoformer", "smoke", [], None)
THREE_STAGES = ("compoformer-prune", "compoformer-grow", "packnet", "finetune")


def _fixed_batch(task):
    g = torch.Generator().manual_seed(5)
    return {"states": torch.randn(4, 4, 39, generator=g), "actions": torch.zeros(4, 4, 4),
            "rtg": torch.randn(4, 4, 1, generator=g), "timesteps": torch.arange(4).repeat(4, 1),
            "mask": torch.ones(4, 4), "task": torch.full((4,), task)}


@pytest.fixture(scope="session")
def trained(tmp_path_factory, smoke_data_dir):
    """Every method over a 3-stage smoke sequence, with an instrumented loader and snapshots
    of the model after each stage."""
    from tests.papers.compoformer.conftest import smoke_config

    root = tmp_path_factory.mktemp("compoformer-train")
    out = {}
    for method in METHODS:
        stages = 3 if method in THREE_STAGES else 2
        cfg = smoke_config(root, f"data_dir={smoke_data_dir}", f"data.stages={stages}",
                           "train.iterations=4", "compo.warmup=0.25", "compo.finetune=0.25",
                           "eval.every=100")
        base = default_loader(cfg)
        calls, holder = [], []  # the trainer is built after its loader, which reads its stage

        def loader(stage, base=base, calls=calls, holder=holder):
            calls.append((holder[0].stage, stage))
            return base(stage)

        trainer = Trainer(cfg, method, 0, loader)
        holder.append(trainer)
        snaps = []
        run_dir = root / method
        run_dir.mkdir()
        for stage in range(1, trainer.n_stages + 1):
            trainer.run(run_dir, until_stage=stage)
            model = trainer.model.eval()
            with torch.no_grad():
                outputs = {j: model.stage_action(_fixed_batch(j), j).clone() for j in range(stage)}
            snaps.append({"state": {k: v.clone() for k, v in model.backbone.state_dict().items()},
                          "owner": {k: v.clone() for k, v in model.owner.items()},
                          "outputs": outputs,
                          "trainable": [n for n, p in trainer.params] if hasattr(trainer, "params") else []})
        model.train()
        out[method] = {"trainer": trainer, "snaps": snaps, "calls": calls}
    return out


def test_a_stage_never_reads_an_earlier_tasks_data(trained):
    for method, t in trained.items():
        trainer = t["trainer"]
        n = trainer.T
        if method == "mtl":  # one stage over every task by definition
            assert sorted(s for _, s in t["calls"]) == list(range(n))
            continue
        assert t["calls"] == [(j, j) for j in range(n)], method
        assert trainer.stream.reads == [(j, j) for j in range(n)], method
        assert trainer.stream.memory_reads == [], method
        if method in REPLAY:
            assert sorted(trainer.memory) == list(range(n))  # kept explicitly at each stage's end
        else:
            assert trainer.memory == {}


def test_grow_adds_lora_parameters_only_and_keeps_the_base(trained):
    t = trained["compoformer-grow"]
    snaps = t["snaps"]
    base = [k for k in snaps[0]["state"] if "lora_" not in k]
    for later in snaps[1:]:
        for k in base:
            assert torch.equal(later["state"][k], snaps[0]["state"][k]), k
    # stage 1 trained only its own adapter (plus its head and α projections)
    trainable = snaps[1]["trainable"]
    backbone = [n for n in trainable if n.startswith("backbone.")]
    assert backbone and all("lora_" in n and ".t1." in n for n in backbone)
    assert all(n.startswith(("backbone.", "heads.1.", "meta.1.")) for n in trainable)
    lora_b1 = [k for k in snaps[0]["state"] if "lora_B.t1" in k]
    assert any(not torch.equal(snaps[1]["state"][k], snaps[0]["state"][k]) for k in lora_b1)
    for k in lora_b1:
        assert torch.equal(snaps[2]["state"][k], snaps[1]["state"][k])
    # every stage's output is unchanged by later stages
    for j in range(3):
        for later in snaps[j + 1:]:
            assert torch.equal(later["outputs"][j], snaps[j]["outputs"][j])


@pytest.mark.parametrize("method", ["compoformer-prune", "packnet"])
def test_prune_masks_disjoint_union_grows_outputs_bit_identical(trained, method):
    snaps = trained[method]["snaps"]
    owner = snaps[-1]["owner"]
    masks = [{k: o == j for k, o in owner.items()} for j in range(3)]
    for a in range(3):
        for b in range(a + 1, 3):
            assert not any((masks[a][k] & masks[b][k]).any() for k in owner)
    sizes = [sum(int(((o >= 0) & (o <= j)).sum()) for o in owner.values()) for j in range(3)]
    assert sizes[0] < sizes[1] < sizes[2]
    # the owners recorded after stage j never change later
    for j, snap in enumerate(snaps):
        for k, o in snap["owner"].items():
            done = (o >= 0) & (o <= j)
            assert torch.equal(owner[k][done], o[done])
    # zero forgetting by construction: each earlier stage's output is bit-identical later
    for j in range(3):
        for later in snaps[j + 1:]:
            assert torch.equal(later["outputs"][j], snaps[j]["outputs"][j])
    trainer = trained[method]["trainer"]
    assert trainer.summary()["F"] == 0.0


def test_fine_tuning_changes_earlier_outputs(trained):
    snaps = trained["finetune"]["snaps"]
    assert not torch.equal(snaps[2]["outputs"][0], snaps[0]["outputs"][0])


def test_deterministic_and_resumes_mid_sequence(make_cfg, tmp_path):
    """Two runs of a seed agree, one of them killed inside stage 1 of 3 and resumed."""
    extra = ("data.stages=3", "train.iterations=4", "train.checkpoint_every=1", "compo.warmup=0.25",
             "compo.finetune=0.25")
    a = train(make_cfg(tmp_path / "a", *extra), CTX, "compoformer-prune", 0)
    cfg = make_cfg(tmp_path / "c", *extra)
    # stage 0: 3 train + 1 fine-tune updates; stage 1: 1 warm-up, the check, 1 train, ...
    stopped = train(cfg, CTX, "compoformer-prune", 0, stop_after=6)
    assert stopped == {"stopped": True, "run_dir": stopped["run_dir"]}
    c = train(make_cfg(tmp_path / "c", *extra, "resume=latest"), CTX, "compoformer-prune", 0)
    assert c["run_dir"] == stopped["run_dir"]
    for key in ("R", "R_init", "P", "F", "losses", "curves", "checks", "alphas"):
        assert a[key] == c[key], key
    resumed = list((tmp_path / "c").rglob("run-resumed-*.json"))
    assert len(resumed) == 1
    assert json.loads(resumed[0].read_text())["resumed_from"]
