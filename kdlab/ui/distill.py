"""The Distill page's pieces: the pool job of one run, its live panel, and the results of a finished run."""
from __future__ import annotations

import functools
import logging
import time
from typing import Any, Callable

import pandas as pd
import streamlit as st

from kdlab.plots import figures as plots
from kdlab.base.config import DistillConfig
from kdlab.data import Dataset
from kdlab.runs.distill import run_distill
from kdlab.serve.jobs import Job
from kdlab.stores.run_store import record_from_result
from kdlab.ui import layout, live, resources, runner, settings, state

log = logging.getLogger(__name__)
SLOT = "distill"
RUNNING = "kd.distill.running"  # the epochs and baseline flag of the run in progress (the widgets may change)


def distill_job(cfg: DistillConfig, baseline: bool, data: Dataset) -> Callable[[Job], dict[str, Any]]:
    """The work of one Run on a pool worker: train, summarise, persist; returns the session's record."""
    store = resources.run_store()

    def fn(job: Job) -> dict[str, Any]:
        t0 = time.perf_counter()
        result = run_distill(cfg, scratch=baseline, data=data, should_stop=job.should_stop,
                             on_progress=lambda role, event: job.emit((role, event)))
        log.info("job %s: trained in %.2f s after %.2f s in the queue (teacher from %s)", job.id,
                 time.perf_counter() - t0, (job.started or job.submitted) - job.submitted, result.teacher.source)
        curves = live.decimate(live.series_from_events(list(job.events), cfg.train.epochs))
        record = {**record_from_result(result, curves), "baseline": baseline,
                  "warnings": list(result.teacher.warnings)}
        outputs = {"distilled": result.distilled.test_logits}
        if result.scratch is not None:
            outputs["scratch"] = result.scratch.test_logits
        if not job.should_stop():  # a stopped or abandoned run is shown, not kept
            try:
                record["id"] = store.save(record, result.distilled.model.state_dict(), outputs)
            except OSError as exc:
                record["warnings"].append(f"The run could not be saved to disk ({exc}); it stays in this session.")
        record["outputs"] = {role: logits.numpy() for role, logits in outputs.items()}
        return record

    return fn


def start(lab: settings.LabSettings) -> Job:
    job = runner.submit(SLOT, distill_job(lab.config, lab.baseline, lab.data), label="distill")
    st.session_state[RUNNING] = {"epochs": lab.config.train.epochs, "baseline": lab.baseline}
    return job


def collect() -> None:
    runner.collect(SLOT, state.add_run)


def show_error() -> None:
    runner.show_error(SLOT)


def watch() -> None:
    running = st.session_state.get(RUNNING, {"epochs": 1, "baseline": True})
    runner.watch(SLOT, functools.partial(live_panel, **running))


def live_panel(job: Job, epochs: int, baseline: bool) -> None:
    """Drawn by the poller about twice a second while the job runs."""
    events = list(job.events)  # a snapshot: the worker keeps appending
    fraction, text = live.progress(events, epochs, baseline)
    st.progress(min(1.0, fraction), text=text)
    series = live.series_from_events(events, epochs)
    if series:
        layout.chart(plots.training_curves(series, epochs), key="live_curves")
        st.caption("Live: the distilled student's loss parts and both students' accuracy, as they train.")


# -- results ------------------------------------------------------------------------------------------------

def results(record: dict[str, Any], lab: settings.LabSettings) -> None:
    changed = settings.changed_fields(record["config"], lab.config, record.get("baseline"), lab.baseline)
    if changed:
        st.warning(f"**Stale results**: the settings changed since this run ({', '.join(changed)}). "
                   "Press Run to update them.", icon="⚠️")
    st.subheader(f"Results · {record['label']}")
    if record["reason"] != "completed":
        st.info(f"This run ended early ({record['reason']}); the numbers are for the epochs it finished.")
    for message in record.get("warnings", []):
        st.warning(message)
    st.dataframe(results_table(record), hide_index=True, key="results_table", column_config=_COLUMNS)
    t, d = record["teacher"], record["distilled"]
    st.caption(f"Compression {t['params'] / d['params']:.1f}× fewer parameters than the teacher. "
               "Agreement: how often a student predicts the teacher's class.")
    if (found := verdict(record)) is not None:
        kind, text = found
        (st.success if kind == "gain" else st.info)(text)
    epochs = record["config"]["train"]["epochs"]
    layout.chart(plots.training_curves(record["curves"], epochs, t["test_accuracy"]), key="curves")
    st.caption("Look for: the distilled student's test accuracy (thick orange) against the scratch student's "
               "(green) and the teacher's level (dashed blue).")
    confusions(record)


