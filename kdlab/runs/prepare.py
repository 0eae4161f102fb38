"""Ready before class: every teacher the lab's own set-ups use, trained once and cached on disk.

Which teachers: each module that names teachers registers a *source* in ``TEACHER_SOURCES`` that lists them
from its own tables, so a new preset, experiment or toy is prepared with no edit here:

* ``presets``: every preset's teacher (kdlab.runs.presets);
* ``app``: the app's starting set-up (the default preset) on every dataset of the lab's Dataset menu, which
  is what the Distill, Temperature and Sweep pages train when a lecturer switches the dataset;
* ``playground``: the Playground's default run on every toy (kdlab.runs.playground);
* ``experiments``: every experiment's teacher on every dataset it has settings for (registered by
  kdlab.experiments, a layer above this one: import it to include them, as ``kdlab prepare`` does).

``teachers_to_prepare`` is the pure decision (the list, deduplicated by cache key, each with the reasons it
is needed); ``prepare_teachers`` does the work (load each dataset once, get each teacher: from the disk
cache, or trained and stored) and reports what is cached, a dataset that cannot be loaded included.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

from kdlab.base.config import TeacherConfig, TrainConfig
from kdlab.base.errors import ConfigError, DataUnavailableError, KdlabError
from kdlab.base.registry import Registry
from kdlab.data import Dataset, load_dataset
from kdlab.data.dataset import canonical_dataset_name
from kdlab.data.toys import TOYS
from kdlab.runs.lab import lab_setting
from kdlab.runs.playground import PlaygroundConfig
from kdlab.runs.presets import DEFAULT_PRESET, PRESETS, get_preset
from kdlab.runs.teacher import get_teacher
from kdlab.stores.atomic import folder_bytes
from kdlab.stores.teacher_cache import TeacherStore, teacher_key
from kdlab.training.engine import Event

log = logging.getLogger(__name__)
# Preparing is not interactive: a busy machine may take long, and the run's time bound is no part of the
# cache key, so a generous bound caches the very teacher the app would train under its own shorter one.
PREPARE_MAX_SECONDS = 4 * 3600.0

Source = Callable[[], Iterable[tuple[TeacherConfig, str]]]  # () -> (teacher config, why it is needed), ...
TEACHER_SOURCES: Registry[Source] = Registry("teacher source")


@dataclass(frozen=True)
class Wanted:
    """One teacher to have in the cache, and everything that uses it."""

    config: TeacherConfig
    key: str  # kdlab.stores.teacher_cache.teacher_key(config)
    why: tuple[str, ...]  # e.g. ("preset “Default”", "experiment small-transfer")

    @property
    def dataset(self) -> str:
        return self.config.dataset

    @property
    def budget(self) -> str:
        train = self.config.train
        return f"{train.steps} steps" if train.steps is not None else f"{train.epochs} ep"


@dataclass
class Prepared:
    """What became of one Wanted teacher."""

    wanted: Wanted
    status: str  # "cached" (it already was), "trained" (and stored now), "unavailable" (no data), "failed",
    #             or "missing" (only listed, not trained)
    seconds: float = 0.0  # loading or training it
    test_accuracy: float | None = None
    size_bytes: int = 0  # its folder in the cache
    message: str = ""  # why it is unavailable or failed; a warning (e.g. the cache folder is read-only)

    @property
    def ready(self) -> bool:
        return self.status in ("cached", "trained") and self.size_bytes > 0


# -- the sources ------------------------------------------------------------------------------------------

@TEACHER_SOURCES.register("presets")
def _preset_teachers() -> Iterable[tuple[TeacherConfig, str]]:
    for name in PRESETS.names():
        yield get_preset(name).config.teacher_config(), f"preset “{name}”"


@TEACHER_SOURCES.register("app")
def _app_teachers() -> Iterable[tuple[TeacherConfig, str]]:
    start = get_preset(DEFAULT_PRESET).config  # every session starts from it (kdlab.ui.state)
    for dataset in lab_setting("dataset").choices():
        yield start.replace(dataset=dataset).teacher_config(), "the app's default set-up"


@TEACHER_SOURCES.register("playground")
def _playground_teachers() -> Iterable[tuple[TeacherConfig, str]]:
    for toy in TOYS:
        yield PlaygroundConfig(dataset=toy).teacher_config(), "the Playground's default run"


# -- the decision ---------------------------------------------------------------------------------------

def teachers_to_prepare(datasets: Sequence[str] | None = None, sources: Sequence[str] | None = None) -> list[Wanted]:
    """The teachers of ``sources`` (default: every registered one) on ``datasets`` (default: all they name),
    one per cache key, in the order they are first named; ConfigError for an unknown dataset or source."""
    names = list(sources or TEACHER_SOURCES.names())
    check_sources(names)
    wanted_sets = None if datasets is None else {canonical_dataset_name(d) for d in datasets}
    found: dict[str, tuple[TeacherConfig, list[str]]] = {}
    for source in names:
        for cfg, why in TEACHER_SOURCES.get(source)():
            dataset = canonical_dataset_name(cfg.dataset)
            if wanted_sets is not None and dataset not in wanted_sets:
                continue
            cfg = dataclasses.replace(cfg, dataset=dataset)  # one spelling, one key
            entry = found.setdefault(teacher_key(cfg), (cfg, []))
            if why not in entry[1]:
                entry[1].append(why)
    return [Wanted(cfg, key, tuple(why)) for key, (cfg, why) in found.items()]


def by_dataset(wanted: Sequence[Wanted]) -> dict[str, list[Wanted]]:
    """Grouped by dataset, in order: each dataset is loaded once."""
    groups: dict[str, list[Wanted]] = {}
    for w in wanted:
        groups.setdefault(w.dataset, []).append(w)
    return groups


# -- the work -------------------------------------------------------------------------------------------

OnEvent = Callable[[int, Wanted, Event], None]  # (index in the list, the teacher, its engine event)
OnDone = Callable[[int, Prepared], None]


def prepare_teachers(wanted: Sequence[Wanted], *, store: TeacherStore | None = None, data_dir: str | None = None,
                     train: bool = True, on_event: OnEvent | None = None, on_done: OnDone | None = None,
                     should_stop: Callable[[], bool] | None = None) -> list[Prepared]:
    """Get every teacher of ``wanted`` into the cache, or with ``train=False`` only say which are there
    (status "cached" or "missing"; no data are loaded). A dataset that cannot be loaded marks its teachers
    "unavailable" and the others go on; so does a teacher whose training fails."""
    store = store or TeacherStore()
    index = {w.key: i for i, w in enumerate(wanted)}
    done: list[Prepared] = []
    for dataset, group in by_dataset(wanted).items():
        data, problem = _load(dataset, data_dir) if train else (None, "")
        for w in group:
            if not train:
                result = _listed(w, store)
            elif problem:
                result = Prepared(w, "unavailable", message=problem)
            else:
                result = _prepare_one(w, data, store, _indexed(on_event, index[w.key], w), should_stop)
            done.append(result)
            if on_done is not None:
                on_done(index[w.key], result)
    return sorted(done, key=lambda p: index[p.wanted.key])


def _load(dataset: str, data_dir: str | None) -> tuple[Dataset | None, str]:
    try:
        return load_dataset(dataset, data_dir), ""
    except DataUnavailableError as exc:
        log.info("%s is unavailable: %s", dataset, exc)  # the summary says so
        return None, str(exc)


def _listed(w: Wanted, store: TeacherStore) -> Prepared:
    state, entry, why = store.read(w.key)
    if state != "ok":
        return Prepared(w, "missing", message=why)
    return Prepared(w, "cached", test_accuracy=entry.meta["test_accuracy"], size_bytes=folder_bytes(store.dir / w.key))


def _prepare_one(w: Wanted, data: Dataset, store: TeacherStore, on_event: Callable[[Event], None] | None,
                 should_stop: Callable[[], bool] | None) -> Prepared:
    t0 = time.perf_counter()
    cfg = dataclasses.replace(w.config, train=_bounded(w.config.train))
    try:
        teacher = get_teacher(cfg, data, store, on_event, should_stop)  # memory -> disk -> train and store
    except KdlabError as exc:  # diverged, stopped: the others still get prepared
        return Prepared(w, "failed", time.perf_counter() - t0, message=str(exc))
    size = folder_bytes(store.dir / w.key)
    problems = teacher.warnings or ([] if size else [f"it is not on disk in {store.dir} (not writable?)"])
    return Prepared(w, "trained" if teacher.source == "trained" else "cached", time.perf_counter() - t0,
                    teacher.test_accuracy, size, "; ".join(problems))


def _bounded(train: TrainConfig) -> TrainConfig:
    return dataclasses.replace(train, max_seconds=max(train.max_seconds, PREPARE_MAX_SECONDS))


def _indexed(on_event: OnEvent | None, i: int, w: Wanted) -> Callable[[Event], None] | None:
    return None if on_event is None else (lambda event: on_event(i, w, event))


def summary(prepared: Sequence[Prepared], store: TeacherStore | None = None) -> dict[str, Any]:
    """JSON-ready: one row per teacher, the datasets that could not be loaded, and the disk it all takes."""
    store = store or TeacherStore()
    rows = [{"key": p.wanted.key, "dataset": p.wanted.dataset, "arch": p.wanted.config.arch,
             "budget": p.wanted.budget, "why": list(p.wanted.why), "status": p.status, "seconds": p.seconds,
             "test_accuracy": p.test_accuracy, "size_bytes": p.size_bytes, "message": p.message} for p in prepared]
    unavailable = {p.wanted.dataset: p.message for p in prepared if p.status == "unavailable"}
    entries = store.entries()
    return {"teachers": rows, "ready": sum(p.ready for p in prepared), "total": len(prepared),
            "prepared_bytes": sum(p.size_bytes for p in prepared), "unavailable": unavailable,
            "failed": [r["key"] for r in rows if r["status"] == "failed"],
            "cache": {"folder": str(store.dir), "entries": len(entries),
                      "size_bytes": sum(e["size_bytes"] for e in entries)}}


def check_sources(sources: Sequence[str]) -> None:
    """ConfigError naming the registered sources, for a front end's flag."""
    for s in sources:
        if s not in TEACHER_SOURCES:
            raise ConfigError(f"unknown teacher source {s!r}; choose one of: {', '.join(TEACHER_SOURCES.names())}")
