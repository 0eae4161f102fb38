"""Getting a teacher: from memory, from the disk cache, or by training it once.

The order is memory LRU -> verified disk entry -> (under a cross-process lock) re-check -> train and store.
Holding the lock while training is what makes thirty sessions asking for one teacher train it once; the
others wait for it, and a waiter whose user clicks Stop (or closes the tab) stops waiting within
``teacher_cache.LOCK_POLL_SECONDS``. Architectures are canonicalised first (``mlp:0500`` is ``mlp:500``), so
two spellings of one teacher share its cache entry and its memory slot.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from kdlab.stores.teacher_cache import LockWaitStopped, MemoryLRU, TeacherStore, teacher_key
from kdlab.base.config import TeacherConfig, to_dict
from kdlab.data import Dataset
from kdlab.training.engine import Event, Split, train
from kdlab.base.errors import KdlabError
from kdlab.training.losses import plain_cross_entropy
from kdlab.training.metrics import accuracy, predict_logits
from kdlab.training.models import build_model, canonical_spec, count_params

log = logging.getLogger(__name__)
MEMORY = MemoryLRU(capacity=8)  # process-wide: every session of a Streamlit server shares these teachers


class RunStopped(KdlabError):
    """A run was stopped before it produced a result worth keeping."""


@dataclass
class Teacher:
    model: nn.Module  # eval mode, shared read-only between sessions
    config: TeacherConfig
    key: str
    train_logits: torch.Tensor  # (N_train, C) on the full training split
    test_logits: torch.Tensor  # (N_test, C)
    meta: dict[str, Any]  # test_accuracy, params, train_seconds, ...
    source: str = "trained"  # "trained", "cache" (disk) or "memory"
    warnings: list[str] = field(default_factory=list)

    @property
    def test_accuracy(self) -> float:
        return float(self.meta["test_accuracy"])


def get_teacher(cfg: TeacherConfig, data: Dataset, store: TeacherStore | None = None,
                on_event: Callable[[Event], None] | None = None,
                should_stop: Callable[[], bool] | None = None) -> Teacher:
    """The teacher of ``cfg``, trained at most once per cache. Raises RunStopped if ``should_stop()`` turns
    true while it trains or while it waits for another run that trains it."""
    cfg, store, key, memo_key = _identify(cfg, store)
    if (hit := _from_memory(store, key, memo_key)) is not None:
        return hit
    teacher, reported = _load(store, key, cfg, data)
    if teacher is None:
        try:
            with store.lock(key, should_stop):
                if (hit := _from_memory(store, key, memo_key)) is not None:  # another thread trained it while we
                    return hit  # waited: the only copy when the cache folder is not writable
                teacher, _ = _load(store, key, cfg, data, report=not reported)  # another process may have trained it
                if teacher is None:
                    teacher = _train_and_store(cfg, data, store, key, on_event, should_stop)
                MEMORY.put(memo_key, teacher)  # still under the lock, so the next waiter finds it
                return teacher
        except LockWaitStopped:
            raise RunStopped("stopped while waiting for another run to train the same teacher; nothing was "
                             "trained") from None
    MEMORY.put(memo_key, teacher)
    return teacher


def find_teacher(cfg: TeacherConfig, data: Dataset, store: TeacherStore | None = None) -> Teacher | None:
    """The teacher of ``cfg`` if it is in memory or in the disk cache, else None: never trains, never waits."""
    cfg, store, key, memo_key = _identify(cfg, store)
    if (hit := _from_memory(store, key, memo_key)) is not None:
        return hit
    teacher, _ = _load(store, key, cfg, data)
    if teacher is not None:
        MEMORY.put(memo_key, teacher)
    return teacher


def _identify(cfg: TeacherConfig, store: TeacherStore | None) -> tuple[TeacherConfig, TeacherStore, str, str]:
    """(cfg with its canonical architecture, store, cache key, memory key); ConfigError before any work."""
    cfg.validate()
    if (arch := canonical_spec(cfg.arch)) != cfg.arch:
        cfg = dataclasses.replace(cfg, arch=arch)
    store = store or TeacherStore()
    key = teacher_key(cfg)
    return cfg, store, key, memory_key(store, key)


def memory_key(store: TeacherStore, key: str) -> str:
    """The key of ``store``'s entry ``key`` in the process-wide MEMORY (a Ray worker puts its teachers there too)."""
    return f"{store.root}:{key}"  # tests and users may point stores at several folders in one process


