"""What every experiment shares: the settings base class, the registry, ``run_experiment`` (plan, execute
through ``run_distill``, report) and the helpers the reports use. The experiments themselves are the sibling
modules, one each; importing ``kdlab.experiments`` registers them all."""
from __future__ import annotations

import dataclasses
import logging
import math
import os
import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Iterator

import torch

from kdlab.base.record import jsonable
from kdlab.base.config import DistillConfig, TeacherConfig, TrainConfig, to_dict
from kdlab.data import Dataset, load_dataset
from kdlab.runs.batch import Executor, Fractions, Run, run_all
from kdlab.runs.distill import ProgressFn, RunResult, StudentReport, check_data, validate
from kdlab.training.engine import Event
from kdlab.base.errors import ConfigError, DataUnavailableError
from kdlab.training.metrics import evaluate, with_bias
from kdlab.base.registry import Registry
from kdlab.runs.prepare import TEACHER_SOURCES
from kdlab.runs.teacher import RunStopped

log = logging.getLogger(__name__)
MAX_SEEDS = 20
PROGRESS_UNITS = 1000  # progress of one student run, in units of the "experiment" progress bar
PAPER = "Hinton, Vinyals & Dean (2015), Distilling the Knowledge in a Neural Network, arXiv:1503.02531"

# ---------------------------------------------------------------------------------------------------------
# Settings: one frozen dataclass per experiment, one instance per dataset (tables in each experiment's module)


@dataclass(frozen=True, kw_only=True)
class Settings:
    """What every experiment needs. ``steps``, when set, fixes the optimizer steps of every student run, so a
    300-image transfer set is trained as long as a 3 000-image one (epochs then follow from the set's size)."""

    teacher: str = "mlp:1200-1200"
    teacher_epochs: int = 3
    student: str = "mlp:100"
    loss: str = "hinton"
    temperature: float = 4.0
    alpha: float = 0.9
    epochs: int = 5  # student epochs when steps is None
    steps: int | None = None
    lr: float = 1e-3
    batch_size: int = 128
    transfer_size: int | None = None  # None: the whole training split
    max_seconds: float = 600.0  # per student run

    def teacher_train(self) -> TrainConfig:
        # max_seconds is no part of the cache key: a generous bound lets a busy machine finish the teacher
        return TrainConfig(epochs=self.teacher_epochs, max_seconds=3600.0)

    def student_epochs(self, n_examples: int) -> int:
        if self.steps is None:
            return self.epochs
        return max(1, math.ceil(self.steps / math.ceil(n_examples / self.batch_size)))

    def config(self, data: Dataset, seed: int, **changes: Any) -> DistillConfig:
        """The distilled student's config for one seed; ``changes`` override any DistillConfig field."""
        cfg = DistillConfig(dataset=data.name, teacher=self.teacher, student=self.student, loss=self.loss,
                            temperature=float(self.temperature), alpha=self.alpha, transfer_size=self.transfer_size,
                            teacher_train=self.teacher_train()).replace(**changes)
        n = transfer_count(data, cfg)
        train = TrainConfig(epochs=self.student_epochs(n), lr=self.lr, batch_size=self.batch_size, seed=seed,
                            max_seconds=self.max_seconds)
        return cfg.replace(train=train)


def transfer_count(data: Dataset, cfg: DistillConfig) -> int:
    if cfg.transfer_size is not None:
        return cfg.transfer_size
    omitted = torch.isin(data.y_train, torch.tensor(list(cfg.omit_classes), dtype=torch.int64))
    return int((~omitted).sum())


# ---------------------------------------------------------------------------------------------------------
# The registry

Plan = Callable[[Any, Dataset, list[int]], list[Run]]
Report = Callable[[Any, Dataset, list[int], dict[Hashable, RunResult]], dict[str, Any]]


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    about: str  # a short explanation for the CLI help and the app
    settings: dict[str, Settings]  # dataset name -> settings
    plan: Plan
    report: Report
    paper: dict[str, Any]  # the paper's reference numbers, labelled as such
    fallback: dict[str, str] = dataclasses.field(default_factory=dict)  # unavailable dataset -> substitute

    def settings_for(self, dataset: str, **overrides: Any) -> Settings:
        if dataset not in self.settings:
            raise ConfigError(f"experiment {self.name!r} has settings for {', '.join(self.settings)}; "
                              f"not for {dataset!r}")
        return override(self.settings[dataset], overrides)


EXPERIMENTS: Registry[Experiment] = Registry("experiment")


def experiment_names() -> list[str]:
    return EXPERIMENTS.names()


def override(s: Settings, overrides: dict[str, Any]) -> Settings:
    """``s`` with some fields replaced; an unknown field is a ConfigError listing the valid ones."""
    fields = {f.name: f for f in dataclasses.fields(s)}
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        raise ConfigError(f"unknown setting(s) {', '.join(unknown)} for {type(s).__name__}; "
                          f"valid: {', '.join(fields)}")
    fixed = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
    return dataclasses.replace(s, **fixed)


