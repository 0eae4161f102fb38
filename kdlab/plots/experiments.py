"""Plotly figures of an experiment report (the dict ``kdlab.experiments.run_experiment`` returns). Report in,
figure out; no Streamlit. Colours and fonts follow ``kdlab.plots.figures`` so a role looks the same everywhere;
texts are drawn in the reader's language (kdlab.base.i18n), the report's keys and class names stay its data."""
from __future__ import annotations

import math
from typing import Any

import plotly.graph_objects as go

from kdlab.base.i18n import N_, names, t
from kdlab.plots.figures import FONT, ROLE_COLORS, ROLE_NAMES, RUN_COLORS, SHORT_ROLE_NAMES, tint, class_color

Report = dict[str, Any]
PAPER_COLOR = "#999999"
ARM_NAMES = {**SHORT_ROLE_NAMES, "source": N_("source")}  # an arm's key -> its name on an axis


def _look(fig: go.Figure, title: str, height: int = 420, **kw: Any) -> go.Figure:
    base = dict(title=dict(text=title, x=0, y=0.98, yanchor="top"), height=height, font=FONT, template="none",
                margin=dict(l=10, r=10, t=100, b=10), plot_bgcolor="white", paper_bgcolor="white",
                legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
    fig.update_layout(**(base | kw))
    fig.update_xaxes(automargin=True, gridcolor="#e6e6e6")
    fig.update_yaxes(automargin=True, gridcolor="#e6e6e6")
    return fig


def _teacher_line(fig: go.Figure, report: Report) -> None:
    fig.add_hline(y=report["teacher"]["test_accuracy"], line=dict(color=ROLE_COLORS["teacher"], dash="dash"),
                  annotation_text=t(ROLE_NAMES["teacher"]), annotation_yanchor="top")  # below the line, at the right


def _cut_axis(fig: go.Figure, values: list[float]) -> None:
    """A zoomed accuracy axis, said to be one: differences of a point need it, and a reader must not take the
    bottom of the chart for 0 %."""
    low = max(0.0, math.floor(100 * min(values) - 2) / 100)
    high = min(1.0, math.ceil(100 * max(values) + 1) / 100)
    fig.update_yaxes(title_text=t("test accuracy (axis cut: starts at {low:.0f} %)", low=100 * low), tickformat=".0%",
                     range=[low, high])


def _pct(values: list[float]) -> list[float]:
    return [100 * v for v in values]


def arm_name(key: str) -> str:
    """An arm's key ("scratch", "mlp:30 scratch", "hinton T=4") in the reader's language: roles are words, a
    student's spec and a loss's name are not."""
    if key in ARM_NAMES:
        return t(ARM_NAMES[key])
    student, _, role = key.rpartition(" ")
    return t("{student} scratch", student=student) if role == "scratch" else key


def accuracy_vs_n(report: Report) -> go.Figure:
    """Small transfer set: test accuracy against the number of transfer images, scratch vs distilled."""
    fig = go.Figure()
    xs = [p["n"] for p in report["by_size"]]
    for role in ("scratch", "distilled"):
        fig.add_trace(go.Scatter(
            x=xs, y=[p[role]["mean"] for p in report["by_size"]], name=t(ROLE_NAMES[role]), mode="lines+markers",
            error_y=dict(type="data", array=[p[role]["std"] for p in report["by_size"]]),
            line=dict(color=ROLE_COLORS[role], width=3), meta={"role": role}))
    _teacher_line(fig, report)
    fig.update_xaxes(type="log", title_text=t("transfer-set size N (images)"), tickvals=xs)
    fig.update_yaxes(title_text=t("test accuracy"), tickformat=".0%", range=[0, 1.05])
    return _look(fig, t("Accuracy against transfer-set size N"))


def bias_point(report: Report, bias: float) -> dict[str, Any]:
    """The stored bias-curve point nearest to ``bias``: the slider needs no model and no logits."""
    return min(report["bias_curve"], key=lambda p: abs(p["bias"] - bias))


def per_class_bars(report: Report, bias: float = 0.0) -> go.Figure:
    """Omitted class: per-class test accuracy of both students, plus the distilled one with ``bias`` added."""
    classes, c = names(report["classes"]), report["omitted_class_index"]
    point = bias_point(report, bias)
    fig = go.Figure()
    shifted = t("distilled, bias +{bias:g} (seed {seed})", bias=point["bias"], seed=report["bias_curve_seed"])
    series = [(t(ROLE_NAMES["scratch"]), report["per_class_accuracy"]["scratch"], ROLE_COLORS["scratch"]),
              (t(ROLE_NAMES["distilled"]), report["per_class_accuracy"]["distilled"], ROLE_COLORS["distilled"]),
              (shifted, point["per_class_accuracy"], tint(ROLE_COLORS["distilled"], 0.45))]
    for name, values, color in series:
        fig.add_trace(go.Bar(x=classes, y=values, name=name, marker_color=color))
    fig.add_vrect(x0=c - 0.5, x1=c + 0.5, fillcolor="#FFD54F", opacity=0.25, line_width=0,
                  annotation_text=t("never seen"), annotation_x=c - 0.5, annotation_xanchor="left")  # top left
    fig.update_xaxes(type="category")  # digits' class names "0".."9" are labels, not numbers
    fig.update_yaxes(title_text=t("test accuracy"), tickformat=".0%", range=[0, 1.05])
    title = t("Per-class accuracy (no “{omitted}” in training)", omitted=names([report["omitted_class"]])[0])
    return _look(fig, title, barmode="group")


def bias_tradeoff(report: Report, bias: float | None = None) -> go.Figure:
    """Accuracy on the omitted class and overall as the bias on its logit rises (one student, no retraining)."""
    curve = report["bias_curve"]
    xs = [p["bias"] for p in curve]
    fig = go.Figure()
    on_class = t("on “{omitted}”", omitted=names([report["omitted_class"]])[0])
    fig.add_trace(go.Scatter(x=xs, y=[p["class_accuracy"] for p in curve], name=on_class,
                             mode="lines", line=dict(color=class_color(report["omitted_class_index"]), width=3)))
    fig.add_trace(go.Scatter(x=xs, y=[p["overall_accuracy"] for p in curve], name=t("overall"), mode="lines",
                             line=dict(color=ROLE_COLORS["distilled"], width=3)))
    if bias is not None:
        fig.add_vline(x=bias_point(report, bias)["bias"], line=dict(color="#333333", dash="dot"))
    fig.update_xaxes(title_text=t("bias added to the omitted class's logit"))
    fig.update_yaxes(title_text=t("test accuracy"), tickformat=".0%")
    return _look(fig, t("The bias trade-off"))


def accuracy_vs_temperature(report: Report) -> go.Figure:
    """Temperature vs student size: accuracy against T per student, its scratch twin as a dotted line."""
    fig = go.Figure()
    for i, curve in enumerate(report["curves"]):
        color = RUN_COLORS[i % len(RUN_COLORS)]
        ts = [p["temperature"] for p in curve["points"]]
        fig.add_trace(go.Scatter(x=ts, y=[p["mean"] for p in curve["points"]], mode="lines+markers",
                                 error_y=dict(type="data", array=[p["std"] for p in curve["points"]]),
                                 name=t("{student} distilled", student=curve["student"]),
                                 line=dict(color=color, width=3)))
        fig.add_trace(go.Scatter(x=[ts[0], ts[-1]], y=[curve["scratch"]["mean"]] * 2, mode="lines",
                                 name=t("{student} scratch", student=curve["student"]),
                                 line=dict(color=color, dash="dot")))
    fig.update_xaxes(type="log", title_text=t("temperature T"), tickvals=[p["temperature"] for p in
                                                                         report["curves"][0]["points"]])
    values = [p["mean"] for c in report["curves"] for p in c["points"]] + [c["scratch"]["mean"] for c in report["curves"]]
    _cut_axis(fig, values)
    return _look(fig, t("Accuracy against temperature T, per student size"))


def arm_bars(report: Report) -> go.Figure:
    """Any experiment: every arm's mean test accuracy ± std, the teacher as a dashed line."""
    arms = report["arms"]
    colors = [ROLE_COLORS.get(k, RUN_COLORS[i % len(RUN_COLORS)]) for i, k in enumerate(arms)]
    fig = go.Figure(go.Bar(x=[arm_name(k) for k in arms], y=[a["mean"] for a in arms.values()], marker_color=colors,
                           error_y=dict(type="data", array=[a["std"] for a in arms.values()]),
                           text=[f"{100 * a['mean']:.1f} %" for a in arms.values()], textposition="outside"))
    fig.update_yaxes(title_text=t("test accuracy"), tickformat=".0%", range=[0, 1.05])  # from 0: gaps at true size
    if "teacher" not in arms:
        _teacher_line(fig, report)
    return _look(fig, t("Test accuracy per arm (mean ± std over seeds)"), showlegend=False,
                 margin=dict(l=10, r=10, t=60, b=10))


def errors_vs_paper(report: Report) -> go.Figure:
    """Hinton 2015 MNIST: our test error rate beside the paper's (rates: our test set may not have 10 000 images,
    and counts per 10 000 would claim a precision 360 digits do not have)."""
    roles = ("teacher", "scratch", "distilled")
    paper_size = report["paper"]["test_size"]
    fig = go.Figure()
    x = [arm_name(r) for r in roles]
    fig.add_trace(go.Bar(x=x, y=[report["test_errors"][r] / report["test_size"] for r in roles],
                         name=t("ours ({dataset}, {size:,} test images)", dataset=report["dataset"],
                                size=report["test_size"]),
                         marker_color=[ROLE_COLORS[r] for r in roles]))
    fig.add_trace(go.Bar(x=x, y=[report["paper"]["test_errors"][r] / paper_size for r in roles],
                         name=t("paper (MNIST, {size:,} test images)", size=paper_size), marker_color=PAPER_COLOR))
    fig.update_yaxes(title_text=t("test error rate"), tickformat=".1%", rangemode="tozero")
    return _look(fig, t("Test error rate: ours beside Hinton et al. (2015)"), barmode="group")


FIGURES = {  # experiment -> its main figures (the omitted-class page adds the bias slider's figures)
    "small-transfer": (accuracy_vs_n, arm_bars),
    "omitted-class": (arm_bars,),
    "temperature-size": (accuracy_vs_temperature,),
    "source-recipe": (arm_bars,),
    "hinton-mnist": (errors_vs_paper, arm_bars),
}


def figures(report: Report) -> list[go.Figure]:
    return [build(report) for build in FIGURES.get(report["experiment"], (arm_bars,))]
