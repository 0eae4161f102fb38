"""Run configurations: names and numbers only, so a config can travel through JSON, a URL or a CLI.

Numeric validation lives here; whether a *name* exists (dataset, architecture, loss) is checked by
``kdlab.runs.validate`` against the registries, which this module must not import.
"""
from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Any

from kdlab.base.errors import ConfigError

OPTIMIZERS = ("adam", "sgd")
DEFAULT_STUDENT_STEPS = 1000
SCHEDULES = ("constant", "cosine", "step")


@dataclass(frozen=True)
class TrainConfig:
    """How one network is trained. The defaults suit the small MLPs of the lab on CPU."""

    epochs: int = 5  # the budget in passes over the training set, unless ``steps`` is set
    steps: int | None = None  # the budget in optimizer steps; a small transfer set then trains as long as a large one
    batch_size: int = 128  # Hinton 2015 and most tutorials; small enough for noisy-but-fast SGD on 2 cores
    lr: float = 1e-3  # Adam's usual step; SGD wants ~0.05-0.1
    optimizer: str = "adam"
    momentum: float = 0.9  # SGD only
    weight_decay: float = 0.0
    schedule: str = "cosine"  # cosine to zero: short runs end on a low LR and so are less noisy
    seed: int = 0
    max_seconds: float = 600.0  # every run is bounded in time, whatever the epochs say (a closed tab keeps none alive)
    device: str = "cpu"

    def validate(self) -> None:
        _check_int("epochs", self.epochs, 1, 10_000)
        if self.steps is not None:
            _check_int("steps", self.steps, 1, 1_000_000)
        _check_int("batch_size", self.batch_size, 1, 1_000_000)
        _check_float("lr", self.lr, 0.0, 10.0, low_open=True)
        _check_float("momentum", self.momentum, 0.0, 1.0, high_open=True)
        _check_float("weight_decay", self.weight_decay, 0.0, 1.0)
        _check_float("max_seconds", self.max_seconds, 0.0, 86_400.0, low_open=True)
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("schedule", self.schedule, SCHEDULES)
        _check_int("seed", self.seed, 0, 2**31 - 1)
        if not isinstance(self.device, str) or not re.fullmatch(r"cpu|cuda(:\d+)?", self.device):
            raise ConfigError(f"device must be 'cpu' or 'cuda[:N]', got {self.device!r}")


@dataclass(frozen=True)
class TeacherConfig:
    """Everything that determines a trained teacher, and so its cache key."""

    dataset: str = "digits"
    arch: str = "mlp:500"
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=20))

    def validate(self) -> None:
        self.train.validate()


@dataclass(frozen=True)
class DistillConfig:
    """One student run. ``alpha`` always weights the *soft* (teacher) term: alpha=0 is plain CE training."""

    dataset: str = "digits"
    teacher: str = "mlp:500"
    student: str = "mlp:100"
    loss: str = "hinton"
    temperature: float = 4.0  # Hinton 2015 found 2.5-4 best for small students
    alpha: float = 0.9
    loss_params: dict[str, float] = field(default_factory=dict)  # extra knobs, e.g. {"lam": 0.1} for `source`
    # the student's training: a step budget, so a 50-image transfer set trains as long as a full one (an epoch
    # budget gives it one step per epoch); 1 000 Adam steps train a small MLP on digits or Fashion-MNIST well
    train: TrainConfig = field(default_factory=lambda: TrainConfig(steps=DEFAULT_STUDENT_STEPS))
    teacher_train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=20))
    transfer_size: int | None = None  # None: the whole training split is the transfer set
    omit_classes: tuple[int, ...] = ()  # classes removed from the transfer set (Hinton 2015 §3)
    use_labels: bool = True  # False: soft targets alone (an unlabelled transfer set)
    eval_bias: tuple[tuple[int, float], ...] = ()  # (class, logit bias) added at evaluation time only

    def validate(self) -> None:
        check_temperature(self.temperature)
        check_alpha(self.alpha)
        if self.transfer_size is not None:
            _check_int("transfer_size", self.transfer_size, 1, 10_000_000)
        for pair in self.eval_bias:
            if len(pair) != 2:
                raise ConfigError(f"eval_bias entries must be (class, bias) pairs, got {pair!r}")
            _check_int("bias class", pair[0], 0, 10_000)
            _check_float("logit bias", pair[1], -100.0, 100.0)
        for c in self.omit_classes:
            _check_int("omitted class", c, 0, 10_000)
        self.train.validate()
        self.teacher_train.validate()

    def teacher_config(self) -> TeacherConfig:
        return TeacherConfig(dataset=self.dataset, arch=self.teacher, train=self.teacher_train)

    def replace(self, **changes: Any) -> "DistillConfig":
        return dataclasses.replace(self, **changes)


def check_temperature(value: Any) -> None:
    """The one rule for a temperature (configs and losses share it)."""
    if not _is_number(value) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"temperature T must be a finite number > 0, got {value!r}")


def check_alpha(value: Any) -> None:
    """The one rule for alpha, the weight of the soft (teacher) term."""
    if not _is_number(value) or not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ConfigError(f"alpha must be a number in [0, 1] (it weights the soft term), got {value!r}")


def to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-ready dict (tuples become lists)."""
    return dataclasses.asdict(cfg)


def distill_from_dict(d: dict[str, Any]) -> DistillConfig:
    """Inverse of ``to_dict`` for DistillConfig; unknown keys are an error, missing ones take defaults."""
    d = dict(d)
    for key in ("train", "teacher_train"):
        if key in d:
            d[key] = _train_from_dict(d[key])
    if "omit_classes" in d:
        d["omit_classes"] = tuple(d["omit_classes"])
    if "eval_bias" in d:
        d["eval_bias"] = tuple(tuple(pair) for pair in d["eval_bias"])
    return _build(DistillConfig, d)


def teacher_from_dict(d: dict[str, Any]) -> TeacherConfig:
    d = dict(d)
    if "train" in d:
        d["train"] = _train_from_dict(d["train"])
    return _build(TeacherConfig, d)


def _train_from_dict(d: dict[str, Any] | TrainConfig) -> TrainConfig:
    return d if isinstance(d, TrainConfig) else _build(TrainConfig, d)


def _build(cls: type, d: dict[str, Any]) -> Any:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} field(s): {', '.join(unknown)}")
    return cls(**d)


def _check_int(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{name} must be a whole number in [{low}, {high}], got {value!r}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_float(name: str, value: Any, low: float, high: float,
                 low_open: bool = False, high_open: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        lb, rb = "(" if low_open else "[", ")" if high_open else "]"
        raise ConfigError(f"{name} must be a number in {lb}{low}, {high}{rb}, got {value!r}")


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"unknown {name} {value!r}; choose one of: {', '.join(choices)}")
