"""The Distill page's pieces: the pool job of one Run press, its live panel, and the results of a run."""
from __future__ import annotations

import dataclasses
import logging
import time
from typing import Callable

import pandas as pd
import streamlit as st

from kdlab.base.i18n import translate
from kdlab.base.record import RunRecord
from kdlab.data import Dataset
from kdlab.plots import figures as plots
from kdlab.runs.batch import Run, run_all
from kdlab.base.lab import Lab
from kdlab.runs.lab import stale_settings
from kdlab.runs.records import build_record, lab_of
from kdlab.runs.teacher import RunStopped
from kdlab.runs.verdict import CLEAR_GAIN, CLEAR_LOSS, ONE_SEED, judge
from kdlab.serve.jobs import Job
from kdlab.ui import layout, live, resources, runner, settings, state
from kdlab.ui.i18n import N_, language, names, t

log = logging.getLogger(__name__)
SLOT = "distill"
RUNNING = "kd.distill.running"  # the Lab of the run in progress (the widgets may change meanwhile)


def distill_job(lab: Lab, data: Dataset) -> Callable[[Job], tuple[RunRecord, dict]]:
    """The work of one Run press on a pool worker: every seed's twins, then the record (saved unless stopped)."""
    store = resources.run_store()
    owner = runner.session_owner()  # read here, on the session's thread: the worker has no session
    lang = language()  # the same: the worker's messages are in the reader's language

    def fn(job: Job) -> tuple[RunRecord, dict]:
        t0 = time.perf_counter()
        runs = [Run(k, cfg, lab.scratch) for k, cfg in enumerate(lab.seed_configs())]
        results = list(run_all(runs, data, on_progress=lambda k, role, ev: job.emit((k, role, ev)),
                               should_stop=job.should_stop, keep_stopped=True).values())
        if not results:
            raise RunStopped(translate(N_("the run was stopped before its first student finished a step; nothing "
                                          "to show"), lang))
        log.info("job %s: %d seed(s) trained in %.2f s after %.2f s in the queue", job.id, len(results),
                 time.perf_counter() - t0, (job.started or job.submitted) - job.submitted)
        record = dataclasses.replace(build_record(lab, results, lang=lang), owner=owner)
        first = results[0]
        outputs = {role: s.test_logits for role, s in (("distilled", first.distilled), ("scratch", first.scratch))
                   if s is not None}
        if record.reason != "stopped":  # a stopped run is shown, not kept
            try:
                record = store.save(record, first.distilled.model.state_dict(), outputs)
            except OSError as exc:
                record.warnings.append(translate(N_("The run could not be saved to disk ({error}); it stays in this "
                                                    "session."), lang).format(error=exc))
        return record, {role: logits.numpy() for role, logits in outputs.items()}

    return fn


def start(ls: settings.LabSettings) -> Job:
    job = runner.submit(SLOT, distill_job(ls.lab, ls.data), label=t("distill"))  # shown to its session only
    st.session_state[RUNNING] = ls.lab
    return job


def collect() -> None:
    runner.collect(SLOT, lambda found: state.add_run(*found))


def show_error() -> None:
    runner.show_error(SLOT)


def watch() -> None:
    running = st.session_state.get(RUNNING, state.lab())
    runner.watch(SLOT, lambda job: live_panel(job, running))


def live_panel(job: Job, lab: Lab) -> None:
    """Drawn by the poller about twice a second while the job runs; a cold teacher shows its own curve."""
    events = list(job.events)  # a snapshot: the worker keeps appending
    fraction, text = live.progress(events, lab, job.elapsed())  # the poller draws running jobs only
    st.progress(min(1.0, fraction), text=text)
    if live.teacher_training(events):
        layout.chart(live.teacher_figure(live.teacher_events(events)), key="live_teacher")
        st.caption(t("Live: the teacher learns first (window-mean loss, test accuracy at each evaluation). It "
                     "is cached, so every later run with this teacher starts at once."))
    if curves := live.curves(events):
        layout.chart(plots.training_curves(curves), key="live_curves")
        st.caption(t("Live: the students' losses and test accuracy as they train (the seed in progress)."))


# -- results ------------------------------------------------------------------------------------------------

