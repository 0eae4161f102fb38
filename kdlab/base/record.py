"""What a finished (or stopped) run leaves behind, typed: the results of its teacher and students, their
training curves, complete however long the run was, and its config. One JSON form, with a format version,
for the run store, the Runs page, the CLI and every download. Pure: numbers and names, no tensors.

``from_json`` validates: a record that does not have the fields readers rely on is a RecordError, so one
damaged run.json cannot break a page that lists many."""
from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from kdlab.base.config import DistillConfig, distill_from_dict, to_dict
from kdlab.base.errors import KdlabError

FORMAT_VERSION = 2  # 1: the untyped dicts of kdlab 0.1 (curves rebuilt from the job's event buffer)
ROLES = ("teacher", "distilled", "scratch")
REASONS = ("completed", "stopped", "time limit")


class RecordError(KdlabError):
    """A stored run is not a valid record (missing or malformed fields, another format version)."""


@dataclass(frozen=True)
class Curve:
    """A student's training as it happened: window means at each step event, test accuracy at each evaluation."""

    step: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    soft: list[float] = field(default_factory=list)  # the unweighted soft term (T²·KL for hinton)
    hard: list[float] = field(default_factory=list)  # cross-entropy on the labels (0 without labels)
    train_accuracy: list[float | None] = field(default_factory=list)
    eval_step: list[int] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class ModelResult:
    """One model on the test split; students also carry their training."""

    role: str  # "teacher", "distilled" or "scratch"
    arch: str
    test_accuracy: float
    agreement: float  # with the teacher's predictions (1 for the teacher)
    params: int
    latency_s: float  # CPU seconds per example, batched
    confusion: list[list[int]]  # (C, C), rows the true class
    per_class_accuracy: list[float | None]  # None for a class absent from the test split
    seed: int = 0
    kl_to_teacher: float | None = None
    macs: int | None = None
    seconds: float | None = None  # wall time of its training
    steps: int | None = None  # optimizer steps taken
    reason: str = "completed"  # "completed", "stopped" or "time limit"
    history: list[dict[str, float]] = field(default_factory=list)  # one row per evaluation
    curve: Curve | None = None
    source: str | None = None  # the teacher: "trained", "cache" or "memory"
    key: str | None = None  # the teacher's cache key


@dataclass(frozen=True)
class Stats:
    mean: float
    std: float  # sample standard deviation over seeds (0 for one seed)
    per_seed: list[float]

    @classmethod
    def of(cls, values: list[float]) -> "Stats":
        return cls(statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0, list(values))


@dataclass(frozen=True)
class RunRecord:
    config: DistillConfig  # the first seed's; seed k is config.train.seed + k
    classes: list[str]
    teacher: ModelResult
    distilled: list[ModelResult]  # one per seed, in seed order
    scratch: list[ModelResult] = field(default_factory=list)  # the scratch twins (empty: none trained)
    label: str = ""
    created: float = 0.0
    reason: str = "completed"  # "stopped" when a Stop ended it: what finished is kept, marked as such
    stopped: str = ""  # which model a Stop ended, and where, in words
    warnings: list[str] = field(default_factory=list)
    planned_seeds: int = 1  # how many seeds the press asked for (a stopped run has fewer)
    owner: str = ""  # a hash of the browser session that made it: runs are private to it (a lecturer sees all)
    id: str = ""  # set by the run store once saved

    @property
    def seeds(self) -> list[int]:
        return [r.seed for r in self.distilled]

    @property
    def test_size(self) -> int:
        return sum(map(sum, self.teacher.confusion))

    def stats(self, role: str) -> Stats | None:
        """Test accuracy over the seeds of ``role`` ("distilled" or "scratch"), None if it has no model."""
        models = self.distilled if role == "distilled" else self.scratch
        return Stats.of([m.test_accuracy for m in models]) if models else None

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["config"] = to_dict(self.config)
        return {"format_version": FORMAT_VERSION, **jsonable(out)}

    @classmethod
    def from_json(cls, d: Any) -> "RunRecord":
        if not isinstance(d, dict) or d.get("format_version") != FORMAT_VERSION:
            version = d.get("format_version") if isinstance(d, dict) else None
            raise RecordError(f"not a run record of format {FORMAT_VERSION} (format {version!r})")
        try:
            return cls._build(d)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise RecordError(f"malformed run record ({type(exc).__name__}: {exc})") from None

    @classmethod
    def _build(cls, d: dict[str, Any]) -> "RunRecord":
        models = {role: [_model(m) for m in d[role]] for role in ("distilled", "scratch")}
        if not models["distilled"]:
            raise ValueError("a run record needs at least one distilled student")
        rec = cls(config=distill_from_dict(d["config"]), classes=[str(c) for c in d["classes"]],
                  teacher=_model(d["teacher"]), **models,
                  **{k: d[k] for k in ("label", "created", "reason", "stopped", "warnings", "planned_seeds", "owner", "id")
                     if k in d})
        if rec.reason not in REASONS or not isinstance(rec.id, str) or not isinstance(rec.label, str):
            raise ValueError("bad reason, id or label")
        if not _real(rec.created) or not 0 <= rec.created < 1e11:  # what a page can sort and format as a time
            raise ValueError(f"its creation time {rec.created!r} is not a time")
        return rec


def _model(d: dict[str, Any]) -> ModelResult:
    known = {f.name for f in fields(ModelResult)}
    d = {k: v for k, v in d.items() if k in known}
    curve = d.get("curve")
    model = ModelResult(**{**d, "curve": Curve(**curve) if curve else None})
    if model.role not in ROLES:
        raise ValueError(f"bad model result for role {model.role!r}")
    if not _real(model.test_accuracy) or not 0 <= model.test_accuracy <= 1:
        raise ValueError(f"the {model.role}'s test accuracy {model.test_accuracy!r} is not a number in [0, 1]")
    if not isinstance(model.history, list) or not isinstance(model.confusion, list):
        raise ValueError(f"the {model.role}'s history or confusion is not a list")
    if len(model.confusion) != len(model.per_class_accuracy):
        raise ValueError("confusion and per-class accuracy disagree on the number of classes")
    return model


def _real(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def jsonable(x: Any) -> Any:
    """Plain JSON: tuples become lists, NaN and infinities become None (strict JSON has no NaN)."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x
