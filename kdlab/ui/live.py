"""A Distill job's engine events -> the live panel's curves and progress line. Pure functions (no Streamlit).

The job emits ``(seed index, role, Event)``; role is "teacher", "distilled" or "scratch". The finished run's
curves come from its record (kdlab.base.record.Curve); while it trains, the same Curve is built from the
events of the seed in progress, so the live chart and the final one are drawn by one function.
"""
from __future__ import annotations

from typing import Iterable

from kdlab.base.record import Curve
from kdlab.runs.distill import curve_of
from kdlab.base.lab import Lab
from kdlab.training.engine import Event

STUDENT_ROLES = ("distilled", "scratch")


def curves(events: Iterable[tuple[int, str, Event]]) -> dict[str, Curve]:
    """The curves of the latest seed's students so far, by role."""
    events = list(events)
    if not events:
        return {}
    seed = max(k for k, _, _ in events)
    return {role: curve_of([e for k, r, e in events if k == seed and r == role])
            for role in STUDENT_ROLES if any(k == seed and r == role for k, r, _ in events)}


def progress(events: list[tuple[int, str, Event]], lab: Lab) -> tuple[float, str]:
    """(fraction done in [0, 1], one line saying what is happening) from the latest event."""
    if not events:
        return 0.0, "Starting…"
    k, role, ev = events[-1]
    frac = ev.step / max(1, ev.total_steps)
    if role == "teacher":
        return frac, f"Training the teacher (it is then cached): step {ev.step:,} of {ev.total_steps:,}"
    roles = STUDENT_ROLES if lab.scratch else ("distilled",)
    part = (roles.index(role) + frac) / len(roles) if role in roles else frac
    seed = f" (seed {k + 1} of {lab.seeds})" if lab.seeds > 1 else ""
    name = "distilled student" if role == "distilled" else "scratch student"
    return (k + part) / lab.seeds, f"Training the {name}{seed}: step {ev.step:,} of {ev.total_steps:,}"
