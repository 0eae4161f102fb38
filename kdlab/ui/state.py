"""Session state: every key the app keeps per browser session, in one place.

The lab's settings live under ``LAB`` as a DistillConfig, not only in widget keys: Streamlit forgets the
state of widgets that a page switch stops rendering, so widgets are re-seeded from ``LAB`` on each page.
"""
from __future__ import annotations

from typing import Any

import streamlit as st

from kdlab.base.config import DistillConfig
from kdlab.runs.presets import DEFAULT_PRESET, get_preset

LAB = "kd.lab"  # {"config": DistillConfig, "baseline": bool, "preset": str | None}
RUNS = "kd.runs"  # this session's finished runs (records), newest first
SWEEP = "kd.sweep"  # the last sweep: {"rows": [...], "config": DistillConfig, ...}
NOTICE = "kd.notice"  # a one-shot message shown by the next page that calls ``pop_notice``
MAX_SESSION_RUNS = 10  # memory per session stays bounded however long a class runs
FIELDS = ("dataset", "teacher", "student", "loss", "T", "alpha", "epochs", "lr", "seed", "baseline", "lam", "transfer")
WIDGET = {f: f"lab.{f}" for f in FIELDS}  # the settings widgets' keys; re-seeded from LAB when missing


def lab() -> dict[str, Any]:
    if LAB not in st.session_state:
        preset = get_preset(DEFAULT_PRESET)
        st.session_state[LAB] = {"config": preset.config, "baseline": preset.scratch, "preset": preset.name}
    return st.session_state[LAB]


def lab_config() -> tuple[DistillConfig, bool]:
    current = lab()
    return current["config"], current["baseline"]


def set_lab(config: DistillConfig, baseline: bool, preset: str | None = None) -> None:
    st.session_state[LAB] = {"config": config, "baseline": baseline, "preset": preset}


def apply_preset(name: str) -> None:
    """Widget callback: load preset ``name`` into the lab's settings."""
    preset = get_preset(name)
    set_lab(preset.config, preset.scratch, preset.name)
    reset_widgets()
    notify(f"Loaded the preset “{preset.name}”: {preset.summary}")


def reset_widgets() -> None:
    for key in WIDGET.values():
        st.session_state.pop(key, None)


def add_run(record: dict[str, Any]) -> None:
    """Keep ``record`` as the newest run; only the newest keeps its heavy test outputs; cap the list."""
    runs = [{k: v for k, v in r.items() if k != "outputs"} for r in st.session_state.get(RUNS, [])]
    st.session_state[RUNS] = [record, *runs][:MAX_SESSION_RUNS]


def runs() -> list[dict[str, Any]]:
    return list(st.session_state.get(RUNS, []))


def latest_run() -> dict[str, Any] | None:
    found = st.session_state.get(RUNS, [])
    return found[0] if found else None


def notify(message: str) -> None:
    st.session_state[NOTICE] = message


def pop_notice() -> str | None:
    return st.session_state.pop(NOTICE, None)