def results(record: RunRecord, ls: settings.LabSettings) -> None:
    if record.reason == "stopped":
        st.warning(t("**Stopped run**: {where}. The numbers below are what it had learnt by then.",
                     where=record.stopped), icon="⏹️")
    elif changed := stale_settings(lab_of(record), ls.lab):
        st.warning(t("**Stale results**: the settings changed since this run ({changed}). Press Run to update "
                     "them.", changed=", ".join(t(label) for label in changed)), icon="⚠️")
    st.subheader(t("Results · {label}", label=record.label))
    if record.reason == "time limit":
        st.info(t("This run hit its time limit: {where}.", where=record.stopped))
    for message in record.warnings:
        st.warning(message)
    st.table(results_table(record))  # a static table wraps on a 1024-wide projector; a dataframe clips columns
    d = record.distilled[0]
    st.caption(t("{test_size} test images. The student has {ratio:.1f}× fewer parameters than the teacher. "
                 "Agreement: how often a student predicts the teacher's class.", test_size=record.test_size,
                 ratio=record.teacher.params / d.params))
    show_verdict(record)
    layout.chart(plots.training_curves({"distilled": d.curve, "scratch": record.scratch[0].curve if record.scratch
                                        else None}, record.teacher.test_accuracy),
                 key="curves")
    look = t("Look for the distilled student's test accuracy against the scratch student's, and the teacher's "
             "level.")
    if len(record.distilled) > 1:
        st.caption(t("Curves (seed {seed}): each loss point is the mean since the previous one. {look}", seed=d.seed,
                     look=look))
    else:
        st.caption(t("Curves: each loss point is the mean since the previous one. {look}", look=look))
    confusions(record)


WHERE_KD_SHINES = N_("With every training image a small student learns nearly as much from the labels alone. The "
                      "teacher's soft targets matter most when the student sees few images (the *Default* "
                      "preset, or a transfer-set size under Data) or never sees a class (the *Omitted class* "
                      "preset).")


def show_verdict(record: RunRecord) -> None:
    """The verdict in a box: green for a clear gain, else blue."""
    if (found := verdict(record)) is not None:
        kind, text = found
        (st.success if kind == CLEAR_GAIN else st.info)(text)


def verdict(record: RunRecord) -> tuple[str, str] | None:
    """(kind, one sentence) comparing the distilled and the scratch students over the seeds; None without twins."""
    if not record.scratch or len(record.scratch) != len(record.distilled):
        return None
    v = judge([m.test_accuracy for m in record.distilled], [m.test_accuracy for m in record.scratch], record.test_size)
    d, s = record.stats("distilled"), record.stats("scratch")
    size = t("{points:+.1f} points, {images:+.0f} of {test_size} test images", points=100 * v.gain,
             images=v.images, test_size=v.test_size)
    values = dict(n=len(v.per_seed), distilled=100 * d.mean, scratch=100 * s.mean, size=size, spread=100 * v.spread)
    if v.kind == ONE_SEED:
        text = t("With one seed the distilled student scores {distilled:.1f} % against {scratch:.1f} % from scratch "
                 "({size}). One seed cannot tell a gain from noise: run 3 seeds.", **values)
    elif v.kind == CLEAR_GAIN:
        text = t("Distillation helped, on every one of {n} seeds: {distilled:.1f} % against {scratch:.1f} % ({size} "
                 "on average; the seed-to-seed spread of the gain is ±{spread:.1f}).", **values)
    elif v.kind == CLEAR_LOSS:
        text = t("The distilled student did worse on every one of {n} seeds: {distilled:.1f} % against "
                 "{scratch:.1f} % ({size}; spread ±{spread:.1f}).", **values)
    else:
        text = t("No clear difference over {n} seeds: {distilled:.1f} % against {scratch:.1f} % ({size}); the "
                 "gain's seed-to-seed spread (±{spread:.1f}) is as large as the gain.", **values)
    if v.kind != CLEAR_GAIN and not record.config.transfer_size and not record.config.omit_classes:
        text += " " + t(WHERE_KD_SHINES)
    return v.kind, text


MODEL, PER_SEED = N_("model"), N_("per seed")  # the results table's index and its column of per-seed numbers


def results_table(record: RunRecord) -> pd.DataFrame:
    """One row per model; its labels (the index, the columns) in the reader's language."""
    rows = []
    for role, models in (("teacher", [record.teacher]), ("distilled", record.distilled),
                         ("scratch", record.scratch)):
        if not models:
            continue
        acc = [100 * m.test_accuracy for m in models]
        spread = "" if len(acc) == 1 else f" ± {pd.Series(acc).std():.1f}"
        rows.append({MODEL: t(plots.ROLE_NAMES[role]), N_("test accuracy (%)"): f"{sum(acc) / len(acc):.1f}{spread}",
                     PER_SEED: ", ".join(f"{a:.1f}" for a in acc) if len(acc) > 1 else "",
                     N_("agrees with teacher (%)"): f"{100 * sum(m.agreement for m in models) / len(models):.1f}",
                     N_("parameters"): f"{models[0].params:,}",
                     N_("µs / example"): f"{1e6 * models[0].latency_s:.2f}"})
    table = pd.DataFrame(rows).set_index(MODEL)
    table = table if len(record.distilled) > 1 else table.drop(columns=PER_SEED)
    return table.rename(columns=t).rename_axis(t(MODEL))