CLEAR_GAIN_POINTS = 1.0  # smaller gaps are within the seed-to-seed spread of these short runs (docs/RESULTS.md)

WHERE_KD_SHINES = ("With every training image a small student learns nearly as much from the labels alone. The "
                   "teacher's soft targets matter most when the student sees few images (the *Small transfer "
                   "set* preset, or a transfer-set size under More settings) or never sees a class "
                   "(Experiments → Omitted class).")


def verdict(record: dict[str, Any]) -> tuple[str, str] | None:
    """("gain" or "no gain", one sentence) comparing the distilled and the scratch student; None without one."""
    if record.get("scratch") is None:
        return None
    d, s = 100 * record["distilled"]["test_accuracy"], 100 * record["scratch"]["test_accuracy"]
    gain = round(d - s, 6)  # so that exactly one point counts as one point
    if gain >= CLEAR_GAIN_POINTS:
        return "gain", (f"Distillation helped: the distilled student scores {d:.1f} % against {s:.1f} % from "
                        f"scratch (+{gain:.1f} points).")
    outcome = "about the same as" if abs(gain) < CLEAR_GAIN_POINTS else "below"
    text = f"The distilled student ({d:.1f} %) is {outcome} the scratch student ({s:.1f} %)."
    cfg = record.get("config", {})
    if not cfg.get("transfer_size") and not cfg.get("omit_classes"):  # the full training set: say where KD shines
        text += " " + WHERE_KD_SHINES
    return "no gain", text


def results_table(record: dict[str, Any]) -> pd.DataFrame:
    rows = [("teacher", record["teacher"]), ("distilled student", record["distilled"]),
            ("scratch student", record.get("scratch"))]
    return pd.DataFrame([{"model": name, "test accuracy": 100 * r["test_accuracy"],
                          "agreement with teacher": 100 * r["agreement"], "parameters": r["params"],
                          "latency per example (µs)": 1e6 * r["latency_s"]} for name, r in rows if r])


_COLUMNS = {"test accuracy": st.column_config.NumberColumn(format="%.1f%%"),
            "agreement with teacher": st.column_config.NumberColumn(format="%.1f%%"),
            "parameters": st.column_config.NumberColumn(format="localized"),
            "latency per example (µs)": st.column_config.NumberColumn(format="%.2f")}


def confusions(record: dict[str, Any]) -> None:
    classes, scratch = record["classes"], record.get("scratch")
    roles = [("teacher", record["teacher"]), ("distilled", record["distilled"]), ("scratch", scratch)]
    roles = [(role, r) for role, r in roles if r is not None]
    st.markdown("#### Confusion matrices")
    for col, (role, r) in zip(st.columns(len(roles)), roles):
        title = f"{plots.ROLE_NAMES[role].capitalize()} · {100 * r['test_accuracy']:.1f}%"
        layout.chart(plots.confusion_figure(r["confusion"], classes, title, role), key=f"cm_{role}", where=col)
    st.caption("Rows: the true class; columns: the prediction. Off-diagonal cells are mistakes.")
    if scratch is None:
        return
    left, right = st.columns(2)
    diff = plots.confusion_difference(record["distilled"]["confusion"], scratch["confusion"], classes)
    layout.chart(diff, key="cm_diff", where=left)
    left.caption("Orange: the distilled student predicts this cell more often than scratch; green: less often. "
                 "Orange on the diagonal is good, off it bad.")
    delta = [None if a is None or b is None else a - b
             for a, b in zip(record["distilled"]["per_class_accuracy"], scratch["per_class_accuracy"])]
    layout.chart(plots.class_changes(delta, classes), key="class_changes", where=right)
    right.caption(gain_summary(delta, classes))


def gain_summary(delta: list[float | None], classes: list[str], k: int = 3) -> str:
    """'Gained most: 8 (+5.6), …; lost most: 1 (−2.8), …' in accuracy points."""
    ranked = sorted(((d, c) for d, c in zip(delta, classes) if d is not None), reverse=True)
    fmt = lambda items: ", ".join(f"{c} ({100 * d:+.1f})" for d, c in items) or "none"  # noqa: E731
    gained = [x for x in ranked if x[0] > 0][:k]
    lost = [x for x in reversed(ranked) if x[0] < 0][:k]
    return f"Per-class accuracy, distilled − scratch, in points. Gained most: {fmt(gained)}; lost most: {fmt(lost)}."
