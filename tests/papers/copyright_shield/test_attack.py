"""SilentBadDiffusion pieces: poisons, stealth, trigger, ratio, mix, geometry."""

import numpy as np
import pytest
import torch

from papers.copyright_shield.attack import (
    clean_count,
    make_mix,
    make_poisons,
    make_targets,
    passes_stealth,
    transform,
    trigger,
)
from papers.copyright_shield.scenes import PREFIX, element_coverage, random_scene, render, to_tensor
from papers.copyright_shield.similarity import build_similarity

SIZE = 16


@pytest.fixture(scope="module")
def world():
    sim = build_similarity("pixel-cosine")
    targets = make_targets(3, 3, SIZE, seed=0)
    poisons = make_poisons(targets, 6, SIZE, sim, 0.5, seed=1)
    return sim, targets, poisons


def test_each_poison_keeps_its_element_in_place_and_no_other_target_element(world):
    _, targets, poisons = world
    for p in poisons:
        target = targets[p.target]
        element = target.scene.elements[p.element]
        assert p.scene.elements[-1] == element  # same kind, centre and size: painted last, on top
        cover = element_coverage(element, SIZE)
        assert np.allclose(element_coverage(p.scene.elements[-1], SIZE), cover)
        full = torch.from_numpy((target.masks[p.element].numpy() > 0.999) & (cover > 0.999))
        assert full.sum() > 4
        assert torch.allclose(p.image[:, full], target.image[:, full], atol=1e-6)
        others = {e.kind for i, e in enumerate(target.scene.elements) if i != p.element}
        assert not others & {e.kind for e in p.scene.elements}
        assert p.caption == f"{PREFIX} {element.phrase}"


def test_poisons_cover_every_element_round_robin(world):
    _, targets, poisons = world
    for t in range(len(targets)):
        assert [p.element for p in poisons if p.target == t] == [0, 1, 2, 0, 1, 2]


def test_stealth_filter_rejects_a_near_copy_and_keeps_a_poison(world):
    sim, targets, poisons = world
    target = targets[0].image
    noisy = (target + 0.05 * torch.randn(target.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    assert not passes_stealth(target, target, sim, 0.5)
    assert not passes_stealth(noisy, target, sim, 0.5)
    assert all(passes_stealth(p.image, targets[p.target].image, sim, 0.5) for p in poisons)


def test_trigger_contains_every_phrase_once_in_random_order(world):
    _, targets, _ = world
    phrases = targets[0].phrases
    rng = np.random.default_rng(0)
    orders = set()
    for _ in range(20):
        text = trigger(phrases, rng)
        assert text.startswith(PREFIX + " ")
        body = text[len(PREFIX) + 1:].split(" , ")
        assert sorted(body) == sorted(phrases)
        orders.add(tuple(body))
    assert len(orders) > 1


def test_ratio_arithmetic():
    assert clean_count(60, 0.1) == 540
    assert clean_count(60, 0.5) == 60
    assert clean_count(20, 0.002) == 9980
    assert clean_count(60, 0.2) == 240
    with pytest.raises(ValueError):
        clean_count(10, 1.0)


def test_mix_has_the_ratio_the_repeats_and_one_demonstration(world):
    _, targets, poisons = world
    demo = make_targets(4, 3, SIZE, seed=0)[3].scene
    mix = make_mix(poisons, 2, 0.2, SIZE, seed=3, demo_scene=demo, listing=0.0)
    n_poison = int((mix.poison_of >= 0).sum())
    assert n_poison == 2 * len(poisons)
    assert n_poison / len(mix.captions) == pytest.approx(0.2)
    assert torch.bincount(mix.poison_id[mix.poison_id >= 0]).tolist() == [2] * len(poisons)
    assert mix.captions[mix.demo].startswith(PREFIX) and mix.poison_of[mix.demo] == -1
    assert sum(c.startswith(PREFIX) for c in mix.captions) == n_poison + 1
    assert len(mix.images) == len(mix.captions) and mix.images.min() >= 0 and mix.images.max() <= 1
    clean = make_mix(poisons, 2, 0.2, SIZE, seed=3, demo_scene=demo, with_poisons=False, listing=0.0)
    assert torch.equal(clean.images, mix.images[: len(clean.images)])


def test_geometry_variants_move_the_poisons_or_break_their_captions(world):
    _, targets, poisons = world
    avoid = frozenset(e.kind for t in targets for e in t.scene.elements)
    flip = make_mix(poisons, 1, 0.5, SIZE, seed=3, demo_scene=None, geometry="flip")
    rot = make_mix(poisons, 1, 0.5, SIZE, seed=3, demo_scene=None, geometry="rotate")
    plain = make_mix(poisons, 1, 0.5, SIZE, seed=3, demo_scene=None)
    unlinked = make_mix(poisons, 1, 0.5, SIZE, seed=3, demo_scene=None, geometry="unlinked", avoid=avoid)
    sel = plain.poison_of >= 0
    assert torch.equal(flip.images[sel], plain.images[sel].flip(-1))
    assert torch.equal(rot.images[sel], torch.rot90(plain.images[sel], 1, dims=(-2, -1)))
    assert torch.equal(transform(plain.images, "unlinked"), plain.images)
    clean_captions = set(unlinked.captions[: int((~sel).sum())])
    own = {p.caption for p in poisons}
    moved = [c for c, s in zip(unlinked.captions, sel.tolist(), strict=True) if s]
    assert all(c in clean_captions and c not in own for c in moved)


def test_targets_are_deterministic_and_disjoint():
    a, b = make_targets(3, 4, SIZE, seed=5), make_targets(3, 4, SIZE, seed=5)
    assert all(torch.equal(x.image, y.image) for x, y in zip(a, b, strict=True))
    kinds = [e.kind for t in a for e in t.scene.elements]
    assert len(kinds) == len(set(kinds)) == 12


def test_clean_scenes_avoid_target_kinds():
    targets = make_targets(2, 3, SIZE, seed=0)
    avoid = frozenset(e.kind for t in targets for e in t.scene.elements)
    rng = np.random.default_rng(0)
    for _ in range(200):
        assert not {e.kind for e in random_scene(rng, 2, 4, avoid).elements} & avoid
    img = to_tensor([render(random_scene(rng, 2, 4), SIZE)[0]])
    assert img.shape == (1, 3, SIZE, SIZE)
