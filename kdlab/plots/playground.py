"""The Playground's figures: decision regions over the plane, shaded by confidence; plain data in, no torch.

One figure per panel (three students and the teacher's soft-target field): a heatmap whose colour is the
predicted class and whose depth is the confidence, the labelled points marked by class (colour and shape),
the transfer points faint. The heatmap carries ``class + confidence`` per cell (``region_codes``), so a
figure's JSON says what was drawn: ``floor(z)`` is the predicted class, ``z - floor(z)`` its confidence.

Class colours: Okabe & Ito, as ``ROLE_COLORS``. ``figures.CLASS_COLORS`` (Tableau 10) is not used here: its
orange and green differ by a CIELAB ΔE of 5 for a protanope (Machado et al. 2009 simulation), while the
three Okabe-Ito colours here stay at least 52 apart for protanopes and deuteranopes (17 between blue and
green for the rare tritanope); the confidence shading mixes every colour with white, which brings any two
closer still. Each class also has its own marker shape, so the points never depend on colour alone.

Titles and legends are drawn in the reader's language (kdlab.base.i18n), translated when a figure is built.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import plotly.graph_objects as go

from kdlab.base.i18n import N_, names, t
from kdlab.plots.figures import FONT, HOVER_END, NO_TEMPLATE, ROLE_COLORS, tint

REGION_COLORS = (ROLE_COLORS["teacher"], "#E69F00", ROLE_COLORS["scratch"], "#CC79A7")  # Okabe-Ito
CLASS_SYMBOLS = ("circle", "square", "diamond", "triangle-up")
SHADE = (0.06, 0.72)  # share of the class colour (the rest white) at no / full confidence: a marked point stands out
MAX_CONFIDENCE = 0.99  # codes are rounded to 2 decimals: c + 0.996 would round into class c + 1's band
MAX_TRANSFER_DRAWN = 600  # enough to show where the data lie; fewer keeps a redraw's JSON small
TITLE_FONT = dict(size=19)  # "Hard pseudo-labels" fits a panel 190 px wide (four across a 1024 px projector)
ARM_TITLES = {"scratch": N_("Scratch"), "hard": N_("Hard pseudo-labels"),
              "soft": N_("Soft targets"), "teacher": N_("Teacher")}
FACTS_STYLE = "style='font-size:15px'"  # a title's second line: smaller than its first


def region_color(c: int) -> str:
    return REGION_COLORS[c % len(REGION_COLORS)]


def soft_field(logits: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(logits / T) over the last axis, in numpy: the teacher's soft targets at any T from logits
    computed once (no forward pass). (G, G, C) -> (G, G, C)."""
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
        raise ValueError(t("temperature must be a finite number > 0, got {temperature!r}", temperature=temperature))
    z = np.asarray(logits, dtype=np.float32) / np.float32(temperature)
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def region_codes(probs: np.ndarray) -> list[list[float]]:
    """(G, G, C) probabilities -> G x G codes ``class + confidence``, confidence being how far the top
    probability is from a uniform guess: (p_max - 1/C) / (1 - 1/C), in [0, MAX_CONFIDENCE]."""
    p = np.asarray(probs, dtype=np.float32)
    c = p.shape[-1]
    conf = (p.max(axis=-1) - 1.0 / c) / (1.0 - 1.0 / c)  # (G, G)
    codes = p.argmax(axis=-1) + np.clip(conf, 0.0, MAX_CONFIDENCE)  # (G, G)
    return np.round(codes, 2).tolist()


def region_colorscale(num_classes: int) -> list[list]:
    """Class c owns [c/C, (c+1)/C] of the scale: its colour from almost white (unsure) to deep (sure)."""
    scale = []
    for c in range(num_classes):
        lo, hi = c / num_classes, (c + 1) / num_classes
        scale += [[lo, tint(region_color(c), SHADE[0])], [hi, tint(region_color(c), SHADE[1])]]
    return scale