# ---------------------------------------------------------------------------------------------------------
# Running one experiment

def check_request(name: str, dataset: str, seeds: int, **overrides: Any) -> Experiment:
    """The experiment ``name``, or ConfigError for a bad name, number of seeds, dataset or setting: what
    ``run_experiment`` refuses before it loads anything (a caller may ask before it starts a cluster)."""
    exp = EXPERIMENTS.get(name)
    if isinstance(seeds, bool) or not isinstance(seeds, int) or not 1 <= seeds <= MAX_SEEDS:
        raise ConfigError(f"seeds must be a whole number in [1, {MAX_SEEDS}], got {seeds!r}")
    exp.settings_for(dataset, **overrides)
    return exp


def run_experiment(name: str, dataset: str = "digits", seeds: int = 3, data_dir: str | None = None,
                   on_progress: ProgressFn | None = None, should_stop: Callable[[], bool] | None = None,
                   *, data: Dataset | None = None, executor: Executor = run_all, **overrides: Any) -> dict[str, Any]:
    """Run experiment ``name`` on ``dataset`` with seeds 0..seeds-1 and return its JSON-ready report.

    ``overrides`` replace fields of the experiment's per-dataset settings (e.g. ``epochs=2`` in a test).
    Progress goes to ``on_progress(role, event)``: role "teacher" while a teacher trains, and "experiment"
    for the whole plan (``event.step / event.total_steps``; ``metrics["run"]`` of ``metrics["runs"]``).
    ``executor`` trains the plan's runs (default: here; kdlab.serve.ray_backend has one for a Ray cluster).
    Raises ConfigError before any work for a bad name, dataset or setting, RunStopped when stopped."""
    exp = check_request(name, dataset, seeds, **overrides)
    t0 = time.perf_counter()
    data, note = _load(exp, dataset, data_dir, data)
    s = exp.settings_for(data.name, **overrides)
    seed_list = list(range(seeds))
    plan = exp.plan(s, data, seed_list)
    for run in plan:  # every config is checked before the first run trains
        validate(run.config)
        check_data(run.config, data)
    runs = _execute(plan, data, _Progress(plan, on_progress), should_stop, executor)
    out = {"experiment": name, "title": exp.title, "dataset": data.name, "requested_dataset": dataset,
           "seeds": seed_list, "settings": jsonable(dataclasses.asdict(s)), "teacher": _teacher_summary(runs, data)}
    out |= exp.report(s, data, seed_list, runs)
    out["paper"] = exp.paper
    out["notes"] = ([note] if note else []) + _incomplete(runs)
    out["seconds"] = time.perf_counter() - t0
    out["machine"] = {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__}
    return jsonable(out)


def _load(exp: Experiment, dataset: str, data_dir: str | None, data: Dataset | None) -> tuple[Dataset, str]:
    if data is not None and data.name == dataset:
        return data, ""
    try:
        return load_dataset(dataset, data_dir), ""
    except DataUnavailableError as exc:
        if dataset not in exp.fallback:
            raise
        sub = exp.fallback[dataset]
        log.warning("%s is unavailable; running %s on %s instead", dataset, exp.name, sub)
        note = f"{dataset} is not available on this machine ({exc}); this run used {sub} instead."
        return load_dataset(sub, data_dir), note


class _Progress:
    """Turns each run's engine events into one "experiment" progress stream (teacher events pass through).

    The stream's step is the sum of every student training's own fraction done (kdlab.runs.batch.Fractions),
    which stays right when an executor trains several runs at once."""

    def __init__(self, plan: list[Run], on_progress: ProgressFn | None):
        self.total = sum(1 + r.scratch for r in plan)  # student trainings
        self.done = Fractions()
        self.on_progress = on_progress

    def __call__(self, key: Hashable, role: str, event: Event) -> None:
        if role in ("distilled", "scratch"):
            units = min(self.total * PROGRESS_UNITS, round(self.done.update(key, role, event) * PROGRESS_UNITS))
            run = min(self.done.finished + 1, self.total)  # the first not yet finished (others may train too)
            event = Event("epoch" if event.kind == "epoch" else "step", event.epoch, units,
                          self.total * PROGRESS_UNITS, {**event.metrics, "run": run, "runs": self.total})
            role = "experiment"
        if self.on_progress is not None:
            self.on_progress(role, event)


def _execute(plan: list[Run], data: Dataset, progress: _Progress, should_stop: Callable[[], bool] | None,
             executor: Executor = run_all) -> dict[Hashable, RunResult]:
    results = executor(plan, data, on_progress=progress, should_stop=should_stop)
    if len(results) < len(plan):
        raise RunStopped(f"experiment stopped after {len(results)} of {len(plan)} runs")
    return results


