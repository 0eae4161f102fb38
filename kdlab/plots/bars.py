"""Soft-target bars (a distribution over the classes, at one or more T) as a small piece of plain HTML.

Why not Plotly: Streamlit gives a Plotly chart a new identity whenever its figure changes, so each step of the
Temperature slider made the browser build every bar chart from nothing (a new plot, ~45 ms of script each on
this machine; the first example's bars appeared 180 ms after a key press). These bars are a few kilobytes of
HTML with inline styles (no script), which the browser redraws in place in about a millisecond.
``python -m scripts.slider_latency`` measures the slider in Chromium.
"""
from __future__ import annotations

import re
from html import escape
from typing import Any, Sequence

from kdlab.base.i18n import names, t
from kdlab.plots.figures import FONT, FONT_PRESENTER, ROLE_COLORS, ROLE_NAMES, class_color, tint

HEIGHT = 200  # px of the plot area: the Plotly version's 260 px figure less its legend and labels
TICKS = (0, 25, 50, 75, 100)  # % on the y axis, fixed at 0-100 % so that heights compare across T
GRID, AXIS, MUTED = "#e6e6e6", "#bbbbbb", "#555555"  # the figures' AXIS_STYLE colours
GUTTER = "3.2em"  # the y axis's tick labels
FAINT = 0.35  # a faint set's colour weight (mixed with white)
CHAR_EM, CJK_EM = 0.52, 1.0  # rough widths of a Latin letter and of a CJK character, in em
UNBROKEN = re.compile(r"[^\s/-]+[/-]?")  # a name's pieces: lines break only between words, after "-" or "/"
BAR = re.compile(r'data-set="(\d+)" data-role="([^"]*)" data-p="([0-9.]+)"')


def bar_set_name(bars: dict[str, Any]) -> str:
    """The legend's name of one bar set: its role and T ("teacher · T=4")."""
    return f"{t(ROLE_NAMES.get(bars['role'], bars['role']))} · T={bars['temperature']:g}"


def bar_color(bars: dict[str, Any]) -> str:
    """The role's colour; a faint set (T = 1 beside the chosen T) is tinted, as is one given a ``weight``."""
    color, weight = ROLE_COLORS.get(bars["role"], MUTED), bars.get("weight", FAINT if bars.get("faint") else 1.0)
    return color if weight >= 1 else tint(color, weight)


def probability_bars(classes: Sequence[str], bars: Sequence[dict[str, Any]], true_class: int | None = None,
                     presenter: bool = False) -> str:
    """Grouped bars of distributions over the classes, as HTML.

    Each bar set: {"probs": [C floats], "role": "teacher" | "distilled" | ..., "temperature": T, "faint": bool,
    optionally "weight": its colour's strength in (0, 1], to tell several sets of one role apart}.
    The true class (if given) is marked by a dotted line in its class colour and a bold label. For tests and
    browsers, the root carries ``data-kd-bars`` (the last set's "T=...") and each bar its set's index, role and
    probability (``data-set``, ``data-role``, ``data-p``); ``read_bars`` reads them back."""
    size = (FONT_PRESENTER if presenter else FONT)["size"]
    labels = names(classes)
    legend = _el("div", *map(_legend_entry, bars), style=f"display:flex;flex-wrap:wrap;gap:4px 18px;"
                                                          f"margin:0 0 8px {GUTTER}")
    ticks = _el("div", *map(_tick, TICKS), style=f"position:relative;width:{GUTTER};height:{HEIGHT}px;"
                                                 f"font-size:{size - 2}px;color:{MUTED}")
    groups = _el("div", *(_group(c, labels[c], bars, c == true_class) for c in range(len(labels))),
                 style="position:absolute;inset:0;display:flex")
    area = _el("div", *map(_grid_line, TICKS[1:]), groups,
               style=f"position:relative;flex:1;height:{HEIGHT}px;border-bottom:1px solid {AXIS}")
    label_size = _label_size(labels, size - 1)
    x_labels = _el("div", *(_x_label(name, c == true_class, label_size) for c, name in enumerate(labels)),
                   style=f"display:flex;margin:4px 0 0 {GUTTER};container-type:inline-size")
    return _el("div", legend, _el("div", ticks, area, style="display:flex"), x_labels,
               data_kd_bars=f"T={bars[-1]['temperature']:g}" if bars else "", role="img",
               aria_label=_summary(labels, bars), style=f"font-size:{size}px;color:#222;padding:2px 0 4px")


