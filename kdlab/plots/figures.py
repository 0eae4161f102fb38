"""Plotly figure builders: plain data in, a figure out; no Streamlit here.

Colours are defined once: one per model role (teacher, distilled, scratch) and one per class, so a class
or a role looks the same in every chart of the app. Data go into figures as Python lists (not numpy
arrays, which Plotly >= 6 base64-encodes), so a figure's JSON stays readable in tests.

Texts are drawn in the reader's language (kdlab.base.i18n): the constants below are marked with ``N_`` and
translated when a figure is built (so each reader gets their own), and class names go through ``names``.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

from kdlab.base.i18n import N_, names, t

# Okabe & Ito's colour-blind-safe palette: strong enough for a projector.
ROLE_COLORS = {"teacher": "#0072B2", "distilled": "#D55E00", "scratch": "#009E73"}
ROLE_NAMES = {"teacher": N_("teacher"), "distilled": N_("distilled student"), "scratch": N_("scratch student")}
SHORT_ROLE_NAMES = {"teacher": N_("teacher"), "distilled": N_("distilled"), "scratch": N_("scratch")}  # a legend's tag
CLASS_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")  # Tableau 10, cycled beyond ten classes
# Changes (distilled − scratch) have their own colours, so a gain is never mistaken for a role: purple and gold
# stay apart for every common colour-blindness (a blue-yellow contrast); labels carry the sign as well.
SIGN_COLORS = {"gain": "#5E3C99", "loss": "#B8860B"}
DIVERGING = [[0, SIGN_COLORS["loss"]], [0.5, "#ffffff"], [1, SIGN_COLORS["gain"]]]
MIN_GAIN_SCALE = 10.0  # points: a diverging gain scale spans at least ±10, so half a point stays pale
DASHES = ("solid", "dash", "dot", "dashdot")
RUN_COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")
FONT = dict(size=15)  # readable from the back of a classroom
FONT_PRESENTER = dict(size=20)  # presenter mode: the projector's view (kdlab.ui.layout.chart applies it)
HOVER_END = "<extra></extra>"  # ends a hover template: no trace name beside the box


def for_presenter(fig: go.Figure) -> go.Figure:
    """Presenter mode: larger type everywhere in ``fig``, cell numbers included."""
    fig.update_layout(font=FONT_PRESENTER)
    fig.update_annotations(font=dict(size=FONT_PRESENTER["size"]))
    fig.update_traces(textfont=dict(size=FONT_PRESENTER["size"] - 4), selector=dict(type="heatmap"))
    fig.update_traces(textfont=dict(size=FONT_PRESENTER["size"] - 4), selector=dict(type="bar"))
    return fig


def class_color(i: int) -> str:
    return CLASS_COLORS[i % len(CLASS_COLORS)]


AXIS_STYLE = dict(automargin=True, gridcolor="#e6e6e6", zerolinecolor="#bbbbbb")
NO_TEMPLATE = pio.templates["none"].to_plotly_json()  # what template="none" becomes once validated


def _layout(fig: go.Figure, height: int, **kw: Any) -> go.Figure:
    """Shared look: projector font, tight margins, legend under the plot; ``kw`` overrides any of it."""
    # template "none": plotly.js's plain white look. A named template costs ~20 ms per figure to build and
    # ~7 KB of JSON, which the Temperature page's 150 ms budget (five figures) cannot afford.
    fig.update_layout(**(_layout_dict(height, template="none") | kw))
    fig.update_xaxes(**AXIS_STYLE)
    fig.update_yaxes(**AXIS_STYLE)
    return fig


def _layout_dict(height: int, **kw: Any) -> dict[str, Any]:
    """``_layout``'s look as a plain layout dict, for a figure built unvalidated; ``kw`` overrides any of it."""
    return dict(height=height, margin=dict(l=10, r=10, t=40, b=10), font=FONT, template=NO_TEMPLATE,
                legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0), plot_bgcolor="white",
                paper_bgcolor="white") | kw


