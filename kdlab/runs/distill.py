"""One distillation run: get the teacher, train the student on the transfer set, optionally train the same
student without a teacher (its *scratch* twin), and evaluate all three on the test split."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from kdlab.stores.teacher_cache import TeacherStore
from kdlab.base.config import DistillConfig, to_dict
from kdlab.data import DATASETS, Dataset, load_dataset
from kdlab.training.engine import Event, Split, resolve_device, train
from kdlab.base.errors import ConfigError
from kdlab.training.losses import make_loss, validate_loss_params
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
    reason: str  # "completed", "stopped" or "time limit"
    history: list[dict[str, float]]
    confusion: list[list[int]]
    per_class_accuracy: list[float]
    model: nn.Module = field(repr=False)
    test_logits: torch.Tensor = field(repr=False)  # (N_test, C), bias included

    def summary(self) -> dict[str, Any]:
        """The JSON contract of ``kdlab distill --json``."""
        return {
            "test_accuracy": self.test_accuracy, "agreement": self.agreement, "kl_to_teacher": self.kl_to_teacher,
            "params": self.params, "macs": self.macs, "latency_s": self.latency_s, "seconds": self.seconds,
            "reason": self.reason, "per_class_accuracy": self.per_class_accuracy,
            "history": [{k: h[k] for k in ("epoch", "train_loss", "test_accuracy") if k in h} for h in self.history],
        }


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


def validate(cfg: DistillConfig) -> None:
    """Every check that needs no data: raises ConfigError before any work starts."""
    cfg.validate()
    DATASETS.get(cfg.dataset)
    validate_spec(cfg.teacher)  # the grammar and the numbers; whether it fits the data is checked on loading
    validate_spec(cfg.student)
    validate_loss_params(cfg.loss, cfg.temperature, cfg.alpha, **cfg.loss_params)
    if cfg.loss == "dkd" and not cfg.use_labels:  # its terms split around the target class
        raise ConfigError("loss 'dkd' needs labels; for an unlabelled transfer set use soft-only or hinton")
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
    loss = make_loss(cfg.loss, cfg.temperature, cfg.alpha, **cfg.loss_params)
    student = train_student("distilled", cfg, data, teacher, transfer, loss, on_progress, should_stop)
    twin = None
    if scratch:  # same student, seed, data and budget; hard labels and no teacher
        twin = train_student("scratch", cfg, data, teacher, Split(transfer.x, labels),
                             make_loss("hinton", alpha=0.0), on_progress, should_stop)
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
    last = None
    test = Split(data.x_test, data.y_test, teacher.test_logits)
    for last in train(model, transfer, loss, cfg.train, test=test, should_stop=should_stop):
        if on_progress is not None:
            on_progress(role, last)
    return student_report(role, cfg, data, teacher, model, time.perf_counter() - t0, last)


def student_report(role: str, cfg: DistillConfig, data: Dataset, teacher: Teacher, model: nn.Module,
                   seconds: float, last: Event, sizes: tuple[int, int, float] | None = None,
                   test_logits: torch.Tensor | None = None) -> StudentReport:
    """The report of a student trained by ``train_student`` or the stacked trainer; ``last`` is its done event.
    ``sizes`` (params, MACs, latency), when given, are those of another student of the same architecture;
    ``test_logits``, when given, are ``predict_logits(model, data.x_test)`` computed already."""
    if not last.history:
        raise RunStopped(f"the {role} student ended ({last.reason}) before finishing an epoch")
    raw = predict_logits(model, data.x_test) if test_logits is None else test_logits
    logits = with_bias(raw, cfg.eval_bias)
    ev = evaluate(logits, data.y_test, data.num_classes, teacher.test_logits)
    params, macs, latency = sizes or model_sizes(model, data.input_shape)
    return StudentReport(role, ev.accuracy, ev.agreement, ev.kl_to_teacher, params, macs, latency,
                         seconds, last.reason, last.history, ev.confusion, ev.per_class_accuracy, model, logits)


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