def confusions(record: RunRecord) -> None:
    classes, scratch = record.classes, (record.scratch[0] if record.scratch else None)  # figures translate classes
    roles = [("teacher", record.teacher), ("distilled", record.distilled[0]), ("scratch", scratch)]
    roles = [(role, m) for role, m in roles if m is not None]
    st.markdown(t("#### Confusion matrices (seed {seed})", seed=record.distilled[0].seed) if len(record.seeds) > 1
                else t("#### Confusion matrices"))
    cells = [*roles, ("difference", None)] if scratch is not None else roles
    for row in range(0, len(cells), 2):  # two a row: readable cells and unclipped titles on a 1024-wide projector
        for col, (role, m) in zip(st.columns(2), cells[row:row + 2]):
            if role == "difference":
                col.markdown(t("**Distilled − scratch**"))
                layout.chart(plots.confusion_difference(record.distilled[0].confusion, scratch.confusion, classes),
                             key="cm_diff", where=col)
            else:
                col.markdown(f"**{t(plots.ROLE_NAMES[role]).capitalize()} · {100 * m.test_accuracy:.1f} %**")
                layout.chart(plots.confusion_figure(m.confusion, classes, "", role), key=f"cm_{role}", where=col)
    st.caption(t("Rows: the true class; columns: the prediction. Off-diagonal cells are mistakes. In the "
                 "difference, purple: the distilled student predicts that cell more often than scratch; gold: less "
                 "often (more on the diagonal is better, more off it worse)."))
    if scratch is None:
        return
    delta = [None if a is None or b is None else a - b
             for a, b in zip(record.distilled[0].per_class_accuracy, scratch.per_class_accuracy)]
    layout.chart(plots.class_changes(delta, classes), key="class_changes")
    st.caption(gain_summary(delta, classes))


def gain_summary(delta: list[float | None], classes: list[str], k: int = 3) -> str:
    """'Gained most: 8 (+5.6), …; lost most: 1 (−2.8), …' in accuracy points, the classes in the reader's
    language."""
    ranked = sorted(((d, c) for d, c in zip(delta, names(classes)) if d is not None), reverse=True)
    fmt = lambda items: ", ".join(f"{c} ({100 * d:+.1f})" for d, c in items) or t("none")  # noqa: E731
    gained = [x for x in ranked if x[0] > 0][:k]
    lost = [x for x in reversed(ranked) if x[0] < 0][:k]
    return t("Per-class accuracy, distilled − scratch, in points. Gained most: {gained}; lost most: {lost}.",
             gained=fmt(gained), lost=fmt(lost))


def run_controls(ls: settings.LabSettings, busy: bool) -> bool:
    """The Run button, with what a press will train beside it, or why it cannot run (next to the button, where
    the eye is, not only in the sidebar). True when pressed."""
    left, right = st.columns([1, 4])
    pressed = left.button(t("Run"), type="primary", key="run", disabled=busy or not ls.ok, width="stretch",
                          help=t("Gets the teacher from the cache (or trains it), then trains the students."))
    if not ls.ok:
        right.error(t("Run is off: {reason}. Fix it in the sidebar.",
                      reason=ls.error or t("the dataset is not available")))
    else:
        right.caption(trains_text(ls.lab))
    return pressed


def trains_text(lab: Lab) -> str:
    """What a press of Run will train, and for how long."""
    budget = settings.budget_text(lab)[1]
    if lab.scratch:
        if lab.seeds > 1:
            return t("Trains the distilled student and its scratch twin, for each of {seeds} seeds: {budget}.",
                     seeds=lab.seeds, budget=budget)
        return t("Trains the distilled student and its scratch twin: {budget}.", budget=budget)
    if lab.seeds > 1:
        return t("Trains the distilled student, for each of {seeds} seeds: {budget}.", seeds=lab.seeds, budget=budget)
    return t("Trains the distilled student: {budget}.", budget=budget)
