"""Many student runs on one dataset: the seam that sweeps and experiments share, and the one place that decides
how a list of runs is trained: stacked (``kdlab.training.stacked``: students of one architecture, teacher,
transfer-set size and schedule trained in lockstep) where the measured decision ``stacked_pays`` says it is
faster, one after another through ``run_distill`` otherwise. Callers see the same results either way."""
from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import time
from dataclasses import dataclass
from typing import Callable, Hashable, Iterator, Sequence

import torch

from kdlab.base.config import DistillConfig
from kdlab.data import Dataset
from kdlab.runs.distill import (
    RunResult, StudentReport, check_data, fetch_teacher, model_sizes, run_distill, student_report, validate,
)
from kdlab.runs.teacher import RunStopped
from kdlab.stores.teacher_cache import TeacherStore
from kdlab.training.engine import Event, Split
from kdlab.training.models import build_model
from kdlab.training.stacked import Student, kl_ce_form, linear_layers, stacked_pays, train_stacked

RunProgress = Callable[[Hashable, str, Event], None]  # (run key, role, event); role as in run_distill
RunDone = Callable[[Hashable, RunResult], None]  # (run key, its result) as each run finishes
SCRATCH = kl_ce_form("hinton", 4.0, 0.0, teacher=False, labels=True)  # run_distill's twin: plain CE
STACK_PARAMS = 16_000_000  # parameters in one stack at most: with gradients and Adam's two states, 256 MB
_STACKING: contextvars.ContextVar[bool | None] = contextvars.ContextVar("kdlab_stacking", default=None)


@contextlib.contextmanager
def stacking(enabled: bool | None) -> Iterator[None]:
    """Within the block (this thread), stack every stackable group (True), none (False) or decide by the
    measured ``stacked_pays`` (None, the default): for benchmarks and tests that compare the two ways."""
    token = _STACKING.set(enabled)
    try:
        yield
    finally:
        _STACKING.reset(token)


@dataclass(frozen=True)
class Run:
    key: Hashable  # how the caller finds this run's result, e.g. (T, alpha, seed)
    config: DistillConfig
    scratch: bool  # also train the same student without a teacher


@dataclass
class Group:
    """Runs trained together (``stacked``) or one after another; ``students`` counts the scratch twins."""

    runs: list[Run]
    stacked: bool
    students: int
    rows: list[torch.Tensor]  # each run's transfer set, rows of the training split


def run_all(runs: Sequence[Run], data: Dataset, *, store: TeacherStore | None = None,
            on_progress: RunProgress | None = None, should_stop: Callable[[], bool] | None = None,
            keep_stopped: bool = False, on_result: RunDone | None = None) -> dict[Hashable, RunResult]:
    """The results of ``runs`` by key, in the order of ``runs``; ``on_result`` hears of each as it finishes.
    Every config is checked first (ConfigError before any work). A stop ends the batch early: the runs finished
    before it are returned; the ones it interrupted (one run, or every run of an interrupted stack) are
    dropped, or, with ``keep_stopped``, returned with their students marked "stopped" (what they had learnt);
    a caller tells a short result from a full one by length. Any function with this signature is an
    ``Executor``: callers that take one (run_sweep, run_experiment) run their batch on it instead, e.g. on a
    Ray cluster."""
    done: dict[Hashable, RunResult] = {}

    def finished(key: Hashable, result: RunResult) -> None:  # as each run ends, in a stack or alone
        done[key] = result
        if on_result is not None and not stopped(result):
            on_result(key, result)

    for group in plan(runs, data):
        train = _stacked if group.stacked else _serial
        if train(group, data, store, on_progress, should_stop, keep_stopped, finished):
            break  # stopped
    return {run.key: done[run.key] for run in runs if run.key in done}


def stopped(result: RunResult) -> bool:
    """Whether a stop interrupted one of the result's students (a result only ``keep_stopped`` keeps)."""
    return any(s is not None and s.reason == "stopped" for s in (result.distilled, result.scratch))