def tint(hex_color: str, weight: float) -> str:
    """``hex_color`` mixed with white; weight 0 is white, 1 the colour itself."""
    r, g, b = (int(hex_color[i:i + 2], 16) for i in (1, 3, 5))
    mix = lambda c: round(255 - weight * (255 - c))  # noqa: E731
    return f"rgb({mix(r)},{mix(g)},{mix(b)})"


# -- training curves ----------------------------------------------------------------------------------------

CURVE_PANELS = (N_("Label loss (CE)"), N_("Soft loss (T²·KL)"), N_("Test accuracy"))  # short: three fit a projector


def training_curves(curves: dict[str, Any], teacher_accuracy: float | None = None) -> go.Figure:
    """Three panels against optimizer steps: the hard (label) loss of both students, the distilled student's
    soft loss on its own axis (T²·KL reaches 30 at T = 20, so it would flatten the hard losses beside it), and
    the test accuracy of both with the teacher's as a dashed line, from 0 to 100 % so that a gap is drawn at
    its true size. ``curves[role]`` is a kdlab.base.record.Curve (or a dict with its fields); the loss points
    are window means of the steps since the previous point, so there are no cliffs at epoch boundaries."""
    fig = make_subplots(rows=1, cols=3, horizontal_spacing=0.07, subplot_titles=[t(x) for x in CURVE_PANELS])
    for role in ("distilled", "scratch"):
        c = _fields(curves.get(role))
        if c is None:
            continue
        style = dict(legendgroup=role, name=t(ROLE_NAMES[role]), line=dict(color=ROLE_COLORS[role], width=3))
        if c["hard"] and any(h for h in c["hard"]):  # a student without labels has no hard loss
            fig.add_trace(go.Scatter(x=c["step"], y=c["hard"], mode="lines", showlegend=True,
                                     meta={"role": role, "metric": "hard"}, **style), 1, 1)
        if role == "distilled" and c["soft"]:
            fig.add_trace(go.Scatter(x=c["step"], y=c["soft"], mode="lines", showlegend=False,
                                     meta={"role": role, "metric": "soft"}, **style), 1, 2)
        fig.add_trace(go.Scatter(x=c["eval_step"], y=c["test_accuracy"], mode="lines+markers", showlegend=False,
                                 meta={"role": role, "metric": "test_accuracy"}, **style), 1, 3)
    if teacher_accuracy is not None:
        last = max((max(_fields(c)["step"] or [1]) for c in curves.values() if c is not None), default=1)
        fig.add_trace(go.Scatter(x=[0, last], y=[teacher_accuracy] * 2, name=t(ROLE_NAMES["teacher"]), mode="lines",
                                 line=dict(color=ROLE_COLORS["teacher"], dash="dash", width=3), legendgroup="teacher",
                                 meta={"role": "teacher", "metric": "test_accuracy"}), 1, 3)
    fig.update_xaxes(title_text=t("optimizer step"), rangemode="tozero")
    fig.update_yaxes(rangemode="tozero", row=1, col=1)
    fig.update_yaxes(rangemode="tozero", row=1, col=2)
    fig.update_yaxes(range=[0, 1.02], tickformat=".0%", row=1, col=3)
    fig.update_annotations(font=dict(size=FONT["size"]))
    return _layout(fig, 420, uirevision="curves",  # uirevision: a live redraw keeps the user's zoom
                   margin=dict(l=10, r=10, t=70, b=10), legend=dict(orientation="h", yanchor="bottom", y=1.12, x=0))


TEACHER_PANELS = (N_("The teacher's loss (cross-entropy)"), N_("The teacher's test accuracy"))