def _from_memory(store: TeacherStore, key: str, memo_key: str) -> Teacher | None:
    if (hit := MEMORY.get(memo_key)) is None:
        return None
    store.touch(key)  # a teacher served from memory is in use: its disk entry is not least recently used
    return _as_source(hit, "memory")


def _as_source(t: Teacher, source: str) -> Teacher:
    return Teacher(t.model, t.config, t.key, t.train_logits, t.test_logits, t.meta, source, list(t.warnings))


def _load(store: TeacherStore, key: str, cfg: TeacherConfig, data: Dataset,
          report: bool = True) -> tuple[Teacher | None, bool]:
    """(the cached teacher or None, whether an unusable entry was reported). Reported once per request, not
    again on the re-check under the lock."""
    found = store.read(key)
    why = found.problem if found.state == "corrupt" else ""
    if found.entry is not None:
        try:
            return _from_entry(found.entry, cfg, data), False
        except (RuntimeError, ValueError) as exc:  # shapes do not fit this dataset or architecture
            why = f"{type(exc).__name__}: {exc}"
    if why and report:
        log.warning("teacher cache entry %s is unusable and will be rebuilt: %s", key, why)
    return None, bool(why)


def _from_entry(entry, cfg: TeacherConfig, data: Dataset) -> Teacher:
    model = build_model(cfg.arch, data.input_shape, data.num_classes)
    model.load_state_dict(entry.state_dict, strict=True)
    model.eval()
    expected = {"train": (len(data.x_train), data.num_classes), "test": (len(data.x_test), data.num_classes)}
    got = {"train": tuple(entry.train_logits.shape), "test": tuple(entry.test_logits.shape)}
    if got != expected:
        raise ValueError(f"cached logits have shapes {got}, the dataset needs {expected}")
    return Teacher(model, cfg, entry.key, entry.train_logits, entry.test_logits, entry.meta, "cache")


def _train_and_store(cfg: TeacherConfig, data: Dataset, store: TeacherStore, key: str,
                     on_event: Callable[[Event], None] | None, should_stop: Callable[[], bool] | None) -> Teacher:
    t0 = time.perf_counter()
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg.arch, data.input_shape, data.num_classes)
    last = None
    for last in train(model, Split(data.x_train, data.y_train), plain_cross_entropy(), cfg.train,
                      test=Split(data.x_test, data.y_test), should_stop=should_stop):
        if on_event is not None:
            on_event(last)
    if last is None or last.reason != "completed":
        raise RunStopped(f"teacher training {last.reason if last else 'stopped'}; nothing was cached")
    model.eval()
    train_logits, test_logits = predict_logits(model, data.x_train), predict_logits(model, data.x_test)
    meta = {"config": to_dict(cfg), "test_accuracy": accuracy(test_logits, data.y_test),
            "params": count_params(model), "train_seconds": time.perf_counter() - t0}
    teacher = Teacher(model, cfg, key, train_logits, test_logits, meta, "trained")
    try:
        store.write(key, model.state_dict(), train_logits, test_logits, meta)
    except OSError as exc:  # read-only folder, disk full: still a usable teacher, just not cached
        msg = f"could not write the teacher cache at {store.dir} ({exc}); continuing without caching"
        log.warning(msg)
        teacher.warnings.append(msg)
    return teacher