def read_bars(html: str) -> list[dict[str, Any]]:
    """What ``probability_bars`` drew: per set, its role and its probabilities in class order."""
    sets: dict[int, dict[str, Any]] = {}
    for k, role, p in BAR.findall(html):
        sets.setdefault(int(k), {"role": role, "probs": []})["probs"].append(float(p))
    return [sets[k] for k in sorted(sets)]


def _el(tag: str, *children: str, style: str = "", **attrs: Any) -> str:
    """One element: attributes escaped (``data_kd_bars`` is written ``data-kd-bars``), children as given."""
    attrs = {**attrs, "style": style} if style else attrs
    written = "".join(f' {k.replace("_", "-")}="{escape(str(v))}"' for k, v in attrs.items())
    return f"<{tag}{written}>{''.join(children)}</{tag}>"


def _legend_entry(bars: dict[str, Any]) -> str:
    swatch = _el("span", style=f"display:inline-block;width:0.85em;height:0.85em;background:{bar_color(bars)};"
                               "margin-right:6px;vertical-align:-1px")
    return _el("span", swatch, escape(bar_set_name(bars)))


def _group(c: int, label: str, bars: Sequence[dict[str, Any]], true: bool) -> str:
    """One class: its bars side by side, bottom-aligned; the true class has a dotted line through its middle
    (drawn first, so the bars cover it)."""
    marker = _el("div", style=f"position:absolute;left:50%;top:0;bottom:0;border-left:2px dotted {class_color(c)}")
    return _el("div", marker if true else "", *(_bar(k, b, c, label) for k, b in enumerate(bars)),
               style="position:relative;flex:1;display:flex;align-items:flex-end;justify-content:center;gap:2px;"
                     "padding:0 4px")


def _bar(k: int, bars: dict[str, Any], c: int, label: str) -> str:
    p = float(bars["probs"][c])
    return _el("div", data_set=k, data_role=bars["role"], data_p=f"{p:.6f}",
               title=f"{bar_set_name(bars)} · {label}: {100 * p:.1f} %",
               style=f"position:relative;flex:1;max-width:28px;height:{100 * min(1.0, max(0.0, p)):.2f}%;"
                     f"background:{bar_color(bars)}")


def _x_label(name: str, true: bool, size: str) -> str:
    """A class's name under its bars, broken only between words and after "-" or "/" (<wbr>), never inside a
    word (keep-all: a Chinese word stays whole too)."""
    return _el("div", escape(name).replace("/", "/<wbr>"), style=f"flex:1;min-width:0;text-align:center;"
                                                                  f"line-height:1.15;word-break:keep-all;font-size:{size}"
                                                                  + (";font-weight:700" if true else ""))


def _label_size(labels: Sequence[str], largest: int) -> str:
    """The class names' font size: ``largest`` px, or less where the longest unbreakable piece of a name would
    not fit its share of the row (Fashion-MNIST's "Pullover" at 1024 px): the row is a CSS size container, so
    the browser scales the type with the width it actually has (cqi: 1 % of the row's width)."""
    widest = max((sum(CJK_EM if ord(ch) > 0x2e7f else CHAR_EM for ch in piece)
                  for name in labels for piece in UNBROKEN.findall(name)), default=1.0)
    fit = 95 / (len(labels) * widest)  # cqi; 95 %: the bars' padding
    return f"clamp(10px, {fit:.2f}cqi, {largest}px)"


def _tick(percent: int) -> str:
    return _el("div", f"{percent} %", style=f"position:absolute;right:8px;bottom:{percent}%;"
                                            "transform:translateY(50%);line-height:1")


def _grid_line(percent: int) -> str:
    return _el("div", style=f"position:absolute;left:0;right:0;bottom:{percent}%;border-top:1px solid {GRID}")


def _summary(labels: Sequence[str], bars: Sequence[dict[str, Any]]) -> str:
    """What a screen reader hears: each set's most probable class and its probability."""
    parts = []
    for b in bars:
        p = [float(x) for x in b["probs"]]
        best = max(range(len(p)), key=p.__getitem__)
        parts.append(t("{name}: {label} {percent:.0f} %", name=bar_set_name(b), label=labels[best], percent=100 * p[best]))
    return "; ".join(parts)