def teacher_training(curve: Any, total_steps: int) -> go.Figure:
    """A teacher learning, live: its window-mean training loss and its test accuracy (0 to 100 %) against
    optimizer steps, in the teacher's colour, on an axis to its last planned step, so the chart also shows how
    far it has come. ``curve`` is a kdlab.base.record.Curve (or a dict with its fields)."""
    c = _fields(curve)
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1, subplot_titles=[t(x) for x in TEACHER_PANELS])
    style = dict(line=dict(color=ROLE_COLORS["teacher"], width=3), showlegend=False,
                 name=t(ROLE_NAMES["teacher"]))
    fig.add_trace(go.Scatter(x=c["step"], y=c["train_loss"], mode="lines",
                             meta={"role": "teacher", "metric": "train_loss"}, **style), 1, 1)
    fig.add_trace(go.Scatter(x=c["eval_step"], y=c["test_accuracy"], mode="lines+markers",
                             meta={"role": "teacher", "metric": "test_accuracy"}, **style), 1, 2)
    fig.update_xaxes(title_text=t("optimizer step"), range=[0, max(1, total_steps)])
    fig.update_yaxes(rangemode="tozero", row=1, col=1)
    fig.update_yaxes(range=[0, 1.02], tickformat=".0%", row=1, col=2)
    fig.update_annotations(font=dict(size=FONT["size"]))
    return _layout(fig, 320, uirevision="teacher", margin=dict(l=10, r=10, t=50, b=10))


def _fields(curve: Any) -> dict[str, list] | None:
    if curve is None:
        return None
    return curve if isinstance(curve, dict) else curve.__dict__


def overlay_curves(runs: Sequence[dict[str, Any]]) -> go.Figure:
    """Test accuracy against steps of several runs: one colour per run, solid distilled, dashed scratch.

    Each run: {"label": str, "distilled": Curve, "scratch": Curve or None}."""
    fig = go.Figure()
    for i, run in enumerate(runs):
        color = RUN_COLORS[i % len(RUN_COLORS)]
        for role, dash in (("distilled", "solid"), ("scratch", "dash")):
            c = _fields(run.get(role))
            if c and c["eval_step"]:
                fig.add_trace(go.Scatter(x=c["eval_step"], y=c["test_accuracy"], name=f"{run['label']} · {t(SHORT_ROLE_NAMES[role])}",
                                         mode="lines+markers", line=dict(color=color, dash=dash, width=3),
                                         meta={"role": role, "run": i}))
    fig.update_xaxes(title_text=t("optimizer step"), rangemode="tozero")
    fig.update_yaxes(title_text=t("test accuracy"), tickformat=".0%", range=[0, 1.02])
    return _layout(fig, 440, legend=dict(orientation="v", yanchor="top", y=-0.2, x=0))


# -- confusion matrices ---------------------------------------------------------------------------------------

def confusion_figure(confusion: Sequence[Sequence[int]], classes: Sequence[str], title: str, role: str) -> go.Figure:
    """Counts, rows the true class and columns the prediction, shaded in the role's colour."""
    color = ROLE_COLORS[role]
    z = [list(map(int, r)) for r in confusion]
    fig = go.Figure(go.Heatmap(z=z, x=names(classes), y=names(classes), text=_blank_zeros(z, "{}"),
                               colorscale=[[0, "#ffffff"], [1, color]], texttemplate="%{text}", showscale=False,
                               hovertemplate=t("true %{y}, predicted %{x}: %{z}") + HOVER_END, meta={"role": role}))
    return _square(fig, title)


def confusion_difference(distilled: Sequence[Sequence[int]], scratch: Sequence[Sequence[int]],
                         classes: Sequence[str], title: str = "") -> go.Figure:
    """distilled − scratch: purple where the distilled student predicts a cell more often, gold where less."""
    diff = (np.asarray(distilled, dtype=int) - np.asarray(scratch, dtype=int)).tolist()
    top = max(1, max(abs(v) for row in diff for v in row))
    fig = go.Figure(go.Heatmap(z=diff, x=names(classes), y=names(classes), colorscale=DIVERGING, zmin=-top,
                               zmax=top, text=_blank_zeros(diff, "{:+d}"), texttemplate="%{text}", showscale=False,
                               meta={"role": "difference"},
                               hovertemplate=t("true %{y}, predicted %{x}: %{z:+d}") + HOVER_END))
    return _square(fig, title)


