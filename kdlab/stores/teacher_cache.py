"""The teacher store: trained teachers on disk, as safetensors weights + safetensors logits + JSON metadata.

Layout: ``<root>/teachers/<key>/{weights.safetensors, logits.safetensors, meta.json}``, plus one hidden
``.<key>.lock`` file per key (never deleted: a lock file removed while another process waits on it would let
two processes hold "the" lock).

* Keys hash everything that determines a teacher (dataset, architecture in its canonical spelling, training
  settings, seed) and ``FORMAT_VERSION``; bumping the version orphans old entries instead of misreading them.
* Writes are atomic: an entry is assembled in a hidden temporary folder and renamed into place, so a
  process killed mid-write leaves no visible entry; ``sweep_temporary`` removes such leftovers.
* ``meta.json`` records each file's size and SHA-256; a mismatch, bad JSON, another format version, a file
  that is not a regular file, or logits that are not finite float32 make the entry "corrupt": reported, then
  rebuilt by the caller. Nothing is ever unpickled, and nothing but a regular file is ever read.
* ``lock(key)`` is exclusive across threads and processes, so that concurrent requests train a teacher once;
  its wait polls ``should_stop``. Readers hold a shared lock on the same file while they read.
* The store is bounded: after each write, least-recently-used entries (last read or written) are evicted down
  to ``max_bytes`` (env KDLAB_CACHE_MAX_MB); an entry some thread or process is reading or training holds its
  lock and is never evicted.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import math
import os
import stat
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from kdlab.base.config import TeacherConfig, to_dict
from kdlab.base.errors import KdlabError
from kdlab.stores import atomic
from kdlab.stores.atomic import file_kind, folder_bytes, read_regular, remove_tree, verified_bytes, write_folder
from kdlab.training.models import canonical_spec

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
FILES = ("weights.safetensors", "logits.safetensors")
META_FIELDS = {"files": dict, "config": dict, "test_accuracy": (int, float), "params": int,
               "train_seconds": (int, float)}  # what readers of an entry rely on
META_MAX_BYTES = 1 << 20  # a real meta.json is ~1 KB; a bigger one is not read
STALE_TMP_SECONDS = atomic.STALE_TMP_SECONDS  # a temporary folder this old belongs to a writer that died
LOCK_POLL_SECONDS = 0.1  # a waiter for another run's teacher notices Stop (or a closed tab) this quickly
TOUCH_SECONDS = 10.0  # use times for eviction are this coarse (per process): plenty to order entries by use
# Measured entry sizes (weights + logits of both splits): digits mlp:500 0.2 MiB, digits mlp:1200-1200 5.9 MiB,
# Fashion-MNIST mlp:500 4.2 MiB, mlp:1200-1200 11.8 MiB, mlp:2400-1700 25.5 MiB, cnn:medium 6.1 MiB. 1 GiB holds
# every built-in preset's and experiment's teachers (< 60 MiB) plus ~80 custom Fashion-MNIST 1200-1200 teachers:
# a class's worth, and a small share of any disk.
DEFAULT_CACHE_MAX_MB = 1024


def cache_root() -> Path:
    return Path(os.environ.get("KDLAB_CACHE_DIR") or Path.home() / ".cache" / "kdlab")


def cache_max_bytes() -> int:
    """KDLAB_CACHE_MAX_MB (MiB; 0 = no budget) in bytes, else DEFAULT_CACHE_MAX_MB."""
    return env_mib("KDLAB_CACHE_MAX_MB", DEFAULT_CACHE_MAX_MB)


def env_mib(name: str, default: float) -> int:
    raw = os.environ.get(name, "")
    try:
        mib = float(raw) if raw else default
    except ValueError:
        log.warning("%s=%r is not a number of MB; using %g", name, raw, default)
        mib = default
    return int(mib * 2**20) if math.isfinite(mib) and mib > 0 else 0


def teacher_key(cfg: TeacherConfig) -> str:
    """16 hex digits of SHA-256 over the canonical config; where and how long it ran do not count, nor how the
    architecture is spelled (ConfigError for a malformed one)."""
    train = to_dict(cfg.train)
    for irrelevant in ("device", "max_seconds"):
        train.pop(irrelevant)
    if train["steps"] is None:  # an epoch budget: keys made before step budgets existed stay valid
        del train["steps"]
    ident = {"format": FORMAT_VERSION, "dataset": cfg.dataset, "arch": canonical_spec(cfg.arch), "train": train}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class Entry:
    """A verified entry, read into memory."""

    key: str
    state_dict: dict[str, torch.Tensor]
    train_logits: torch.Tensor  # (N_train, C) float32, finite
    test_logits: torch.Tensor  # (N_test, C) float32, finite
    meta: dict[str, Any]


class Lookup(NamedTuple):
    """What ``read`` found. ``state``: "ok" (``entry`` set), "missing", "corrupt" (``problem`` says why: the
    caller rebuilds it) or "busy" (another run holds it exclusively: it is being trained or evicted)."""

    state: str
    entry: Entry | None = None
    problem: str = ""


@dataclass
class Cleared:
    """What ``clear_report`` did: the entries it removed, and the ones it could not remove with the reason."""

    removed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


class LockWaitStopped(KdlabError):
    """``should_stop`` turned true while waiting for another run's lock on a teacher."""


