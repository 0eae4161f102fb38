"""Streamlit widgets and the URL from a settings table (kdlab.base.settings).

``draw`` shows each row that applies to the current state as its kind's widget, keyed "<prefix>.<name>",
bounded by the row, and returns the new state. ``read_url`` / ``write_url`` keep a page's query parameters
and its state in step. The state is the truth: widget values are seeded from it on every run (Streamlit
forgets the state of widgets a page switch stops rendering), and a widget value that does not fit its row
(a forged websocket message: NaN, a string, a value out of bounds) is replaced by the state's value, with a
notice, before Streamlit's own widget code sees it.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Callable, Sequence

import streamlit as st

from kdlab.base.errors import KdlabError
from kdlab.base.settings import MAX_TEXT, Setting, Table, from_params, get, put, to_params
from kdlab.ui.i18n import t

Note = Callable[[Any, Any], None]  # (where, state): draws a caption under a group of the sidebar


def key(prefix: str, s: Setting) -> str:
    return f"{prefix}.{s.name}"


def reset(table: Table, prefix: str) -> None:
    """Forget the widgets' values, so the next ``draw`` seeds them from the state (a preset, a link)."""
    for s in table:
        st.session_state.pop(key(prefix, s), None)


def draw(table: Table, state: Any, prefix: str, where: Any, *, names: Sequence[str] | None = None,
         options: dict[str, list] | None = None, formats: dict[str, Callable] | None = None,
         notes: dict[str, Note] | None = None) -> Any:
    """The widgets of ``table`` (or of ``names``) in order, grouped under their group headings, the rows marked
    ``more`` in one "More settings" expander at the end; returns the state with their values. ``options``
    replaces a row's options (e.g. a dataset's classes); ``notes`` draws a caption after a group. The table's
    texts are shown in the reader's language."""
    rows = [s for s in table if s.ui and s.widget != "none" and (names is None or s.name in names)]
    options, formats, notes = options or {}, formats or {}, notes or {}
    expander = None
    group = None
    for s in rows:
        if not s.applies_to(state):
            continue
        box = where
        if s.more:
            expander = expander or where.expander(t("More settings"))
            box = expander
        elif s.group != group and names is None:
            if group in notes:
                notes[group](where, state)
            group = s.group
            where.markdown(f"**{t(group)}**")
        value = _widget(box, s, key(prefix, s), get(state, s), options.get(s.name), formats.get(s.name), s.upper(state))
        state = put(state, s, _checked(s, value))
    if group in notes:
        notes[group](where, state)
    return state


def _checked(s: Setting, value: Any) -> Any:
    """A typed value in its canonical form (a model spec); one that fails is kept, for the page's one validation
    to explain."""
    if s.check is None:
        return value
    try:
        return s.check(value)
    except KdlabError:
        return value


def read_url(table: Table, state: Any, fallback: Any, fits: Callable[[Any], None] | None = None) -> Any | None:
    """The state a link asks for, when the page's query parameters differ from ``state``; else None.
    Bad values fall back one by one, with a warning each (kdlab.base.settings.from_params)."""
    names = {n for s in table for n in (s.name, *s.aliases)}
    params = {k: st.query_params.get_all(k) for k in st.query_params if k in names}
    if not params or {k: v[-1] for k, v in params.items()} == to_params(table, state):
        return None
    new, notices = from_params(table, params, state, fallback, fits)
    for notice in notices:
        st.warning(notice)
    return new


def write_url(table: Table, state: Any) -> None:
    """Mirror ``state`` into the query parameters, so the address bar reproduces the view."""
    names = {n for s in table for n in (s.name, *s.aliases)}
    wanted = to_params(table, state)
    current = {k: st.query_params.get(k) for k in st.query_params if k in names}
    if current != wanted:
        for k in set(current) - set(wanted):
            del st.query_params[k]
        st.query_params.update(wanted)


# -- one widget ------------------------------------------------------------------------------------------------

def _widget(box: Any, s: Setting, k: str, value: Any, options: list | None, fmt: Callable | None,
            high: float | None) -> Any:
    opts = list(options) if options is not None else s.choices()
    if s.kind == "spec" and value not in opts:
        opts.append(value)  # a typed spec stays selectable
    _seed(s, k, value, opts, high)
    label = t(s.label)
    common = dict(key=k, help=t(s.help) if s.help else None)
    if s.widget == "radio":
        return box.radio(label, opts, horizontal=True, format_func=fmt or str, **common)
    if s.widget == "select":
        return box.selectbox(label, opts, format_func=fmt or str, **common)
    if s.kind in ("choice", "spec"):
        return box.selectbox(label, opts, accept_new_options=s.kind == "spec", format_func=fmt or str, **common)
    if s.kind == "float":
        return box.slider(label, float(s.low), float(high), step=s.step, format=f"%.{s.digits or 2}f", **common)
    if s.kind in ("ladder",) or (s.kind == "int" and opts):
        return box.select_slider(label, opts, format_func=fmt or (lambda x: f"{x:g}"), **common)
    if s.kind == "int":  # a float input: Streamlit itself crashes on a forged NaN for an int one
        value = box.number_input(label, float(s.low), float(high), step=float(s.step or 1), format="%.0f", **common)
        return int(value)
    if s.kind == "bool":
        return box.toggle(label, **common)
    return tuple(box.multiselect(label, opts, format_func=fmt or (lambda x: f"{x:g}"), **common))


def _seed(s: Setting, k: str, value: Any, opts: list, high: float | None) -> None:
    """Put a valid value under the widget's key before the widget is made (see the module docstring)."""
    missing = object()
    try:
        current = st.session_state.get(k, missing)
    except (TypeError, ValueError, OverflowError):  # Streamlit's own conversion of a forged value failed
        current = None
    if current is not missing and _fits(s, current, opts, high):
        st.session_state[k] = current  # re-assigned: a value kept from another page reaches this page's widget
        return
    if current is not missing:
        st.warning(t("An invalid value for “{label}” was ignored.", label=t(s.label)))
    st.session_state[k] = _as_widget(s, value)


def _fits(s: Setting, v: Any, opts: list, high: float | None) -> bool:
    if s.kind in ("choice", "ladder") or (s.kind == "int" and opts):
        return v in opts
    if s.kind == "spec":
        return isinstance(v, str) and 0 < len(v) <= MAX_TEXT
    if s.kind == "bool":
        return isinstance(v, bool)
    if s.kind in ("floats", "ints"):
        return isinstance(v, (list, tuple)) and all(x in opts for x in v)
    number = isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)
    return number and s.low <= v <= high and (s.kind == "float" or float(v).is_integer())


def _as_widget(s: Setting, value: Any) -> Any:
    if s.kind == "float" or (s.kind == "int" and not s.choices()):
        return float(value)
    if s.kind in ("floats", "ints"):
        return list(value)
    return value