def _blank_zeros(z: list[list[int]], fmt: str) -> list[list[str]]:
    """Cell labels with the zeros left out: the non-zero cells are what the eye should find."""
    return [[fmt.format(v) if v else "" for v in row] for row in z]


def _square(fig: go.Figure, title: str, **kw: Any) -> go.Figure:
    fig.update_xaxes(title_text=t("predicted"), type="category", side="bottom")
    fig.update_yaxes(title_text=t("true"), type="category", autorange="reversed")
    return _layout(fig, 360, title=dict(text=title, x=0.5, xanchor="center"),
                   margin=dict(l=10, r=10, t=10 + 30 * bool(title), b=10), **kw)


def class_changes(delta: Sequence[float | None], classes: Sequence[str]) -> go.Figure:
    """Per-class test accuracy change (distilled − scratch, in points), each bar in its sign's colour."""
    y = [None if d is None or not math.isfinite(d) else 100 * d for d in delta]
    fig = go.Figure(go.Bar(x=names(classes), y=y, marker_color=[SIGN_COLORS["loss" if (v or 0) < 0 else "gain"] for v in y],
                           text=["" if not v else f"{v:+.1f}" for v in y], textposition="outside", textangle=0,
                           cliponaxis=False,
                           hovertemplate=t("class %{x}: %{y:+.1f} points") + HOVER_END))
    fig.update_xaxes(type="category", title_text=t("class"))
    fig.update_yaxes(title_text=t("change (points)"), zeroline=True, zerolinewidth=2)
    return _layout(fig, 300, showlegend=False)


# -- temperature ---------------------------------------------------------------------------------------------

def entropy_curves(temperatures: Sequence[float], curves: Sequence[dict[str, Any]], current: float,
                   num_classes: int) -> go.Figure:
    """Entropy of the soft targets against T, one line per example in its true class's colour.

    Each curve: {"label": str, "entropy": [per T], "class": int}. The dotted ceiling is log C (uniform)."""
    fig = go.Figure()
    lo, hi = min(temperatures), max(temperatures)
    for i, c in enumerate(curves):
        fig.add_trace(go.Scatter(x=list(temperatures), y=list(c["entropy"]), name=c["label"], mode="lines",
                                 line=dict(color=class_color(c["class"]), width=3, dash=DASHES[i % len(DASHES)])))
    ceiling = math.log(num_classes)
    fig.add_trace(go.Scatter(x=[lo, hi], y=[ceiling] * 2, name=t("uniform (log C)"), mode="lines",
                             line=dict(dash="dot", color="#777777")))
    fig.add_trace(go.Scatter(x=[current] * 2, y=[0, ceiling], name=f"T = {current:g}", mode="lines",
                             line=dict(color=ROLE_COLORS["teacher"], width=2)))
    ticks = [x for x in (0.5, 1, 2, 3, 5, 10, 20, 30) if lo <= x <= hi]
    fig.update_xaxes(title_text=t("temperature T"), type="log", range=[math.log10(lo), math.log10(hi)], tickvals=ticks)
    fig.update_yaxes(title_text=t("entropy (nats)"), rangemode="tozero")
    return _layout(fig, 340)


SIMILARITY_MAX = 0.3  # measured: the largest off-diagonal average is 0.22 (Fashion-MNIST's teacher at T = 4)


