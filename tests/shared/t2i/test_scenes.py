import hashlib
import itertools

import numpy as np
import torch

from shared.t2i.scenes import (
    BACKGROUNDS,
    COLOURS,
    POSITIONS,
    SHAPES,
    SIZES,
    Element,
    Layout,
    Scene,
    caption,
    coverage,
    dominant_colour,
    element_masks,
    layout_caption,
    layout_vocabulary,
    make_dataset,
    parse_layout,
    parse_prompt,
    render,
    render_layout,
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


def test_make_dataset_shapes_range_determinism_and_coverage():
    images, captions = make_dataset(2000, 16, seed=3)
    assert images.shape == (2000, 3, 16, 16) and images.dtype == torch.float32
    assert images.min() >= -1 and images.max() <= 1 and len(captions) == 2000
    again, captions_again = make_dataset(2000, 16, seed=3)
    assert torch.equal(images, again) and captions == captions_again
    other, _ = make_dataset(2000, 16, seed=4)
    assert not torch.equal(images, other)
    combos = {(p["colour"], p["shape"]) for p in map(parse_prompt, captions)}
    assert combos == {(c, s) for c in COLOURS for s in SHAPES}  # every combination
    assert "a red circle" in captions  # and the short "a <colour> <shape>" form


def test_dominant_colour_names_every_rendered_object():
    for scene in ALL_SCENES:
        assert dominant_colour(render(scene, 16)) == scene.colour, scene
    assert dominant_colour(np.full((16, 16, 3), 0.5, dtype=np.float32)) is None


def test_render_is_the_alpha_blend_of_coverage_bit_for_bit():
    # the formula the single-object renderer has always used (SDPO's cached models depend on it)
    for scene in ALL_SCENES[::37]:
        alpha = coverage(scene, 16)[..., None]
        fg = np.asarray(COLOURS[scene.colour], dtype=np.float32)
        bg = np.asarray(BACKGROUNDS[scene.background], dtype=np.float32)
        np.testing.assert_array_equal(render(scene, 16), (alpha * fg + (1 - alpha) * bg).astype(np.float32))


def test_make_dataset_is_unchanged():
    # sha256 of make_dataset(64, 16, 0) as generated before the move into shared/t2i (515b945)
    images, captions = make_dataset(64, 16, seed=0)
    assert hashlib.sha256(images.numpy().tobytes()).hexdigest()[:16] == "ac6a75203df43e0a"
    assert hashlib.sha256("|".join(captions).encode()).hexdigest()[:16] == "997324b05647719c"


def test_a_one_element_layout_renders_as_its_scene():
    scene = Scene("triangle", "purple", "large", "left", "gray")
    image, masks = render_layout(scene.layout(), 16)
    np.testing.assert_array_equal(image, render(scene, 16))
    np.testing.assert_array_equal(masks[0], coverage(scene, 16))


def test_layout_elements_at_chosen_positions_get_one_mask_each():
    layout = Layout((Element("square", "red", 0.2, (0.25, 0.25)), Element("circle", "blue", 0.15, (0.75, 0.7)),
                     Element("cross", "yellow", "small", "centre")), "black")
    image, visible = render_layout(layout, 32)
    own = element_masks(layout, 32)
    assert image.shape == (32, 32, 3) and visible.shape == own.shape == (3, 32, 32)
    for k, element in enumerate(layout.elements):  # symmetric shapes: masks centred on the positions
        ys, xs = np.nonzero(own[k])
        weights = own[k][ys, xs]
        centroid = ((np.average(xs, weights=weights) + 0.5) / 32, (np.average(ys, weights=weights) + 0.5) / 32)
        np.testing.assert_allclose(centroid, element.centre, atol=0.02)
        solid = visible[k] == 1
        assert solid.any()
        np.testing.assert_array_equal(image[solid], np.broadcast_to(np.float32(COLOURS[element.colour]), (solid.sum(), 3)))
    assert (visible.sum(0) <= 1 + 1e-6).all() and (visible >= 0).all()
    background = 1 - visible.sum(0)
    np.testing.assert_array_equal(image[background == 1], 0.0)  # black where nothing is


def test_later_elements_occlude_earlier_ones():
    under, over = Element("square", "red", "large", "centre"), Element("circle", "green", "small", "centre")
    image, visible = render_layout(Layout((under, over), "white"), 16)
    own = element_masks(Layout((under, over), "white"), 16)
    np.testing.assert_allclose(visible[0], own[0] * (1 - own[1]))
    np.testing.assert_array_equal(visible[1], own[1])
    assert visible[0][8, 8] == 0 and own[0][8, 8] == 1  # the centre shows the circle only
    np.testing.assert_array_equal(image[8, 8], np.float32(COLOURS["green"]))
    swapped, _ = render_layout(Layout((over, under), "white"), 16)
    np.testing.assert_array_equal(swapped[8, 8], np.float32(COLOURS["red"]))


def test_layout_caption_round_trips_and_uses_the_layout_vocabulary():
    layout = Layout((Element("circle", "red", "large", "left"), Element("square", "blue", "small", "right")), "navy")
    text = layout_caption(layout)
    assert text == "a large red circle at the left and a small blue square at the right on a navy background"
    elements, background = parse_layout(text)
    assert background == "navy"
    assert elements == [{"shape": "circle", "colour": "red", "size": "large", "position": "left"},
                        {"shape": "square", "colour": "blue", "size": "small", "position": "right"}]
    assert set(text.split()) <= set(layout_vocabulary())
    assert layout_vocabulary()[:len(vocabulary())] == vocabulary()  # single-object token ids unchanged
    free = Layout((Element("cross", "orange", 0.1, (0.2, 0.8)),), "gray")
    assert layout_caption(free) == "an orange cross on a gray background"  # unnamed parts are left out
    assert layout_caption(layout, False, False, False) == "a red circle and a blue square"
    assert parse_layout("a red circle and a blue square")[1] is None
