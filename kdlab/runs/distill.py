"""One distillation run: get the teacher, train the student on the transfer set, optionally train the same
student without a teacher (its *scratch* twin), and evaluate all three on the test split."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from kdlab.stores.teacher_cache import TeacherStore
from kdlab.base.config import DistillConfig, to_dict
from kdlab.base.record import Curve, ModelResult, jsonable
from kdlab.data import DATASETS, Dataset, load_dataset
from kdlab.training.engine import Event, Split, resolve_device, train
from kdlab.base.errors import ConfigError
from kdlab.training.losses import bind_loss, loss_info, validate_loss_params
from kdlab.training.metrics import evaluate, latency_per_example, predict_logits, with_bias
from kdlab.training.models import build_model, count_params, macs_per_example, validate_spec
from kdlab.runs.teacher import RunStopped, Teacher, get_teacher

ProgressFn = Callable[[str, Event], None]  # (role, event); role is "teacher", "distilled" or "scratch"


@dataclass
class StudentReport:
    role: str  # "distilled" or "scratch"
    test_accuracy: float
    agreement: float
    kl_to_teacher: float
    params: int
    macs: int
    latency_s: float  # CPU seconds per example, batched
    seconds: float  # wall time of its training
    steps: int  # optimizer steps taken
    reason: str  # "completed", "stopped" or "time limit"
    history: list[dict[str, float]]
    confusion: list[list[int]]
    per_class_accuracy: list[float]
    model: nn.Module = field(repr=False)
    test_logits: torch.Tensor = field(repr=False)  # (N_test, C), bias included
    curve: Curve | None = None  # the whole training, recorded from its events
    arch: str = ""
    seed: int = 0
    total_steps: int = 0  # the budget it had (a stopped student took fewer steps)

    def result(self) -> ModelResult:
        """What is kept of this student: its one serialised form (records, downloads, the CLI's JSON)."""
        return ModelResult(self.role, self.arch, self.test_accuracy, self.agreement, self.params, self.latency_s,
                           self.confusion, self.per_class_accuracy, self.seed, self.kl_to_teacher, self.macs,
                           self.seconds, self.steps, self.reason, self.history, self.curve)

    def summary(self) -> dict[str, Any]:
        """The JSON of ``kdlab distill --json`` (its keys of kdlab 0.1 included)."""
        return jsonable(asdict(self.result()))


@dataclass
class RunResult:
    config: DistillConfig
    dataset: Dataset = field(repr=False)
    teacher: Teacher = field(repr=False)
    distilled: StudentReport
    scratch: StudentReport | None  # the same student trained on the labels alone

    def summary(self) -> dict[str, Any]:
        t = self.teacher
        out = {"config": to_dict(self.config),
               "teacher": {"source": "trained" if t.source == "trained" else "cache", "test_accuracy": t.test_accuracy, "params": t.meta["params"],
                           "seconds": t.meta.get("load_seconds", t.meta["train_seconds"]), "key": t.key},
               "student": self.distilled.summary()}
        if self.scratch is not None:  # "baseline": the name scripts have read since the first release
            out["scratch"] = out["baseline"] = self.scratch.summary()
        return out


def scratch_config(cfg: DistillConfig) -> DistillConfig:
    """What the scratch twin trains: the same student, transfer set, seed and budget, on the hard labels alone
    (hinton at alpha = 0 is plain cross-entropy)."""
    return cfg.replace(loss="hinton", alpha=0.0, loss_params={}, use_labels=True)


def validate(cfg: DistillConfig) -> None:
    """Every check of a run that needs no data, in one place: raises ConfigError before any work starts."""
    cfg.validate()
    DATASETS.get(cfg.dataset)
    validate_spec(cfg.teacher)  # the grammar and the numbers; whether it fits the data is checked on loading
    validate_spec(cfg.student)
    validate_loss_params(cfg.loss, cfg.temperature, cfg.alpha, **cfg.loss_params)
    if loss_info(cfg.loss).needs_labels and not cfg.use_labels:
        raise ConfigError(f"loss {cfg.loss!r} needs labels; for an unlabelled transfer set use soft-only or hinton")
    resolve_device(cfg.train.device)
    resolve_device(cfg.teacher_train.device)


def run_distill(cfg: DistillConfig, *, scratch: bool = True, store: TeacherStore | None = None,
                data: Dataset | None = None, data_dir: str | None = None,
                on_progress: ProgressFn | None = None, should_stop: Callable[[], bool] | None = None) -> RunResult:
    validate(cfg)
    data = data or load_dataset(cfg.dataset, data_dir)
    idx = check_data(cfg, data)
    teacher = fetch_teacher(cfg, data, store, on_progress, should_stop)
    labels = data.y_train[idx]
    transfer = Split(data.x_train[idx], labels if cfg.use_labels else None, teacher.train_logits[idx])
    student = train_student("distilled", cfg, data, teacher, transfer, _loss_of(cfg), on_progress, should_stop)
    twin = None
    if scratch and student.reason != "stopped":  # same student, seed, data and budget; hard labels, no teacher
        twin = train_student("scratch", cfg, data, teacher, Split(transfer.x, labels),
                             _loss_of(scratch_config(cfg)), on_progress, should_stop)
    return RunResult(cfg, data, teacher, student, twin)


def check_data(cfg: DistillConfig, data: Dataset) -> torch.Tensor:
    """The (n,) training rows of the transfer set; ConfigError, before any work, for what ``data`` cannot do."""
    _check_classes(cfg, data)
    for spec in (cfg.teacher, cfg.student):  # e.g. a CNN on a 2-D toy set: refuse before training a teacher
        validate_spec(spec, data.input_shape, data.num_classes)
    return data.transfer_indices(cfg.transfer_size, cfg.omit_classes, cfg.train.seed)


def fetch_teacher(cfg: DistillConfig, data: Dataset, store: TeacherStore | None, on_progress: ProgressFn | None,
                  should_stop: Callable[[], bool] | None) -> Teacher:
    t0 = time.perf_counter()
    teacher = get_teacher(cfg.teacher_config(), data, store, _tagged(on_progress, "teacher"), should_stop)
    if teacher.source != "trained":
        teacher.meta = {**teacher.meta, "load_seconds": time.perf_counter() - t0}
    return teacher


def train_student(role: str, cfg: DistillConfig, data: Dataset, teacher: Teacher, transfer: Split,
                  loss, on_progress: ProgressFn | None, should_stop: Callable[[], bool] | None) -> StudentReport:
    torch.manual_seed(cfg.train.seed)  # the distilled and scratch students start from the same weights
    model = build_model(cfg.student, data.input_shape, data.num_classes)
    t0 = time.perf_counter()
    events: list[Event] = []
    test = Split(data.x_test, data.y_test, teacher.test_logits)
    for event in train(model, transfer, loss, cfg.train, test=test, should_stop=should_stop):
        events.append(event)
        if on_progress is not None:
            on_progress(role, event)
    return student_report(role, cfg, data, teacher, model, time.perf_counter() - t0, events)


def student_report(role: str, cfg: DistillConfig, data: Dataset, teacher: Teacher, model: nn.Module,
                   seconds: float, events: list[Event], sizes: tuple[int, int, float] | None = None,
                   test_logits: torch.Tensor | None = None) -> StudentReport:
    """The report of a student trained by ``train_student`` or the stacked trainer, from its engine ``events``
    (the last is its done event). ``sizes`` (params, MACs, latency), when given, are those of another student
    of the same architecture; ``test_logits``, when given, are ``predict_logits(model, data.x_test)`` already."""
    last = events[-1] if events else None
    if last is None or not last.history:
        raise RunStopped(f"the {role} student was {last.reason if last else 'stopped'} before its first step")
    raw = predict_logits(model, data.x_test) if test_logits is None else test_logits
    logits = with_bias(raw, cfg.eval_bias)
    ev = evaluate(logits, data.y_test, data.num_classes, teacher.test_logits)
    params, macs, latency = sizes or model_sizes(model, data.input_shape)
    return StudentReport(role, ev.accuracy, ev.agreement, ev.kl_to_teacher, params, macs, latency, seconds,
                         last.step, last.reason, last.history, ev.confusion, ev.per_class_accuracy, model, logits,
                         curve_of(events), cfg.student, cfg.train.seed, last.total_steps)


def curve_of(events: list[Event]) -> Curve:
    """A student's Curve from its engine events (at most MAX_STEP_EVENTS steps and MAX_EVALUATIONS evaluations,
    so it is complete and small however long the run)."""
    steps = [e for e in events if e.kind == "step"]
    evals = [e for e in events if e.kind == "epoch" and "test_accuracy" in e.metrics]
    col = lambda key: [e.metrics.get(key) for e in steps]  # noqa: E731
    return Curve([e.step for e in steps], col("train_loss"), col("soft"), col("hard"), col("train_accuracy"),
                 [e.step for e in evals], [e.metrics["test_accuracy"] for e in evals])


def _loss_of(cfg: DistillConfig):
    return bind_loss(cfg.loss, cfg.temperature, cfg.alpha, **cfg.loss_params)  # validate(cfg) checked them


def model_sizes(model: nn.Module, input_shape: tuple[int, ...]) -> tuple[int, int, float]:
    """(parameters, MACs per example, CPU seconds per example): properties of the architecture."""
    return count_params(model), macs_per_example(model, input_shape), latency_per_example(model, input_shape)


def _check_classes(cfg: DistillConfig, data: Dataset) -> None:
    for c, _ in cfg.eval_bias:
        if not 0 <= c < data.num_classes:
            raise ConfigError(f"bias class {c} is not a class of {data.name} (0..{data.num_classes - 1})")
    for c in cfg.omit_classes:
        if not 0 <= c < data.num_classes:
            raise ConfigError(f"omitted class {c} is not a class of {data.name} (0..{data.num_classes - 1})")


def _tagged(on_progress: ProgressFn | None, role: str) -> Callable[[Event], None] | None:
    return None if on_progress is None else (lambda event: on_progress(role, event))
