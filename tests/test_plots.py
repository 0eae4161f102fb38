"""kdlab.plots.figures: figures carry the data they are given, in the app's fixed colours, as readable JSON."""
import json
import math

import numpy as np
import pytest

from kdlab.base.record import Curve
from kdlab.plots import figures as plots
from kdlab.plots.bars import probability_bars, read_bars

CLASSES = [str(i) for i in range(3)]


def _spec(fig):
    text = fig.to_json()
    assert "bdata" not in text  # plain lists, so tests and people can read the JSON
    return json.loads(text)


def test_colours_are_fixed_and_distinct():
    assert len(set(plots.ROLE_COLORS.values())) == 3
    assert plots.class_color(0) == plots.class_color(len(plots.CLASS_COLORS)) != plots.class_color(1)


def test_training_curves_draw_each_role_in_its_colour_on_its_own_panels():
    c = Curve(step=[5, 10], train_loss=[2.0, 1.0], soft=[1.0, 0.5], hard=[1.5, 1.0], train_accuracy=[0.5, 0.7],
              eval_step=[10], test_accuracy=[0.6])
    spec = _spec(plots.training_curves({"distilled": c, "scratch": c}, teacher_accuracy=0.9))
    by = {(d["meta"]["role"], d["meta"]["metric"]): d for d in spec["data"]}
    assert by[("distilled", "soft")]["y"] == [1.0, 0.5] and by[("distilled", "soft")]["x"] == [5, 10]
    assert ("scratch", "soft") not in by  # the scratch student has no soft term
    assert by[("distilled", "soft")]["xaxis"] == "x2" and by[("distilled", "hard")]["xaxis"] == "x"  # own panels
    assert by[("scratch", "test_accuracy")]["line"]["color"] == plots.ROLE_COLORS["scratch"]
    assert by[("teacher", "test_accuracy")]["y"] == [0.9, 0.9]
    assert spec["layout"]["yaxis3"]["range"][0] == 0  # accuracy from 0: a gap is drawn at its true size
    assert sum(d.get("showlegend", True) for d in spec["data"]) == 3  # one legend entry per role


def test_confusion_and_difference_matrices():
    a, b = [[5, 1, 0], [0, 6, 0], [1, 0, 4]], [[4, 2, 0], [0, 6, 0], [0, 0, 5]]
    cm = _spec(plots.confusion_figure(a, CLASSES, "t", "distilled"))["data"][0]
    assert cm["z"] == a and cm["text"][0] == ["5", "1", ""]
    diff = _spec(plots.confusion_difference(a, b, CLASSES))["data"][0]
    assert diff["z"] == [[1, -1, 0], [0, 0, 0], [1, 0, -1]] and diff["zmin"] == -1 and diff["zmax"] == 1


def test_the_soft_target_bars_draw_each_probability_and_mark_the_true_class():
    bars = [{"probs": [0.2, 0.3, 0.5], "role": "teacher", "temperature": 1.0, "faint": True},
            {"probs": [0.1, 0.2, 0.7], "role": "distilled", "temperature": 4.0}]
    html = probability_bars(CLASSES, bars, 1)
    assert read_bars(html) == [{"role": "teacher", "probs": [0.2, 0.3, 0.5]},
                               {"role": "distilled", "probs": [0.1, 0.2, 0.7]}]
    assert 'data-kd-bars="T=4"' in html and "height:70.00%" in html and "height:20.00%" in html  # 0-100 % axis
    assert html.count("dotted") == 1 and f"dotted {plots.class_color(1)}" in html  # the true class, in its colour
    assert "distilled student · T=4" in html and "teacher · T=1" in html  # the legend
    assert plots.tint(plots.ROLE_COLORS["teacher"], 0.35) in html  # T = 1 faint
    assert "font-size:15px" in html and "font-size:20px" in probability_bars(CLASSES, bars, 1, presenter=True)
    assert "dotted" not in probability_bars(CLASSES, bars)  # no true class (a drawing)


def test_the_class_names_shrink_to_fit_their_share_of_the_row_and_never_break_inside_a_word():
    from kdlab.plots.bars import _label_size

    fashion = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    html = probability_bars(fashion, [{"probs": [0.1] * 10, "role": "teacher", "temperature": 2}])
    assert "word-break:keep-all" in html and "T-shirt/<wbr>top" in html  # breaks after '/', not inside a word
    # "Pullover" (8 letters) sets the size: 10 names of ~4.2 em must fit the row
    assert _label_size(fashion, 19) == "clamp(10px, 2.28cqi, 19px)"
    assert _label_size([str(c) for c in range(10)], 14) == "clamp(10px, 18.27cqi, 14px)"  # digits: the full size
    assert _label_size(["运动鞋", "包"], 14) == "clamp(10px, 15.83cqi, 14px)"  # a Chinese word: 3 em, kept whole


def test_the_soft_target_bars_escape_names_and_clamp_heights():
    html = probability_bars(["<b>x</b>", "y"], [{"probs": [1.0000001, -0.0], "role": "teacher", "temperature": 2}])
    assert "<b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html
    assert "height:100.00%" in html and "height:0.00%" in html


def test_entropy_similarity_and_sweep():
    ent = _spec(plots.entropy_curves([0.5, 1, 2], [{"label": "#1", "entropy": [0.1, 0.2, 0.3], "class": 1}], 1, 3))
    assert ent["data"][0]["y"] == [0.1, 0.2, 0.3] and math.isclose(ent["data"][1]["y"][0], math.log(3))
    sim = _spec(plots.similarity(np.full((3, 3), 1 / 3).tolist(), CLASSES, 2.0))["data"][0]
    assert sim["zmin"] == 0 and sim["zmax"] == plots.SIMILARITY_MAX  # fixed: moving T shows the mass grow
    assert sim["z"][0][0] is None and sim["z"][0][1] == pytest.approx(1 / 3)
    heat = _spec(plots.sweep_heatmap([1.0, 4.0], [0.5], [[0.9], [None]], "acc"))["data"][0]
    assert heat["z"] == [[90.0], [None]] and heat["y"] == ["1", "4"]
    gain = _spec(plots.sweep_heatmap([1.0], [0.5], [[-0.02]], "gain", diverging=True))["data"][0]
    assert gain["zmin"] == -gain["zmax"]


def test_overlay_and_class_changes():
    run = {"label": "a", "distilled": Curve(eval_step=[10], test_accuracy=[0.5]), "scratch": None}
    assert len(_spec(plots.overlay_curves([run, run]))["data"]) == 2
    bars = _spec(plots.class_changes([0.1, None, -0.05], CLASSES))["data"][0]
    assert bars["y"][0] == pytest.approx(10.0) and bars["y"][1] is None


def test_display_image_is_a_crisp_uint8_square():
    img = plots.display_image(np.arange(64, dtype=np.float32).reshape(1, 8, 8))
    assert img.dtype == np.uint8 and img.shape == (112, 112) and img.min() == 0 and img.max() == 255