class Fractions:
    """How far a batch's student trainings have come: the sum of each training's own fraction done (a finished
    one counts 1). It stays right when an executor trains several runs at once (on a Ray cluster, or stacked):
    the events of runs in flight interleave, and each moves only its own share."""

    def __init__(self) -> None:
        self._of: dict[tuple[Hashable, str], float] = {}  # (run key, role) -> its fraction done
        self._done: set[tuple[Hashable, str]] = set()
        self.sum = 0.0

    def update(self, key: Hashable, role: str, event: Event) -> float:
        """Takes one student's event; returns the new sum."""
        frac = 1.0 if event.kind == "done" else event.step / max(1, event.total_steps)
        self.sum += frac - self._of.get((key, role), 0.0)
        self._of[(key, role)] = frac
        if event.kind == "done":
            self._done.add((key, role))
        return self.sum

    @property
    def finished(self) -> int:
        """Trainings that have ended."""
        return len(self._done)


Executor = Callable[..., dict[Hashable, RunResult]]  # run_all's signature: (runs, data, *, store, on_progress,
#                                                       should_stop, keep_stopped, on_result)


def plan(runs: Sequence[Run], data: Dataset) -> list[Group]:
    """The runs in groups, in the order of each group's first run: runs that can step in lockstep (same
    teacher, stackable student architecture, transfer-set size and training schedule, a loss of the KL + CE
    family) share a group, stacked when ``stacked_pays``; every other run is a serial group of its own."""
    groups: dict[Hashable, Group] = {}
    for i, run in enumerate(runs):
        validate(run.config)
        rows = check_data(run.config, data)
        key = _stack_key(run, data, rows) or ("alone", i)
        group = groups.setdefault(key, Group([], False, 0, []))
        group.runs.append(run)
        group.rows.append(rows)
        group.students += 1 + run.scratch
    forced = _STACKING.get()
    out: list[Group] = []
    for key, group in groups.items():
        if key[0] == "alone":
            out.append(group)
            continue
        layers = _layers(group.runs[0].config.student, data.input_shape, data.num_classes)
        for part in _split(group, max(1, STACK_PARAMS // sum((i + 1) * o for i, o in layers))):
            macs = sum(i * o for i, o in layers)
            pays = stacked_pays(part.students, macs, _flat(data.input_shape)) if forced is None else forced
            part.stacked = pays and part.students > 1
            out.append(part)
    return out


def _split(group: Group, cap: int) -> list[Group]:
    """``group`` in stacks of at most ``cap`` students (a run and its scratch twin stay together)."""
    parts = [Group([], False, 0, [])]
    for run, rows in zip(group.runs, group.rows):
        if parts[-1].runs and parts[-1].students + 1 + run.scratch > cap:
            parts.append(Group([], False, 0, []))
        parts[-1].runs.append(run)
        parts[-1].rows.append(rows)
        parts[-1].students += 1 + run.scratch
    return parts


def _stack_key(run: Run, data: Dataset, rows: torch.Tensor) -> Hashable | None:
    cfg = run.config
    form = kl_ce_form(cfg.loss, cfg.temperature, cfg.alpha, cfg.loss_params, teacher=True, labels=cfg.use_labels)
    if form is None or cfg.train.device != "cpu" or _layers(cfg.student, data.input_shape, data.num_classes) is None:
        return None
    return ("stack", cfg.teacher_config(), cfg.student, len(rows), dataclasses.replace(cfg.train, seed=0))


@functools.lru_cache(maxsize=256)
def _layers(spec: str, shape: tuple[int, ...], classes: int) -> tuple[tuple[int, int], ...] | None:
    """(in, out) of each Linear layer of a stackable architecture, else None."""
    with torch.device("meta"):  # the architecture without its weights
        layers = linear_layers(build_model(spec, shape, classes))
    return None if layers is None else tuple((m.in_features, m.out_features) for m in layers)


def _flat(shape: tuple[int, ...]) -> int:
    out = 1
    for d in shape:
        out *= d
    return out


def _serial(group: Group, data: Dataset, store: TeacherStore | None, on_progress: RunProgress | None,
            should_stop: Callable[[], bool] | None, keep_stopped: bool, finished: RunDone) -> bool:
    """The group's runs one after another, each handed to ``finished``; True when a stop ended them."""
    for run in group.runs:
        tagged = None if on_progress is None else functools.partial(on_progress, run.key)
        try:
            result = run_distill(run.config, scratch=run.scratch, data=data, store=store, on_progress=tagged,
                                 should_stop=should_stop)
        except RunStopped:
            return True
        if stopped(result):
            if keep_stopped:
                finished(run.key, result)
            return True
        finished(run.key, result)
    return False


def _stacked(group: Group, data: Dataset, store: TeacherStore | None, on_progress: RunProgress | None,
             should_stop: Callable[[], bool] | None, keep_stopped: bool, finished: RunDone) -> bool:
    """One stack of every run's distilled student and scratch twin, built as run_distill builds them; the
    results go to ``finished`` when the stack ends; True when a stop ended it."""
    runs = group.runs
    teachers, students, roles = [], [], []  # roles[j] = (index of its run, role) of student j
    for i, (run, rows) in enumerate(zip(runs, group.rows)):
        cfg = run.config
        tagged = None if on_progress is None else functools.partial(on_progress, run.key)
        try:  # memory hits after the first run: the group shares one teacher config
            teachers.append(fetch_teacher(cfg, data, store, tagged, should_stop))
        except RunStopped:
            return True
        form = kl_ce_form(cfg.loss, cfg.temperature, cfg.alpha, cfg.loss_params, teacher=True, labels=cfg.use_labels)
        for role, loss, labelled in (("distilled", form, cfg.use_labels), ("scratch", SCRATCH, True))[:1 + run.scratch]:
            # as train_student's torch.manual_seed: the CPU generator alone (seeding the absent accelerators
            # costs ~3 ms a call, a traceback each), so both twins start from the single trainer's weights
            torch.random.default_generator.manual_seed(cfg.train.seed)
            model = build_model(cfg.student, data.input_shape, data.num_classes)
            students.append(Student(model, rows, loss, labelled, cfg.train))
            roles.append((i, role))
    shared = Split(data.x_train, data.y_train, teachers[0].train_logits)  # one teacher config: the same logits
    test = Split(data.x_test, data.y_test, teachers[0].test_logits)
    events: list[list[Event]] = [[] for _ in students]  # each student's own, for its curve and its report
    t0 = time.perf_counter()
    for j, event in train_stacked(students, shared, test=test, should_stop=should_stop):
        events[j].append(event)
        if on_progress is not None:
            on_progress(runs[roles[j][0]].key, roles[j][1], event)
    stopped = any(ev and ev[-1].reason == "stopped" for ev in events)
    if stopped and not keep_stopped:
        return True
    seconds = (time.perf_counter() - t0) / len(students)  # each student's share, as the stack's history says
    reports: list[dict[str, StudentReport]] = [{} for _ in runs]
    sizes = model_sizes(students[0].model, data.input_shape)  # one architecture: measured once
    for (i, role), student, ev in zip(roles, students, events):
        try:
            reports[i][role] = student_report(role, runs[i].config, data, teachers[i], student.model, seconds, ev,
                                              sizes, student.test_logits)  # its final evaluation's, the same numbers
        except RunStopped:  # stopped (or out of time) before a first step: nothing of this student to keep
            if not keep_stopped:
                return True
    for run, t, r in zip(runs, teachers, reports):
        if "distilled" in r:
            finished(run.key, RunResult(run.config, data, t, r["distilled"], r.get("scratch")))
    return stopped
