"""A finished (or stopped) Run press as a RunRecord (kdlab.base.record): the teacher evaluated once, every
seed's students, and, for a stopped run, which model the Stop ended and where."""
from __future__ import annotations

import time

from kdlab.base.i18n import N_, SOURCE, translate
from kdlab.base.record import REASONS, ModelResult, RunRecord
from kdlab.runs.distill import RunResult, StudentReport
from kdlab.base.lab import Lab
from kdlab.runs.lab import run_label
from kdlab.training.metrics import evaluate, latency_per_example


def build_record(lab: Lab, results: list[RunResult], warnings: list[str] | None = None,
                 lang: str = SOURCE) -> RunRecord:
    """``results`` are the seeds' runs in order (a stopped press has fewer, the last one maybe partial); where a
    stopped run stopped is said in ``lang`` (the reader's: a worker thread has no session to ask)."""
    first = results[0]
    students = [s for r in results for s in (r.distilled, r.scratch) if s is not None]
    stopped = next((s for s in students if s.reason != "completed"), None)
    seeds_done = len(results) if stopped is None else len(results) - 1
    return RunRecord(
        config=lab.config, classes=list(first.dataset.classes), teacher=_teacher(first),
        distilled=[r.distilled.result() for r in results], scratch=[r.scratch.result() for r in results if r.scratch],
        label=run_label(lab), created=time.time(), reason=stopped.reason if stopped else "completed",
        stopped=_where(stopped, seeds_done, lab, lang) if stopped is not None else "",
        warnings=list(warnings or []) + list(first.teacher.warnings), planned_seeds=lab.seeds)


def lab_of(record: RunRecord) -> Lab:
    """The set-up that made ``record``: what the sidebar showed when Run was pressed."""
    return Lab(record.config, scratch=bool(record.scratch), seeds=record.planned_seeds)


def _teacher(r: RunResult) -> ModelResult:
    t, data = r.teacher, r.dataset
    ev = evaluate(t.test_logits, data.y_test, data.num_classes)
    return ModelResult("teacher", t.config.arch, t.test_accuracy, 1.0, int(t.meta["params"]),
                       latency_per_example(t.model, data.input_shape), ev.confusion, ev.per_class_accuracy,
                       seed=t.config.train.seed, source=t.source, key=t.key)


STOPPED_AT = dict(zip(REASONS[1:], (N_("the {student}{seed} was stopped at step {step} of {total}"),  # by reason
                                     N_("the {student}{seed} was stopped by the time limit at step {step} of {total}"))))
STUDENTS = {"distilled": N_("distilled student"), "scratch": N_("scratch student")}


def _where(s: StudentReport, seeds_done: int, lab: Lab, lang: str) -> str:
    """'the distilled student (seed 1) was stopped at step 400 of 1000; 1 of 3 seeds finished before it'."""
    def say(text: str, **values) -> str:
        return translate(text, lang).format(**values)

    seed = say(N_(" (seed {seed})"), seed=s.seed) if lab.seeds > 1 else ""
    text = say(STOPPED_AT[s.reason], student=say(STUDENTS[s.role]), seed=seed, step=s.steps, total=s.total_steps)
    if lab.seeds > 1:
        text += say(N_("; {done} of {seeds} seeds finished before it"), done=seeds_done, seeds=lab.seeds)
    return text
