"""Session state: every key the app keeps per browser session, in one place.

The lab's set-up lives under ``LAB`` as a ``Lab`` (kdlab.base.lab), not only in widget keys: Streamlit forgets
the state of widgets that a page switch stops rendering, so widgets are re-seeded from ``LAB`` on each page.
"""
from __future__ import annotations

from typing import Any

import streamlit as st

from kdlab.base.lab import Lab
from kdlab.base.record import RunRecord
from kdlab.runs.presets import DEFAULT_PRESET, get_preset
from kdlab.ui.i18n import t

LAB = "kd.lab"  # {"lab": Lab, "preset": str | None}
LAB_PREFIX = "lab"  # the lab's widget keys: "lab.<setting name>"
RUNS = "kd.runs"  # this session's finished runs (RunRecord), newest first
OUTPUTS = "kd.outputs"  # (record created, {role: (N_test, C) numpy logits}) of the newest run only
SWEEP = "kd.sweep"  # the last sweep: {"rows": [...], "config": DistillConfig, ...}
NOTICE = "kd.notice"  # a one-shot message shown by the next page that calls ``pop_notice``
MAX_SESSION_RUNS = 10  # memory per session stays bounded however long a class runs


def _entry() -> dict[str, Any]:
    if LAB not in st.session_state:
        preset = get_preset(DEFAULT_PRESET)
        st.session_state[LAB] = {"lab": preset.lab, "preset": preset.name}
    return st.session_state[LAB]


def lab() -> Lab:
    return _entry()["lab"]


def preset_name() -> str | None:
    return _entry()["preset"]


def set_lab(new: Lab, preset: str | None = None) -> None:
    st.session_state[LAB] = {"lab": new, "preset": preset}


def apply_preset(name: str) -> None:
    """Widget callback: load preset ``name`` into the lab's settings."""
    preset = get_preset(name)
    set_lab(preset.lab, preset.name)
    reset_widgets()
    notify(t("Loaded the preset “{name}”: {summary}", name=t(preset.name), summary=t(preset.summary)))


def reset_widgets() -> None:
    """Forget the lab's widget values, so the next sidebar seeds them from ``LAB`` (a preset, a link)."""
    for key in [k for k in st.session_state if str(k).startswith(LAB_PREFIX + ".")]:
        del st.session_state[key]


def add_run(record: RunRecord, outputs: dict[str, Any] | None = None) -> None:
    """Keep ``record`` as the newest run (and its test logits, for the Temperature page); cap the list."""
    st.session_state[RUNS] = [record, *st.session_state.get(RUNS, [])][:MAX_SESSION_RUNS]
    st.session_state[OUTPUTS] = (record.created, outputs or {})


def runs() -> list[RunRecord]:
    return list(st.session_state.get(RUNS, []))


def latest_run() -> RunRecord | None:
    found = st.session_state.get(RUNS, [])
    return found[0] if found else None


def latest_outputs(record: RunRecord) -> dict[str, Any] | None:
    created, outputs = st.session_state.get(OUTPUTS, (None, None))
    return outputs if created == record.created else None


def notify(message: str) -> None:
    st.session_state[NOTICE] = message


def pop_notice() -> str | None:
    return st.session_state.pop(NOTICE, None)
