"""Finished runs on disk, so the Runs page lists them again after a server restart.

Layout: ``<KDLAB_CACHE_DIR or ~/.cache/kdlab>/runs/<id>/{run.json, weights.safetensors, outputs.safetensors}``

* ``run.json``: the RunRecord (kdlab.base.record: config, results, curves) plus each file's size and SHA-256.
  ``weights.safetensors``: the first seed's distilled student's state dict. ``outputs.safetensors``: the test
  logits of each student role of the first seed, (N_test, C) float32.
* Writes are atomic: a hidden temporary folder is renamed into place, so a killed writer leaves no entry, and
  ``sweep_temporary`` removes such leftovers (at start-up and after each save).
* Records are validated on load (RunRecord.from_json) and blobs against their checksums; a record that does
  not validate is skipped by ``list`` and logged once per run id; nothing is ever unpickled, and nothing but a
  regular file is read (type and size are checked first: a planted FIFO or symlink cannot block or be followed).
* At most ``max_runs`` runs (env KDLAB_MAX_RUNS, default 200) and ``max_bytes`` (env KDLAB_RUNS_MAX_MB, default
  512) are kept; saving prunes the oldest, never the run just saved.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from kdlab.base.errors import KdlabError
from kdlab.base.record import RecordError, RunRecord
from kdlab.stores import atomic
from kdlab.stores.atomic import folder_bytes, read_regular, remove_tree, verified_bytes, write_folder
from kdlab.stores.teacher_cache import cache_root, env_mib

log = logging.getLogger(__name__)
DEFAULT_MAX_RUNS = 200  # ~200 small MLP students stay well under 100 MB
# Measured (a real run_distill saved as the Distill page saves it, 1 000 student steps): digits mlp:500 -> mlp:100
# with its scratch twin 0.13 MiB, the same on Fashion-MNIST 1.11 MiB (its test logits, 2 x 10 000 x 10 floats, are
# 0.76 of it), digits -> mlp:2400-1700 16.3 MiB. 512 MiB keeps the count the limit for the lab's usual runs (200
# Fashion-MNIST runs ~ 220 MiB) and stops 200 large ones taking 3.3 GiB.
DEFAULT_RUNS_MAX_MB = 512
RECORD_MAX_BYTES = 64 << 20  # run.json: curves of at most a few thousand points each; a bigger one is not read
ID_PATTERN = re.compile(r"\d{8}-\d{9}-[0-9a-f]{6}")  # UTC date, time with ms, random; ids from widgets are never paths


class RunNotFound(KdlabError):
    """No stored run has this id (or its files are damaged)."""


class RunStore:
    def __init__(self, root: Path | str | None = None, max_runs: int | None = None, max_bytes: int | None = None):
        self.root = Path(root) if root is not None else cache_root()
        self.dir = self.root / "runs"
        self.max_runs = max_runs or _env_int("KDLAB_MAX_RUNS", DEFAULT_MAX_RUNS)
        self.max_bytes = env_mib("KDLAB_RUNS_MAX_MB", DEFAULT_RUNS_MAX_MB) if max_bytes is None else max(0, max_bytes)
        self._records: dict[str, RunRecord] = {}  # run.json is immutable once written: parse it once
        self._reported: set[str] = set()  # ids of unreadable runs already logged: list() runs on every page view
        self._lock = threading.Lock()

    # -- writing ---------------------------------------------------------------------------------------
    def save(self, record: RunRecord, weights: dict[str, torch.Tensor],
             outputs: dict[str, torch.Tensor] | None = None) -> RunRecord:
        """Store a run atomically; returns the record with its new id. Raises OSError when not writable."""
        record = dataclasses.replace(record, id=new_id(), created=record.created or time.time())
        blobs = {"weights.safetensors": st_save({k: v.detach().cpu().contiguous() for k, v in weights.items()}),
                 "outputs.safetensors": st_save({k: v.detach().cpu().float().contiguous()
                                                 for k, v in (outputs or {}).items()})}
        write_folder(self.dir, record.id, blobs, "run.json", record.to_json())
        self.prune()
        self.sweep_temporary()
        return record

    def prune(self) -> list[str]:
        """Delete the oldest runs beyond ``max_runs`` or ``max_bytes``; ids sort by creation time. The newest
        run always stays, however big."""
        kept_bytes, doomed = 0, []
        for i, run_id in enumerate(self.ids()):
            kept_bytes += folder_bytes(self.dir / run_id)
            if i > 0 and (i >= self.max_runs or (self.max_bytes and kept_bytes > self.max_bytes)):
                doomed.append(run_id)
        for run_id in doomed:
            self.remove(run_id)
        if doomed:
            log.info("run store: removed the %d oldest runs to stay within %d runs and %.0f MB", len(doomed),
                     self.max_runs, self.max_bytes / 2**20)
        return doomed

    def remove(self, run_id: str) -> None:
        _check_id(run_id)
        with self._lock:
            self._records.pop(run_id, None)
        remove_tree(self.dir / run_id)

    def sweep_temporary(self, older_than: float | None = None) -> list[str]:
        """Remove temporary folders of writers that died (older than atomic.STALE_TMP_SECONDS)."""
        swept = atomic.sweep_temporary(self.dir, atomic.STALE_TMP_SECONDS if older_than is None else older_than)
        if swept:
            log.info("run store: removed %d stale temporary folders", len(swept))
        return swept

    def total_bytes(self) -> int:
        return sum(folder_bytes(self.dir / run_id) for run_id in self.ids())

    # -- reading ---------------------------------------------------------------------------------------
    def ids(self) -> list[str]:
        """Newest first; temporary folders are invisible."""
        if not self.dir.is_dir():
            return []
        return sorted((p.name for p in self.dir.iterdir() if ID_PATTERN.fullmatch(p.name)), reverse=True)

    def list(self) -> list[RunRecord]:
        """The records of every readable, valid run, newest first; any other run is skipped, and logged once."""
        out = []
        for run_id in self.ids():
            try:
                out.append(self.load(run_id))
            except RunNotFound as exc:
                with self._lock:
                    first = run_id not in self._reported
                    self._reported.add(run_id)
                if first:
                    log.warning("skipping stored run %s: %s", run_id, exc)
        return out

    def load(self, run_id: str) -> RunRecord:
        _check_id(run_id)
        with self._lock:
            if run_id in self._records:
                return self._records[run_id]
        raw = self._manifest(run_id)
        try:
            record = RunRecord.from_json(raw)
        except RecordError as exc:
            raise RunNotFound(f"run {run_id}: {exc}") from None
        if record.id != run_id:
            raise RunNotFound(f"run {run_id}: its record names another id ({record.id!r})")
        with self._lock:
            self._records[run_id] = record
        return record

    def _manifest(self, run_id: str) -> dict[str, Any]:
        try:
            return json.loads(read_regular(self.dir / run_id / "run.json", RECORD_MAX_BYTES))
        except (OSError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise RunNotFound(f"run {run_id} cannot be read ({type(exc).__name__}: {exc})") from None

    def weights_bytes(self, run_id: str) -> bytes:
        """The student's weights as a verified safetensors file (ready for a download button)."""
        return self._blob(run_id, "weights.safetensors")

    def weights(self, run_id: str) -> dict[str, torch.Tensor]:
        return st_load(self.weights_bytes(run_id))

    def outputs(self, run_id: str) -> dict[str, torch.Tensor]:
        """Test logits per student role, e.g. {"distilled": (N_test, C), "scratch": (N_test, C)}."""
        return st_load(self._blob(run_id, "outputs.safetensors"))

    def _blob(self, run_id: str, name: str) -> bytes:
        self.load(run_id)  # a valid record first
        try:
            expected = self._manifest(run_id)["files"][name]
        except (KeyError, TypeError):
            raise RunNotFound(f"run {run_id}: its manifest lists no {name}") from None
        try:
            blob = verified_bytes(self.dir / run_id / name, expected)
        except OSError as exc:
            raise RunNotFound(f"run {run_id}: {name} cannot be read ({exc})") from None
        except ValueError as exc:
            raise RunNotFound(f"run {run_id}: {exc}") from None
        return blob


def new_id() -> str:
    """Sortable by creation time: '20250101-120000123-3fa9c1'."""
    now = time.time()
    return f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime(now))}{int(now * 1000) % 1000:03d}-{uuid.uuid4().hex[:6]}"


def _check_id(run_id: str) -> None:
    if not isinstance(run_id, str) or not ID_PATTERN.fullmatch(run_id):
        raise RunNotFound(f"{run_id!r} is not a run id")


def _env_int(name: str, default: int) -> int:
    try:
        return max(1, int(os.environ.get(name, default)))
    except ValueError:
        return default
