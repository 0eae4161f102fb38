"""Engine events -> plottable series and progress. Pure functions (no Streamlit calls).

A distillation job emits ``(role, Event)`` pairs (role: "teacher", "distilled" or "scratch"); the step
events carry running means within the current epoch, the epoch events add the test metrics.
"""
from __future__ import annotations

from typing import Any, Iterable

from kdlab.training.engine import Event

STUDENT_ROLES = ("distilled", "scratch")
MAX_POINTS = 300  # per role in a stored run: enough for a smooth curve, small in JSON


def series_from_events(events: Iterable[tuple[str, Event]], epochs: int) -> dict[str, dict[str, list[float]]]:
    """Per student role: "x" (fractional epoch), "train_loss", "soft", "hard", "train_accuracy" per step
    event, and "epoch_x", "test_accuracy" per epoch event. Roles without events are left out."""
    out: dict[str, dict[str, list[float]]] = {}
    for role, ev in events:
        if role not in STUDENT_ROLES or ev.kind == "done":
            continue
        s = out.setdefault(role, {k: [] for k in ("x", "train_loss", "soft", "hard", "train_accuracy",
                                                  "epoch_x", "test_accuracy")})
        if ev.kind == "step":
            s["x"].append(ev.step * epochs / max(1, ev.total_steps))
            for key in ("train_loss", "soft", "hard", "train_accuracy"):
                s[key].append(ev.metrics.get(key))
        elif ev.kind == "epoch" and "test_accuracy" in ev.metrics:
            s["epoch_x"].append(float(ev.epoch))
            s["test_accuracy"].append(ev.metrics["test_accuracy"])
    return out


def decimate(series: dict[str, dict[str, list[float]]], max_points: int = MAX_POINTS) -> dict[str, Any]:
    """Every k-th step point so each role keeps at most ``max_points`` (epoch points are kept)."""
    out = {}
    for role, s in series.items():
        k = max(1, -(-len(s["x"]) // max_points))
        out[role] = {key: (vals[::k] if key not in ("epoch_x", "test_accuracy") else vals) for key, vals in s.items()}
    return out


def progress(events: list[tuple[str, Event]], epochs: int, baseline: bool) -> tuple[float, str]:
    """(fraction done in [0, 1], one line saying what is happening) from the latest event."""
    if not events:
        return 0.0, "Starting…"
    role, ev = events[-1]
    frac = ev.step / max(1, ev.total_steps)
    if role == "teacher":
        return frac, f"Training the teacher (it is then cached): epoch {min(ev.epoch, 999)}, {frac:.0%}"
    roles = ("distilled", "scratch") if baseline else ("distilled",)
    done = (roles.index(role) + frac) / len(roles) if role in roles else frac
    name = "distilled student" if role == "distilled" else "scratch student"
    return done, f"Training the {name}: epoch {min(ev.epoch, epochs)} of {epochs}"