_THREAD_LOCKS: dict[str, threading.Lock] = {}  # lock path -> lock; shared by every TeacherStore of the process
_THREAD_LOCKS_GUARD = threading.Lock()
_TOUCHED: dict[str, float] = {}  # entry folder -> when this process last recorded a use of it
_TOUCHED_GUARD = threading.Lock()
_HELD = threading.local()  # .paths: the lock files this thread holds exclusively (its reads need no shared lock)
READ_ERRORS = (OSError, ValueError, KeyError, TypeError, RuntimeError, SafetensorError)


class TeacherStore:
    def __init__(self, root: Path | str | None = None, max_bytes: int | None = None):
        self.root = Path(root) if root is not None else cache_root()
        self.dir = self.root / "teachers"
        self.max_bytes = cache_max_bytes() if max_bytes is None else max(0, int(max_bytes))  # 0: no budget

    # -- reading ---------------------------------------------------------------------------------------
    def read(self, key: str) -> Lookup:
        """The entry ``key`` if it is there and verifies; reading it counts as a use (for eviction)."""
        found = self._lookup(key)
        if found.state == "ok":
            self.touch(key)
        return found

    def _lookup(self, key: str) -> Lookup:
        """``read`` without counting a use: listing the cache must not reorder what eviction removes first."""
        folder = self.dir / key
        try:
            info = os.lstat(folder)
        except (FileNotFoundError, NotADirectoryError):  # no entry, or no cache folder at all
            return Lookup("missing")
        except OSError as exc:
            return Lookup("corrupt", problem=f"{type(exc).__name__}: {exc}")
        if stat.S_ISLNK(info.st_mode):
            return Lookup("corrupt", problem="the entry is a symbolic link; links are not followed")
        if not stat.S_ISDIR(info.st_mode):
            return Lookup("missing")  # a stray file is no entry
        with self.reading(key) as free:
            if not free:
                return Lookup("busy", problem="another run is training or removing this teacher")
            try:
                entry = self._read_verified(folder, key)
            except READ_ERRORS as exc:
                return Lookup("corrupt", problem=f"{type(exc).__name__}: {exc}")
        return Lookup("ok", entry)

    def _read_verified(self, folder: Path, key: str) -> Entry:
        meta = json.loads(read_regular(folder / "meta.json", META_MAX_BYTES))
        if not isinstance(meta, dict) or meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"format version {meta.get('format_version') if isinstance(meta, dict) else '?'}"
                             f" is not {FORMAT_VERSION}")
        for name, kind in META_FIELDS.items():  # meta.json vouches for the rest but has no checksum itself
            if not isinstance(meta.get(name), kind) or isinstance(meta.get(name), bool):
                raise ValueError(f"meta.json field {name!r} is missing or malformed")
        blobs = {name: verified_bytes(folder / name, meta["files"][name]) for name in FILES}
        logits, weights = st_load(blobs["logits.safetensors"]), st_load(blobs["weights.safetensors"])
        _check_logits(logits)
        for name in sorted(weights):  # sorted: the same reason on every read
            tensor = weights[name]
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                raise ValueError(f"weights.safetensors: {name!r} holds NaN or infinite values")
        return Entry(key, weights, logits["train"], logits["test"], meta)

    def touch(self, key: str) -> None:
        """Record a use of ``key`` (its folder's mtime): eviction removes the least recently used first. At most
        once a TOUCH_SECONDS per key and process: a memory hit costs no metadata write on every page view."""
        folder, now = str(self.dir / key), time.monotonic()
        with _TOUCHED_GUARD:
            if now - _TOUCHED.get(folder, -math.inf) < TOUCH_SECONDS:
                return
            _TOUCHED[folder] = now
        try:
            os.utime(folder, follow_symlinks=False)
        except OSError:  # gone, or a read-only cache (which is never evicted either)
            pass

    # -- writing ---------------------------------------------------------------------------------------
    def write(self, key: str, state_dict: dict[str, torch.Tensor], train_logits: torch.Tensor,
              test_logits: torch.Tensor, meta: dict[str, Any]) -> Path:
        """Atomically (re)place the entry ``key``, then sweep dead writers' leftovers and evict down to the
        budget (``key`` stays). Raises OSError when the folder is not writable."""
        blobs = {
            "weights.safetensors": st_save({k: v.detach().cpu().contiguous() for k, v in state_dict.items()}),
            "logits.safetensors": st_save({"train": train_logits.contiguous(), "test": test_logits.contiguous()}),
        }
        meta = {**meta, "format_version": FORMAT_VERSION, "key": key, "created": time.time()}
        folder = write_folder(self.dir, key, blobs, "meta.json", meta, replace=True)
        self.sweep_temporary()
        self.evict(keep=(key,))
        return folder

    # -- locking ---------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, key: str, should_stop: Callable[[], bool] | None = None) -> Iterator[None]:
        """Exclusive across threads and processes. Without a writable folder, across threads only. While it
        waits, ``should_stop()`` is asked every LOCK_POLL_SECONDS; once true, raises LockWaitStopped."""
        path = self._lock_path(key)
        with _THREAD_LOCKS_GUARD:
            thread_lock = _THREAD_LOCKS.setdefault(str(path), threading.Lock())
        while not thread_lock.acquire(timeout=LOCK_POLL_SECONDS):
            _check_stop(should_stop)
        try:
            try:
                self.dir.mkdir(parents=True, exist_ok=True)
                fd = _open_lock_file(path)
            except OSError as exc:
                log.warning("teacher cache %s is not writable (%s); locking within this process only", self.dir, exc)
                yield
                return
            try:
                while not _try_flock(fd, fcntl.LOCK_EX):  # released when fd closes, also if the process dies
                    _check_stop(should_stop)
                    time.sleep(LOCK_POLL_SECONDS)
                held = _held_paths()
                held.add(str(path))
                try:
                    yield
                finally:
                    held.discard(str(path))
            finally:
                os.close(fd)
        finally:
            thread_lock.release()

    @contextlib.contextmanager
    def reading(self, key: str) -> Iterator[bool]:
        """A shared lock on ``key`` while its files are read: yields False (at once, no waiting) if a writer
        or an eviction holds it exclusively. Without a usable lock file, reads go ahead unlocked."""
        path = self._lock_path(key)
        if str(path) in _held_paths():  # this thread holds it exclusively: reading is safe
            yield True
            return
        try:
            fd = _open_lock_file(path)
        except OSError:
            yield True
            return
        try:
            yield _try_flock(fd, fcntl.LOCK_SH)
        finally:
            os.close(fd)

    def _lock_path(self, key: str) -> Path:
        return self.dir / f".{key}.lock"

    # -- management ------------------------------------------------------------------------------------
    def entries(self) -> list[dict[str, Any]]:
        """One summary per visible entry (temporary folders are invisible; a planted symlink shows as corrupt)."""
        rows = []
        for name, mode in self._visible():
            found = self._lookup(name)
            meta = found.entry.meta if found.entry else {}
            rows.append({"key": name, "state": found.state, "problem": found.problem,
                         "dataset": meta.get("config", {}).get("dataset"), "arch": meta.get("config", {}).get("arch"),
                         "test_accuracy": meta.get("test_accuracy"),
                         "size_bytes": folder_bytes(self.dir / name) if stat.S_ISDIR(mode) else 0})
        return rows

    def total_bytes(self) -> int:
        return sum(folder_bytes(self.dir / name) for name, mode in self._visible() if stat.S_ISDIR(mode))

    def evict(self, max_bytes: int | None = None, keep: tuple[str, ...] = ()) -> list[str]:
        """Remove least-recently-used entries until the store holds at most ``max_bytes`` (default: the
        store's budget; 0 = none). Entries in use (locked by any thread or process) and ``keep`` stay."""
        budget = self.max_bytes if max_bytes is None else max_bytes
        if not budget:
            return []
        rows = []  # (last use, key, bytes)
        for name, mode in self._visible():
            if stat.S_ISDIR(mode):
                with contextlib.suppress(OSError):
                    rows.append((os.lstat(self.dir / name).st_mtime, name, folder_bytes(self.dir / name)))
        total, evicted = sum(size for *_, size in rows), []
        for _, name, size in sorted(rows):
            if total <= budget:
                break
            if name not in keep and not self._remove_unused(name):
                evicted.append(name)
                total -= size
        if evicted:
            log.info("teacher cache: evicted %d least recently used entries (%s) to stay within %.0f MB",
                     len(evicted), ", ".join(evicted), budget / 2**20)
        return evicted

    def remove(self, key: str) -> None:
        remove_tree(self.dir / key)

    def clear(self) -> int:
        """Deletes every entry not in use and stale temporary folders; returns how many entries really went.
        What could not be removed is logged (``clear_report`` returns it)."""
        report = self.clear_report()
        for name, why in report.failed.items():
            log.warning("teacher cache: could not remove %s: %s", name, why)
        return len(report.removed)

    def clear_report(self) -> Cleared:
        report = Cleared()
        self.sweep_temporary()  # not counted: they were never entries
        for name, mode in self._visible():
            if stat.S_ISLNK(mode):
                report.failed[name] = "a symbolic link: not followed, left in place (remove it by hand)"
            elif (why := self._remove_unused(name)):
                report.failed[name] = why
            else:
                report.removed.append(name)
        return report

    def sweep_temporary(self, older_than: float | None = None) -> list[str]:
        """Remove temporary folders of writers that died (older than STALE_TMP_SECONDS); returns their names."""
        swept = atomic.sweep_temporary(self.dir, STALE_TMP_SECONDS if older_than is None else older_than)
        if swept:
            log.info("teacher cache: removed %d stale temporary folders", len(swept))
        return swept

    def _visible(self) -> list[tuple[str, int]]:
        """(name, lstat mode) of each entry-like item: folders and symlinks not starting with '.'."""
        out = []
        try:
            with os.scandir(self.dir) as it:
                for item in it:
                    if item.name.startswith("."):
                        continue
                    with contextlib.suppress(OSError):
                        mode = item.stat(follow_symlinks=False).st_mode
                        if stat.S_ISDIR(mode) or stat.S_ISLNK(mode):
                            out.append((item.name, mode))
        except OSError:  # no folder yet, or unreadable
            pass
        return sorted(out)

    def _remove_unused(self, key: str) -> str:
        """Delete entry ``key`` unless a thread or process holds its lock; "" if it went, else why not."""
        path = self._lock_path(key)
        if str(path) in _held_paths():
            return "in use by this run"
        try:
            fd = _open_lock_file(path)
        except FileNotFoundError:  # none, and we may not create one: then nobody can hold it either
            return remove_tree(self.dir / key)
        except OSError as exc:
            return f"its lock file cannot be opened ({exc}), so it may be in use"
        try:
            if not _try_flock(fd, fcntl.LOCK_EX):
                return "in use (another run is reading or training it); try again when it is done"
            return remove_tree(self.dir / key)
        finally:
            os.close(fd)


