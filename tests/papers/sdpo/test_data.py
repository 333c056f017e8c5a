import itertools

import numpy as np
import pytest
import torch

from papers.sdpo.data import (
    BACKGROUNDS,
    COLOURS,
    HELDOUT,
    POSITIONS,
    SHAPES,
    SIZES,
    Scene,
    caption,
    coverage,
    dominant_colour,
    make_dataset,
    parse_prompt,
    render,
    rl_prompts,
    sample_scene,
    vocabulary,
)

ALL_SCENES = [Scene(*p) for p in itertools.product(SHAPES, COLOURS, SIZES, POSITIONS, BACKGROUNDS)
              if p[1] != p[4]]


def test_large_square_covers_exactly_pixels_4_to_11():
    # half-extent 0.85 * 0.29 = 0.2465 around 0.5: fine pixels 16..47 of 64, i.e. 4..11 of 16
    scene = Scene("square", "red", "large", "centre", "black")
    image = render(scene, 16)
    assert image.shape == (16, 16, 3) and image.dtype == np.float32
    inside = np.zeros((16, 16), dtype=bool)
    inside[4:12, 4:12] = True
    np.testing.assert_array_equal(image[inside], np.tile(np.float32([0.9, 0.1, 0.1]), (64, 1)))
    np.testing.assert_array_equal(image[~inside], 0.0)


def test_coverage_is_antialiased_in_sixteenths():
    cover = coverage(Scene("circle", "red", "large", "centre", "gray"), 16)
    assert cover[8, 8] == 1.0 and cover[0, 0] == 0.0
    partial = cover[(cover > 0) & (cover < 1)]
    assert partial.size > 0
    np.testing.assert_array_equal(partial * 16, np.round(partial * 16))


def test_triangle_points_up_and_positions_move_the_shape():
    cover = coverage(Scene("triangle", "red", "large", "centre", "black"), 16)
    rows = cover.sum(1)
    top, bottom = np.nonzero(rows)[0][[0, -1]]
    assert rows[top] < rows[bottom]  # narrow apex above the wide base
    centroid = {}
    for position in POSITIONS:
        c = coverage(Scene("circle", "red", "small", position, "black"), 16)
        ys, xs = np.nonzero(c)
        centroid[position] = (np.average(xs, weights=c[ys, xs]), np.average(ys, weights=c[ys, xs]))
    assert centroid["left"][0] < centroid["centre"][0] < centroid["right"][0]
    assert centroid["top"][1] < centroid["centre"][1] < centroid["bottom"][1]


def test_render_is_in_range_and_deterministic():
    scene = Scene("cross", "orange", "small", "top", "navy")
    a, b = render(scene, 32), render(scene, 32)
    np.testing.assert_array_equal(a, b)
    assert a.min() >= 0 and a.max() <= 1


def test_sample_scene_never_paints_object_in_background_colour():
    rng = np.random.default_rng(0)
    scenes = [sample_scene(rng) for _ in range(2000)]
    assert all(s.colour != s.background for s in scenes)
    assert {s.colour for s in scenes} == set(COLOURS)
    assert {s.shape for s in scenes} == set(SHAPES)


def test_caption_forms():
    scene = Scene("circle", "red", "large", "left", "black")
    assert caption(scene) == "a large red circle at the left on a black background"
    assert caption(scene, False, False, False) == "a red circle"
    assert caption(Scene("cross", "orange", "small", "top", "gray"), False, True, False) == \
        "an orange cross at the top"


def test_parse_round_trips_every_caption_form():
    for scene in ALL_SCENES:
        for flags in itertools.product([False, True], repeat=3):
            parsed = parse_prompt(caption(scene, *flags))
            assert parsed == {
                "shape": scene.shape, "colour": scene.colour,
                "size": scene.size if flags[0] else None,
                "position": scene.position if flags[1] else None,
                "background": scene.background if flags[2] else None,
            }


def test_parse_white_object_on_black_background():
    parsed = parse_prompt("A white square on a black background")
    assert parsed["colour"] == "white" and parsed["background"] == "black"


def test_every_caption_word_is_in_the_vocabulary():
    _, captions = make_dataset(500, 8, seed=1)
    assert {w for c in captions for w in c.split()} <= set(vocabulary())


def test_rl_splits_are_disjoint_and_cover_every_colour_and_shape():
    train, heldout = rl_prompts("train"), rl_prompts("heldout")
    assert len(train) == 24 and len(heldout) == 8 and not set(train) & set(heldout)
    assert heldout[:2] == ["a red circle", "a green square"]
    parsed = [parse_prompt(p) for p in train]
    assert {p["colour"] for p in parsed} == set(COLOURS)
    assert {p["shape"] for p in parsed} == set(SHAPES)
    assert {(p["colour"], p["shape"]) for p in map(parse_prompt, heldout)} == HELDOUT
    with pytest.raises(ValueError):
        rl_prompts("test")


def test_make_dataset_shapes_range_determinism_and_coverage():
    images, captions = make_dataset(2000, 16, seed=3)
    assert images.shape == (2000, 3, 16, 16) and images.dtype == torch.float32
    assert images.min() >= -1 and images.max() <= 1 and len(captions) == 2000
    again, captions_again = make_dataset(2000, 16, seed=3)
    assert torch.equal(images, again) and captions == captions_again
    other, _ = make_dataset(2000, 16, seed=4)
    assert not torch.equal(images, other)
    combos = {(p["colour"], p["shape"]) for p in map(parse_prompt, captions)}
    assert HELDOUT <= combos  # the base model sees the RL-held-out combinations too
    assert "a red circle" in captions  # and the short RL form


def test_dominant_colour_names_every_rendered_object():
    for scene in ALL_SCENES:
        assert dominant_colour(render(scene, 16)) == scene.colour, scene
    assert dominant_colour(np.full((16, 16, 3), 0.5, dtype=np.float32)) is None
