"""The teacher store: trained teachers on disk, as safetensors weights + safetensors logits + JSON metadata.

Layout: ``<root>/teachers/<key>/{weights.safetensors, logits.safetensors, meta.json}``.

* Keys hash everything that determines a teacher (dataset, architecture, training settings, seed) and
  ``FORMAT_VERSION``; bumping the version orphans old entries instead of misreading them.
* Writes are atomic: an entry is assembled in a hidden temporary folder and renamed into place, so a
  process killed mid-write leaves no visible entry.
* ``meta.json`` records each file's size and SHA-256; a mismatch, bad JSON or another format version makes
  the entry "corrupt": reported, then rebuilt by the caller. Nothing is ever unpickled.
* ``lock(key)`` is a cross-process file lock so that concurrent requests train a teacher once.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from kdlab.stores.atomic import verified_bytes, write_folder
from kdlab.base.config import TeacherConfig, to_dict

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
FILES = ("weights.safetensors", "logits.safetensors")
META_FIELDS = {"files": dict, "config": dict, "test_accuracy": (int, float), "params": int,
               "train_seconds": (int, float)}  # what readers of an entry rely on
STALE_TMP_SECONDS = 3600  # a temporary folder this old belongs to a writer that died


def cache_root() -> Path:
    return Path(os.environ.get("KDLAB_CACHE_DIR") or Path.home() / ".cache" / "kdlab")


def teacher_key(cfg: TeacherConfig) -> str:
    """16 hex digits of SHA-256 over the canonical config; where and how long it ran do not count."""
    train = to_dict(cfg.train)
    for irrelevant in ("device", "max_seconds"):
        train.pop(irrelevant)
    if train["steps"] is None:  # an epoch budget: keys made before step budgets existed stay valid
        del train["steps"]
    ident = {"format": FORMAT_VERSION, "dataset": cfg.dataset, "arch": cfg.arch, "train": train}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class Entry:
    """A verified entry, read into memory."""

    key: str
    state_dict: dict[str, torch.Tensor]
    train_logits: torch.Tensor  # (N_train, C)
    test_logits: torch.Tensor  # (N_test, C)
    meta: dict[str, Any]


_THREAD_LOCKS: dict[str, threading.Lock] = {}  # entry path -> lock; flock alone is per open file, not per thread
_THREAD_LOCKS_GUARD = threading.Lock()


def decide(state: str) -> str:
    """What to do with an entry in ``state`` ("ok", "missing", "corrupt"): load, train or rebuild."""
    return {"ok": "load", "missing": "train", "corrupt": "rebuild"}[state]


class TeacherStore:
    def __init__(self, root: Path | str | None = None):
        self.root = Path(root) if root is not None else cache_root()
        self.dir = self.root / "teachers"

    # -- reading ---------------------------------------------------------------------------------------
    def read(self, key: str) -> tuple[str, Entry | None, str]:
        """(state, entry, why): state "ok" with the entry, "missing", or "corrupt" with the reason."""
        folder = self.dir / key
        if not folder.is_dir():
            return "missing", None, ""
        try:
            return "ok", self._read_verified(folder, key), ""
        except (OSError, ValueError, KeyError, TypeError, RuntimeError, SafetensorError) as exc:
            return "corrupt", None, f"{type(exc).__name__}: {exc}"

    def _read_verified(self, folder: Path, key: str) -> Entry:
        meta = json.loads((folder / "meta.json").read_text())
        if not isinstance(meta, dict) or meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"format version {meta.get('format_version') if isinstance(meta, dict) else '?'}"
                             f" is not {FORMAT_VERSION}")
        for name, kind in META_FIELDS.items():  # meta.json vouches for the rest but has no checksum itself
            if not isinstance(meta.get(name), kind) or isinstance(meta.get(name), bool):
                raise ValueError(f"meta.json field {name!r} is missing or malformed")
        blobs = {name: verified_bytes(folder / name, meta["files"][name]) for name in FILES}
        logits = st_load(blobs["logits.safetensors"])
        return Entry(key, st_load(blobs["weights.safetensors"]), logits["train"], logits["test"], meta)

    # -- writing ---------------------------------------------------------------------------------------
    def write(self, key: str, state_dict: dict[str, torch.Tensor], train_logits: torch.Tensor,
              test_logits: torch.Tensor, meta: dict[str, Any]) -> Path:
        """Atomically (re)place the entry ``key``. Raises OSError when the folder is not writable."""
        blobs = {
            "weights.safetensors": st_save({k: v.detach().cpu().contiguous() for k, v in state_dict.items()}),
            "logits.safetensors": st_save({"train": train_logits.contiguous(), "test": test_logits.contiguous()}),
        }
        meta = {**meta, "format_version": FORMAT_VERSION, "key": key, "created": time.time()}
        return write_folder(self.dir, key, blobs, "meta.json", meta, replace=True)

    # -- locking ---------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[None]:
        """Exclusive across threads and processes. Without a writable folder, across threads only."""
        with _THREAD_LOCKS_GUARD:  # shared by every TeacherStore of the process (sessions make their own)
            thread_lock = _THREAD_LOCKS.setdefault(str(self.dir / key), threading.Lock())
        with thread_lock:
            try:
                self.dir.mkdir(parents=True, exist_ok=True)
                handle = open(self.dir / f".{key}.lock", "a")
            except OSError as exc:
                log.warning("teacher cache %s is not writable (%s); locking within this process only", self.dir, exc)
                yield
                return
            with handle:
                fcntl.flock(handle, fcntl.LOCK_EX)  # released when the handle closes, also if the process dies
                yield

    # -- management ------------------------------------------------------------------------------------
    def entries(self) -> list[dict[str, Any]]:
        """One summary per visible entry (temporary folders are invisible)."""
        rows = []
        for folder in sorted(self.dir.glob("[!.]*")) if self.dir.is_dir() else []:
            if not folder.is_dir():  # a stray file is no entry
                continue
            state, entry, why = self.read(folder.name)
            meta = entry.meta if entry else {}
            rows.append({"key": folder.name, "state": state, "problem": why,
                         "dataset": meta.get("config", {}).get("dataset"), "arch": meta.get("config", {}).get("arch"),
                         "test_accuracy": meta.get("test_accuracy"), "size_bytes": _folder_size(folder)})
        return rows

    def remove(self, key: str) -> None:
        shutil.rmtree(self.dir / key, ignore_errors=True)

    def clear(self) -> int:
        """Deletes every entry and stale temporary folder; returns how many entries went."""
        if not self.dir.is_dir():
            return 0
        n = 0
        for folder in self.dir.iterdir():
            if folder.is_dir() and (not folder.name.startswith(".") or _is_stale(folder)):
                shutil.rmtree(folder, ignore_errors=True)
                n += not folder.name.startswith(".")
        return n


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


def _folder_size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.iterdir() if f.is_file())


def _is_stale(folder: Path) -> bool:
    try:
        return time.time() - folder.stat().st_mtime > STALE_TMP_SECONDS
    except OSError:
        return False