def _incomplete(runs: dict[Hashable, RunResult]) -> list[str]:
    bad = [f"{key}: {rep.role} {rep.reason}" for key, r in runs.items()
           for rep in (r.distilled, r.scratch) if rep is not None and rep.reason != "completed"]
    return [f"{len(bad)} student run(s) did not complete (time limit): " + "; ".join(bad)] if bad else []


def _teacher_summary(runs: dict[Hashable, RunResult], data: Dataset) -> dict[str, Any]:
    first = next(iter(runs.values()))
    t = first.teacher
    return {"arch": t.config.arch, "epochs": t.config.train.epochs, "test_accuracy": t.test_accuracy,
            "test_errors": count_errors(t.test_logits, data.y_test), "source": t.source, "key": t.key,
            "params": t.meta["params"], "train_seconds": t.meta["train_seconds"]}


# ---------------------------------------------------------------------------------------------------------
# Helpers shared by the reports

def stats(values: list[float]) -> dict[str, Any]:
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "per_seed": list(values)}


def arm(reports: list[StudentReport], config: DistillConfig | TeacherConfig, **extra: Any) -> dict[str, Any]:
    """One arm of an experiment: accuracy over seeds, the seed-0 config, the summed training seconds."""
    return {**stats([r.test_accuracy for r in reports]), "config": to_dict(config),
            "seconds": sum(r.seconds for r in reports), "errors_per_seed": [report_errors(r) for r in reports],
            **extra}


def stats_only(a: dict[str, Any]) -> dict[str, Any]:
    return {k: a[k] for k in ("mean", "std", "per_seed")}


def mean_lists(lists: list[list[float]]) -> list[float]:
    return [statistics.fmean(col) for col in zip(*lists)]


def bias_curve(logits: torch.Tensor, y: torch.Tensor, cls: int, biases: list[float]) -> list[dict[str, Any]]:
    """Accuracy on class ``cls`` and overall as a bias is added to its logit: no retraining, just argmaxes of
    one student's stored test logits (N_test, C), so a slider over it is instant."""
    points = []
    for b in biases:
        ev = evaluate(with_bias(logits, ((cls, b),)), y, logits.shape[1])
        errors = len(y) - sum(ev.confusion[i][i] for i in range(len(ev.confusion)))
        points.append({"bias": b, "class_accuracy": ev.per_class_accuracy[cls], "overall_accuracy": ev.accuracy,
                       "errors": errors, "class_errors": sum(ev.confusion[cls]) - ev.confusion[cls][cls],
                       "per_class_accuracy": ev.per_class_accuracy})
    return points


def count_errors(logits: torch.Tensor, y: torch.Tensor) -> int:
    return int((logits.argmax(1) != y).sum())


def report_errors(r: StudentReport) -> int:
    return sum(map(sum, r.confusion)) - sum(r.confusion[i][i] for i in range(len(r.confusion)))


def register(name: str, title: str, settings: dict[str, Settings], plan: Plan, report: Report,
             paper: dict[str, Any], fallback: dict[str, str] | None = None) -> None:
    """The report's docstring is the experiment's explanation (shown by the app)."""
    about = " ".join((report.__doc__ or "").split())
    EXPERIMENTS.register(name)(Experiment(name, title, about, settings, plan, report, paper, fallback or {}))


# ---------------------------------------------------------------------------------------------------------
# The teachers the experiments share. Each experiment module holds its per-dataset settings; mnist shares
# fashion-mnist's (same shapes and sizes). Measured in docs/RESULTS.md.
#
# Fashion-MNIST teacher: mlp:1200-1200 stopped after 3 epochs (88.9 % test). Trained 20 epochs it reaches
# 90.3 % but is 99 % right on its own training images with a mean top probability of 0.98, so its soft
# targets on those images (the transfer set) carry little beyond the label: N=300 gained only +1 pp and the
# omitted class reached 49 % instead of 88 %. The early-stopped teacher is less sure where it is wrong.
# digits teacher: mlp:500 for 20 epochs (96.9 %; mean top probability 0.94 on its training images), the
# same key as the app's default, so the cache serves both.

FASHION_TEACHER = dict(teacher="mlp:1200-1200", teacher_epochs=3)
DIGITS_TEACHER = dict(teacher="mlp:500", teacher_epochs=20)


# ---------------------------------------------------------------------------------------------------------
# Ready before class (kdlab.runs.prepare): the teachers of every experiment on every dataset it has settings
# for, built as ``Settings.config`` builds them, so ``kdlab prepare`` caches the very ones the runs ask for.

@TEACHER_SOURCES.register("experiments")
def _experiment_teachers() -> Iterator[tuple[TeacherConfig, str]]:
    for name in EXPERIMENTS.names():
        for dataset, s in EXPERIMENTS.get(name).settings.items():
            cfg = DistillConfig(dataset=dataset, teacher=s.teacher, teacher_train=s.teacher_train())
            yield cfg.teacher_config(), f"experiment {name}"
