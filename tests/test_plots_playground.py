"""kdlab.plots.playground: the decision-region figures carry the fields and points they are given."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from kdlab.plots import playground as pp

CLASSES = ("arm 0", "arm 1", "arm 2")
G = 6
XS, YS = np.linspace(-2, 2, G), np.linspace(-1.5, 1.5, G)


def spec(fig) -> dict:
    text = fig.to_json()
    assert "bdata" not in text  # plain lists, so tests and people can read the JSON
    return json.loads(text)


def field(seed: int = 0) -> np.ndarray:
    logits = np.random.default_rng(seed).normal(0, 3, (G, G, 3))
    return pp.soft_field(logits, 1.0)  # (G, G, 3)


def test_region_codes_are_class_plus_confidence():
    p = field()
    codes = np.array(pp.region_codes(p))
    assert codes.shape == (G, G)
    assert np.array_equal(np.floor(codes).astype(int), p.argmax(-1))
    conf = (p.max(-1) - 1 / 3) / (1 - 1 / 3)
    assert np.allclose(codes - np.floor(codes), np.clip(conf, 0, pp.MAX_CONFIDENCE), atol=0.006)
    sure = np.array([[[0.0, 0.0, 1.0], [1 / 3, 1 / 3, 1 / 3]]])  # a sure cell of class 2, a uniform cell
    assert pp.region_codes(sure) == [[2.99, 0.0]]  # certainty stays inside its class's band


def test_boundary_figure_carries_the_field_and_the_points():
    p = field()
    labelled = np.array([[0.1, 0.2], [0.3, -0.4], [1.0, 1.0], [-1.0, 0.5]])
    cls = np.array([0, 1, 2, 2])
    transfer = np.random.default_rng(1).normal(size=(2000, 2))
    fig = pp.boundary_figure(XS, YS, p, CLASSES, pp.arm_title("soft", 0.9712, 400, 2000),
                             labelled_xy=labelled, labelled_class=cls, transfer_xy=transfer)
    s = spec(fig)
    regions = next(t for t in s["data"] if t["meta"]["kind"] == "regions")
    assert regions["z"] == pp.region_codes(p) and regions["x"] == pytest.approx(XS.tolist())
    assert regions["y"] == pytest.approx(YS.tolist()) and regions["zmin"] == 0 and regions["zmax"] == 3
    marks = {t["meta"]["class"]: t for t in s["data"] if t["meta"]["kind"] == "labelled"}
    assert marks[2]["x"] == [1.0, -1.0] and marks[2]["y"] == [1.0, 0.5]
    assert marks[0]["marker"]["color"] == pp.region_color(0) and marks[1]["marker"]["symbol"] == "square"
    faint = next(t for t in s["data"] if t["meta"]["kind"] == "transfer")
    assert faint["meta"]["drawn_of"] == 2000 and 0 < len(faint["x"]) <= pp.MAX_TRANSFER_DRAWN
    title = s["layout"]["title"]["text"]
    assert "Soft targets" in title and "97.1 % test" in title and "step 400 / 2000" in title
    assert s["layout"]["yaxis"]["scaleanchor"] == "x"  # square cells: a circle stays round
    assert s["layout"]["title"]["font"]["size"] >= 18 and s["layout"]["font"]["size"] >= 15  # projector


def test_a_figure_without_points_is_the_field_alone():
    s = spec(pp.boundary_figure(XS, YS, field(), CLASSES, "t"))
    assert [t["meta"]["kind"] for t in s["data"]] == ["regions"]


def test_the_colour_scale_gives_each_class_its_band():
    scale = pp.region_colorscale(3)
    positions = [pos for pos, _ in scale]
    assert positions == sorted(positions) and positions[0] == 0 and positions[-1] == 1
    assert [pos for pos, _ in scale[::2]] == pytest.approx([0, 1 / 3, 2 / 3])
    deep = {scale[2 * c + 1][1] for c in range(3)}
    assert len(deep) == 3  # three distinct class colours at full confidence
    assert pp.REGION_COLORS[:3] == ("#0072B2", "#E69F00", "#009E73")  # Okabe-Ito


def test_teacher_figure_softens_with_temperature():
    logits = np.random.default_rng(0).normal(0, 4, (G, G, 3))
    cold = spec(pp.teacher_figure(XS, YS, logits, 1.0, CLASSES, test_accuracy=1.0))
    hot = spec(pp.teacher_figure(XS, YS, logits, 20.0, CLASSES))
    z_cold, z_hot = (np.array(f["data"][0]["z"]) for f in (cold, hot))
    assert np.array_equal(np.floor(z_cold), np.floor(z_hot))  # T never changes the argmax
    assert (z_hot - np.floor(z_hot)).mean() < (z_cold - np.floor(z_cold)).mean()  # but pales the field
    assert "T = 20" in hot["layout"]["title"]["text"] and "100.0 % test" in cold["layout"]["title"]["text"]


def test_soft_field_is_the_softmax_at_t():
    logits = np.array([[[2.0, 0.0, -1.0]]])
    p = pp.soft_field(logits, 2.0)
    e = np.exp(np.array([1.0, 0.0, -0.5]))
    assert np.allclose(p[0, 0], e / e.sum(), atol=1e-6)
    for bad in (0, -1, math.inf, math.nan):
        with pytest.raises(ValueError, match="temperature"):
            pp.soft_field(logits, bad)


def test_arm_titles():
    assert pp.arm_title("scratch") == "Scratch"
    assert "44.0 % test" in pp.arm_title("scratch", 0.44) and "step 7" in pp.arm_title("hard", step=7)


def test_every_figure_is_valid_plotly_though_built_unvalidated():
    import plotly.graph_objects as go

    pts = dict(labelled_xy=np.zeros((3, 2)), labelled_class=[0, 1, 2], transfer_xy=np.ones((700, 2)))
    logits = np.random.default_rng(1).normal(0, 3, (G, G, 3))
    for fig in (pp.boundary_figure(XS, YS, field(), CLASSES, pp.arm_title("hard", 0.5, 10), **pts, legend=True),
                pp.boundary_figure(XS, YS, field(), CLASSES, "bare"),
                pp.teacher_figure(XS, YS, logits, 3.0, CLASSES, test_accuracy=0.9, **pts)):
        checked = go.Figure(fig.to_dict())  # validates every property: a typo in a key or a bad value raises
        assert checked.to_dict() == fig.to_dict()