def _check_logits(logits: dict[str, torch.Tensor]) -> None:
    """Both splits 2-D float32, every value finite (whether the shapes fit a dataset is the caller's check): NaN logits would otherwise surface much
    later as a diverging student ("lower the learning rate")."""
    for split in ("train", "test"):
        t = logits[split]
        if t.dtype != torch.float32 or t.ndim != 2:
            raise ValueError(f"logits.safetensors: {split!r} is {str(t.dtype).removeprefix('torch.')} of shape "
                             f"{tuple(t.shape)}, expected a 2-D float32 tensor")
        if not bool(torch.isfinite(t).all()):
            nan, inf = int(torch.isnan(t).sum()), int(torch.isinf(t).sum())
            raise ValueError(f"logits.safetensors: {split!r} holds {nan} NaN and {inf} infinite values (a teacher "
                             f"that diverged, or a damaged file)")


def _open_lock_file(path: Path) -> int:
    """A descriptor on the lock file, created if need be. Never follows a symlink and never blocks on a FIFO;
    OSError if it is not a regular file."""
    flags = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | flags, 0o644)
    except OSError as exc:
        if exc.errno not in (errno.EACCES, errno.EROFS, errno.EPERM):
            raise
        fd = os.open(path, os.O_RDONLY | flags)  # a read-only cache: flock needs no write access
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        kind = file_kind(os.fstat(fd).st_mode)
        os.close(fd)
        raise OSError(errno.EINVAL, f"{path.name} is {kind}, not a lock file")
    return fd


def _try_flock(fd: int, kind: int) -> bool:
    try:
        fcntl.flock(fd, kind | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _check_stop(should_stop: Callable[[], bool] | None) -> None:
    if should_stop is not None and should_stop():
        raise LockWaitStopped("stopped while waiting for another run to finish with this teacher")


def _held_paths() -> set[str]:
    if not hasattr(_HELD, "paths"):
        _HELD.paths = set()
    return _HELD.paths


class MemoryLRU:
    """Recently used teachers kept in memory, shared by every session of a process."""

    def __init__(self, capacity: int = 8):
        self.capacity = capacity
        self._items: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Any | None:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            return None

    def put(self, key: str, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