def boundary_figure(xs: Sequence[float], ys: Sequence[float], probs: np.ndarray, classes: Sequence[str], title: str,
                    *, labelled_xy: np.ndarray | None = None, labelled_class: Sequence[int] | None = None,
                    transfer_xy: np.ndarray | None = None, legend: bool = False, height: int = 430) -> go.Figure:
    """Decision regions of one model on the grid (``probs`` is (len(ys), len(xs), C), row iy is ys[iy]),
    the labelled points by class, the transfer points faint."""
    n = len(classes)
    # Traces and layout as plain dicts, given to go.Figure unvalidated: validating the 6 400-cell z costs ~30 ms a
    # figure, paid three times at every live poll (building go.Heatmap(...) and then update_layout is 3x that
    # again). tests/test_plots_playground.py validates every kind of figure this module builds.
    traces: list[dict] = [dict(
        type="heatmap", x=_rounded(xs), y=_rounded(ys), z=region_codes(probs), zmin=0, zmax=n,
        colorscale=region_colorscale(n), showscale=False, hoverinfo="skip", meta={"kind": "regions"})]
    if transfer_xy is not None and len(transfer_xy):
        pts = np.asarray(transfer_xy)[:: max(1, math.ceil(len(transfer_xy) / MAX_TRANSFER_DRAWN))]
        traces.append(dict(type="scatter", x=_rounded(pts[:, 0]), y=_rounded(pts[:, 1]), mode="markers",
                           name=t("transfer points"), marker=dict(size=4.5, color="rgba(30,30,30,0.35)"),
                           hoverinfo="skip", meta={"kind": "transfer", "drawn_of": len(transfer_xy)}))
    if labelled_xy is not None and len(labelled_xy):
        traces += _labelled(np.asarray(labelled_xy), np.asarray(labelled_class), classes)
    axis = dict(showticklabels=False, showgrid=False, zeroline=False, ticks="", mirror=True, showline=True,
                linecolor="#888888", constrain="domain")
    layout = dict(
        title=dict(text=title, x=0.5, xanchor="center", font=TITLE_FONT), height=height, font=FONT,
        template=NO_TEMPLATE, margin=dict(l=8, r=8, t=66, b=8), plot_bgcolor="white", paper_bgcolor="white",
        showlegend=legend, legend=dict(orientation="h", yanchor="top", y=-0.02, x=0.5, xanchor="center"),
        xaxis=dict(axis, range=[float(xs[0]), float(xs[-1])]),
        yaxis=dict(axis, range=[float(ys[0]), float(ys[-1])], scaleanchor="x", scaleratio=1),
        uirevision="playground")  # a live redraw keeps the user's zoom
    return go.Figure(data=traces, layout=layout, _validate=False)


def _labelled(xy: np.ndarray, cls: np.ndarray, classes: Sequence[str]) -> list[dict]:
    out = []
    for c, name in enumerate(names(classes)):
        pts = xy[cls == c]
        out.append(dict(
            type="scatter", x=_rounded(pts[:, 0]), y=_rounded(pts[:, 1]), mode="markers",
            name=t("{name} (labelled)", name=name),
            marker=dict(size=15, color=region_color(c), symbol=CLASS_SYMBOLS[c % len(CLASS_SYMBOLS)],
                        line=dict(color="#1a1a1a", width=2)),
            hovertemplate=t("labelled: {name}", name=name) + HOVER_END, meta={"kind": "labelled", "class": c}))
    return out


def arm_title(arm: str, test_accuracy: float | None = None, step: int | None = None,
              total_steps: int | None = None) -> str:
    """'Soft targets', then a smaller second line '97.1 % test · step 400 / 2000' (each part when given): two
    short lines fit a quarter of a projector's width."""
    facts = []
    if test_accuracy is not None:
        facts.append(_tested(test_accuracy))
    if step is not None:
        facts.append(t("step {step}", step=step) if total_steps is None
                     else t("step {step} / {total}", step=step, total=total_steps))
    return _two_lines(t(ARM_TITLES.get(arm, arm)), " · ".join(facts))


def _tested(test_accuracy: float) -> str:
    return t("{accuracy:.1f} % test", accuracy=100 * test_accuracy)


def _two_lines(head: str, facts: str) -> str:
    return head + (f"<br><span {FACTS_STYLE}>{facts}</span>" if facts else "")


def teacher_figure(xs: Sequence[float], ys: Sequence[float], logits: np.ndarray, temperature: float,
                   classes: Sequence[str], *, test_accuracy: float | None = None, **points) -> go.Figure:
    """The teacher's soft-target field at T (``logits`` (G, G, C) computed once on the grid): the higher T,
    the paler the plane, the more of the teacher's doubt near a boundary reaches the student."""
    facts = " · ".join([t("soft targets")] + ([_tested(test_accuracy)] if test_accuracy is not None else []))
    title = _two_lines(t("Teacher at T = {temperature:g}", temperature=temperature), facts)  # short: a quarter of a projector's width
    return boundary_figure(xs, ys, soft_field(logits, temperature), classes, title, **points)


def _rounded(values: Sequence[float] | np.ndarray, decimals: int = 3) -> list[float]:
    """Plain, short lists: Plotly would base64 numpy arrays, and 3 decimals are far below a pixel."""
    return np.round(np.asarray(values, dtype=np.float64), decimals).tolist()
