"""A job's engine events -> the live panels' curves, progress line and time left. Pure functions (no Streamlit).

A Distill job emits ``(seed index, role, Event)``; role is "teacher", "distilled" or "scratch"; a teacher job
(the Temperature page) emits ``("teacher", Event)``. The finished run's curves come from its record
(kdlab.base.record.Curve); while it trains, the same Curve is built from the events of the seed in progress,
so the live chart and the final one are drawn by one function. A cold teacher gets its own live curve and an
estimate of the time left, from the rate measured so far (``seconds_left``): a class waiting for a teacher
sees it learn, and for how much longer. The lines are in the reader's language.
"""
from __future__ import annotations

from typing import Any, Iterable, Sequence

from kdlab.base.i18n import t  # not kdlab.ui.i18n: these functions stay free of Streamlit
from kdlab.base.record import Curve
from kdlab.plots import figures as plots
from kdlab.runs.distill import curve_of
from kdlab.base.lab import Lab
from kdlab.training.engine import Event

STUDENT_ROLES = ("distilled", "scratch")
TEACHER = "teacher"
# A rate is quoted only once it is measured over at least this many steps and seconds: the first steps
# include warming up (thread start, first allocations) and would promise too little time.
MIN_STEPS_FOR_ESTIMATE = 5
MIN_SECONDS_FOR_ESTIMATE = 2.0


def curves(events: Iterable[tuple[int, str, Event]]) -> dict[str, Curve]:
    """The curves of the latest seed's students so far, by role."""
    events = list(events)
    if not events:
        return {}
    seed = max(k for k, _, _ in events)
    return {role: curve_of([e for k, r, e in events if k == seed and r == role])
            for role in STUDENT_ROLES if any(k == seed and r == role for k, r, _ in events)}


def progress(events: list[tuple[int, str, Event]], lab: Lab, elapsed: float | None = None) -> tuple[float, str]:
    """(fraction done in [0, 1], one line saying what is happening) from the latest event; while the teacher
    trains, with the time left when ``elapsed`` (seconds since the job started) allows an estimate."""
    if not events:
        return 0.0, t("Starting…")
    k, role, ev = events[-1]
    frac = ev.step / max(1, ev.total_steps)
    if role == TEACHER:
        return frac, teacher_line(teacher_events(events), elapsed, t("Training the teacher (it is then cached)"))
    roles = STUDENT_ROLES if lab.scratch else ("distilled",)
    part = (roles.index(role) + frac) / len(roles) if role in roles else frac
    values = dict(step=ev.step, total=ev.total_steps, seed=k + 1, seeds=lab.seeds)
    if role == "distilled":
        text = (t("Training the distilled student (seed {seed} of {seeds}): step {step:,} of {total:,}", **values)
                if lab.seeds > 1 else t("Training the distilled student: step {step:,} of {total:,}", **values))
    else:
        text = (t("Training the scratch student (seed {seed} of {seeds}): step {step:,} of {total:,}", **values)
                if lab.seeds > 1 else t("Training the scratch student: step {step:,} of {total:,}", **values))
    return (k + part) / lab.seeds, text


# -- a cold teacher ------------------------------------------------------------------------------------------

def teacher_events(events: Iterable[Sequence[Any]]) -> list[Event]:
    """The teacher's events from a job's ``(k, role, Event)`` or ``(role, Event)`` tuples."""
    return [e[-1] for e in events if e[-2] == TEACHER]


def teacher_training(events: Sequence[Sequence[Any]]) -> bool:
    """True while the job's latest event is the teacher's (it is training, no student has started)."""
    return bool(events) and events[-1][-2] == TEACHER and events[-1][-1].kind != "done"


def teacher_curve(events: list[Event]) -> Curve:
    """The teacher's training so far: window-mean loss at its step events, test accuracy at its evaluations."""
    return curve_of(events)


def teacher_figure(events: list[Event]) -> Any:
    """The teacher's live curve (``events`` its own, at least one) on the axis of its whole budget."""
    return plots.teacher_training(teacher_curve(events), events[-1].total_steps)


def steps_per_second(events: list[Event], elapsed: float | None) -> float | None:
    """The teacher's measured rate since its first step, or None until it is measured over enough steps and
    seconds. Preferred: the engine's own clock at its latest evaluation (``metrics["seconds"]``, evaluation
    included, as it will be until the end); before the first one, the latest step against ``elapsed``, the
    seconds since the job started (a teacher is the first thing its job trains)."""
    timed = [(e.step, e.metrics["seconds"]) for e in events if e.kind == "epoch" and "seconds" in e.metrics]
    latest = [(events[-1].step, elapsed)] if events and elapsed is not None else []
    for step, seconds in timed[-1:] + latest:
        if step >= MIN_STEPS_FOR_ESTIMATE and seconds >= MIN_SECONDS_FOR_ESTIMATE:
            return step / seconds
    return None


def seconds_left(events: list[Event], elapsed: float | None) -> float | None:
    """Seconds until the teacher's last step at the rate measured so far; None before there is a rate."""
    rate = steps_per_second(events, elapsed)
    if rate is None:
        return None
    return max(0.0, (events[-1].total_steps - events[-1].step) / rate)


def time_left_text(seconds: float | None) -> str:
    """'about 40 s left', 'about 2.5 min left', ... rounded as coarsely as an estimate deserves; '' for None."""
    if seconds is None:
        return ""
    if seconds < 10:
        return t("a few seconds left")
    if seconds < 60:
        return t("about {seconds} s left", seconds=5 * round(seconds / 5))
    minutes = seconds / 60
    shown = f"{round(2 * minutes) / 2:g}" if minutes < 10 else f"{round(minutes)}"
    return t("about {minutes} min left", minutes=shown)


def teacher_line(events: list[Event], elapsed: float | None, what: str | None = None) -> str:
    """'Training the teacher: step 300 of 1,407 · about 40 s left' (no estimate before there is a rate);
    ``what`` replaces 'Training the teacher' (translated by the caller)."""
    what = what or t("Training the teacher")
    if not events:
        return f"{what}…"
    ev = events[-1]
    left = time_left_text(seconds_left(events, elapsed))
    line = t("{what}: step {step:,} of {total:,}", what=what, step=ev.step, total=ev.total_steps)
    return f"{line} · {left}" if left else line