def similarity(matrix: Sequence[Sequence[float]], classes: Sequence[str], temperature: float) -> go.Figure:
    """Average soft targets per true class (rows) with the diagonal hidden: what remains is dark knowledge. The
    scale is fixed (0 to SIMILARITY_MAX), so moving T shows that mass grow instead of rescaling it away."""
    z = [[None if i == j else float(v) for j, v in enumerate(row)] for i, row in enumerate(matrix)]
    fig = go.Figure(go.Heatmap(z=z, x=names(classes), y=names(classes), showscale=False, zmin=0,
                               zmax=SIMILARITY_MAX, colorscale=[[0, "#ffffff"], [1, ROLE_COLORS["teacher"]]],
                               texttemplate="%{z:.2f}", hovertemplate=t("true %{y}: p(%{x}) = %{z:.3f}") + HOVER_END))
    return _square(fig, "", meta={"temperature": temperature})


def display_image(x: np.ndarray, size: int = 112) -> np.ndarray:
    """A (1, H, W) or (H, W) normalised image as (size, size) uint8, min-max scaled, nearest-neighbour
    upscaled (a browser would blur an 8x8 digit)."""
    img = np.asarray(x, dtype=np.float32).reshape(x.shape[-2:])
    lo, hi = float(img.min()), float(img.max())
    img = (img - lo) / (hi - lo if hi > lo else 1.0)
    reps = max(1, size // max(img.shape))
    return (np.kron(img, np.ones((reps, reps))) * 255).astype(np.uint8)


# -- sweeps --------------------------------------------------------------------------------------------------

def sweep_heatmap(temperatures: Sequence[float], alphas: Sequence[float], z: Sequence[Sequence[float | None]],
                  title: str, diverging: bool = False) -> go.Figure:
    """Rows T, columns alpha, cells in percent. Fixed scales, so a colour means the same in every sweep: accuracy
    from 0 to 100 %; gains (``diverging``) centred on zero and spanning at least ±MIN_GAIN_SCALE points."""
    pct = [[None if v is None else 100 * v for v in row] for row in z]
    if diverging:
        top = max([MIN_GAIN_SCALE] + [abs(v) for row in pct for v in row if v is not None])
        extra = dict(colorscale=DIVERGING, zmin=-top, zmax=top, texttemplate="%{z:+.1f}")
    else:
        extra = dict(colorscale=[[0, "#ffffff"], [1, ROLE_COLORS["distilled"]]], zmin=0, zmax=100,
                     texttemplate="%{z:.1f}")
    fig = go.Figure(go.Heatmap(z=pct, x=[f"{a:g}" for a in alphas], y=[f"{x:g}" for x in temperatures],
                               showscale=False, hovertemplate="T=%{y}, α=%{x}: %{z:.2f}" + HOVER_END, **extra))
    fig.update_xaxes(title_text=t("α (weight of the soft term)"), type="category")
    fig.update_yaxes(title_text=t("temperature T"), type="category")
    return _layout(fig, 360, title=dict(text=title, x=0.5, xanchor="center"), margin=dict(l=10, r=10, t=10 + 30 * bool(title), b=10))


def fraction_bars(fractions: dict[str, float], title: str = "") -> go.Figure:
    """Horizontal bars of fractions (0..1+, e.g. a student's size as a fraction of its teacher's), labelled in %,
    on an axis from 0 to 100 % and beyond only if a fraction is."""
    labels, values = list(fractions), [float(v) for v in fractions.values()]
    fig = go.Figure(go.Bar(x=values, y=labels, orientation="h", marker_color=ROLE_COLORS["distilled"],
                           text=[f"{100 * v:.0f} %" for v in values], textposition="outside", cliponaxis=False))
    fig.add_vline(x=1.0, line=dict(color=ROLE_COLORS["teacher"], dash="dash", width=2))
    fig.update_xaxes(range=[0, max(1.15, 1.15 * max(values))], tickformat=".0%")
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, 80 + 60 * len(labels), showlegend=False, title=dict(text=title, x=0, xanchor="left"),
                   margin=dict(l=10, r=40, t=40 if title else 10, b=10))
