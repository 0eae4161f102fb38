"""Finished runs on disk, so the Runs page lists them again after a server restart.

Layout: ``<KDLAB_CACHE_DIR or ~/.cache/kdlab>/runs/<id>/{run.json, weights.safetensors, outputs.safetensors}``

* ``run.json``: the record (config, results, curves; see ``record_from_result``) plus each file's size and
  SHA-256. ``weights.safetensors``: the distilled student's state dict. ``outputs.safetensors``: the test
  logits of each student role, (N_test, C) float32.
* Writes are atomic: a hidden temporary folder is renamed into place, so a killed writer leaves no entry.
* Blobs are verified against their checksums on load (regular files only, type and size checked before a
  byte is read); nothing is ever unpickled.
* Records are validated (``validate_record``) when saved and when loaded: ``list()`` skips a record that does
  not validate, and logs it once per run id, so one damaged run.json cannot break the Runs page.
* At most ``max_runs`` runs (env KDLAB_MAX_RUNS, default 200) and ``max_bytes`` (env KDLAB_RUNS_MAX_MB,
  default 512) are kept; saving prunes the oldest (never the run just saved) and sweeps dead writers' leftovers.
"""
from __future__ import annotations

import json
import logging
import math
import os
import re
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from kdlab.stores import atomic
from kdlab.stores.atomic import folder_bytes, read_regular, remove_tree, verified_bytes, write_folder
from kdlab.stores.teacher_cache import cache_root, env_mib
from kdlab.base.config import to_dict
from kdlab.base.errors import KdlabError

if TYPE_CHECKING:
    from kdlab.runs.distill import RunResult, StudentReport

log = logging.getLogger(__name__)
FORMAT_VERSION = 1
DEFAULT_MAX_RUNS = 200  # ~200 small MLP students stay well under 100 MB
# Measured (a real run_distill saved as the Distill page saves it): digits mlp:500 -> mlp:100 with its scratch
# twin 0.07 MiB, the same on Fashion-MNIST 1.07 MiB (its test logits, 2 x 10 000 x 10 floats, are 0.76 of it), digits
# -> mlp:2400-1700 16.3 MiB. 512 MiB keeps the count the limit for the lab's usual runs (200 Fashion-MNIST runs
# ~ 214 MiB) and stops 200 large ones taking 3.3 GiB.
DEFAULT_RUNS_MAX_MB = 512
RECORD_MAX_BYTES = 64 << 20  # run.json: curves of at most a few thousand points; a bigger one is not read
BLOBS = ("weights.safetensors", "outputs.safetensors")
ID_PATTERN = re.compile(r"\d{8}-\d{9}-[0-9a-f]{6}")  # UTC date, time with ms, random; ids from widgets are never paths


class RunNotFound(KdlabError):
    """No stored run has this id (or its files are damaged)."""


class RunStore:
    def __init__(self, root: Path | str | None = None, max_runs: int | None = None, max_bytes: int | None = None):
        self.root = Path(root) if root is not None else cache_root()
        self.dir = self.root / "runs"
        self.max_runs = max_runs or _env_int("KDLAB_MAX_RUNS", DEFAULT_MAX_RUNS)
        self.max_bytes = env_mib("KDLAB_RUNS_MAX_MB", DEFAULT_RUNS_MAX_MB) if max_bytes is None else max(0, max_bytes)
        self._records: dict[str, dict[str, Any]] = {}  # run.json is immutable once written: parse it once
        self._reported: set[str] = set()  # ids of invalid runs already logged: list() runs on every page view
        self._lock = threading.Lock()

    # -- writing ---------------------------------------------------------------------------------------
    def save(self, record: dict[str, Any], weights: dict[str, torch.Tensor],
             outputs: dict[str, torch.Tensor] | None = None) -> str:
        """Store a run atomically; returns its new id. Raises OSError when the folder is not writable and
        ValueError for a record ``validate_record`` refuses (so every saved run can be listed)."""
        run_id = new_id()
        blobs = {"weights.safetensors": st_save({k: v.detach().cpu().contiguous() for k, v in weights.items()}),
                 "outputs.safetensors": st_save({k: v.detach().cpu().float().contiguous()
                                                 for k, v in (outputs or {}).items()})}
        record = {**jsonable(record), "format_version": FORMAT_VERSION, "id": run_id,
                  "created": record.get("created") or time.time()}
        validate_record({**record, "files": {name: {"size": 0, "sha256": ""} for name in blobs}}, run_id)
        write_folder(self.dir, run_id, blobs, "run.json", record)
        self.prune()
        self.sweep_temporary()
        return run_id

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

    def list(self) -> list[dict[str, Any]]:
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

    def load(self, run_id: str) -> dict[str, Any]:
        _check_id(run_id)
        with self._lock:
            if run_id in self._records:
                return self._records[run_id]
        try:
            record = validate_record(json.loads(read_regular(self.dir / run_id / "run.json", RECORD_MAX_BYTES)),
                                     run_id)
        except (OSError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise RunNotFound(f"run {run_id} cannot be read ({type(exc).__name__}: {exc})") from None
        with self._lock:
            self._records[run_id] = record
        return record

    def weights_bytes(self, run_id: str) -> bytes:
        """The student's weights as a verified safetensors file (ready for a download button)."""
        return self._blob(run_id, "weights.safetensors")

    def weights(self, run_id: str) -> dict[str, torch.Tensor]:
        return st_load(self.weights_bytes(run_id))

    def outputs(self, run_id: str) -> dict[str, torch.Tensor]:
        """Test logits per student role, e.g. {"distilled": (N_test, C), "scratch": (N_test, C)}."""
        return st_load(self._blob(run_id, "outputs.safetensors"))

    def _blob(self, run_id: str, name: str) -> bytes:
        expected = self.load(run_id)["files"][name]
        try:
            blob = verified_bytes(self.dir / run_id / name, expected)
        except OSError as exc:
            raise RunNotFound(f"run {run_id}: {name} cannot be read ({exc})") from None
        except ValueError as exc:
            raise RunNotFound(f"run {run_id}: {exc}") from None
        return blob


# -- validation -------------------------------------------------------------------------------------------

def validate_record(record: Any, run_id: str) -> dict[str, Any]:
    """``record`` if it is a run record every reader can rely on (the Runs page, ``_blob``), else ValueError
    saying what is wrong. The one place that knows the record's shape (a typed RunRecord can replace it)."""
    if not isinstance(record, dict):
        raise ValueError(f"the record is a {type(record).__name__}, not an object")
    if record.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"format version {record.get('format_version')!r} is not {FORMAT_VERSION}")
    if record.get("id") != run_id:
        raise ValueError(f"its id {record.get('id')!r} is not its folder's name")
    _require(record, "created", _is_number)
    _require(record, "label", lambda v: isinstance(v, str))
    _require(record, "config", lambda v: isinstance(v, dict))
    for role in ("teacher", "distilled", "scratch"):
        part = record.get(role)
        if role == "scratch" and part is None:  # a run without a scratch twin
            continue
        if not isinstance(part, dict):
            raise ValueError(f"{role!r} is missing or not an object")
        _require(part, "test_accuracy", lambda v: v is None or _is_number(v), where=f"{role}.")  # None: was NaN
        if role != "teacher":
            _require(part, "history", lambda v: isinstance(v, list), where=f"{role}.")
    files = record.get("files")
    for name in BLOBS:
        entry = files.get(name) if isinstance(files, dict) else None
        if not (isinstance(entry, dict) and _is_size(entry.get("size")) and isinstance(entry.get("sha256"), str)):
            raise ValueError(f"its manifest has no valid entry for {name}")
    return record


def _require(d: dict[str, Any], key: str, ok, where: str = "") -> None:
    if key not in d or not ok(d[key]):
        raise ValueError(f"field {where}{key!r} is missing or malformed ({str(d.get(key))[:40]!r})")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_size(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


# -- the record ------------------------------------------------------------------------------------------

def record_from_result(result: "RunResult", curves: dict[str, Any] | None = None) -> dict[str, Any]:
    """A compact, JSON-ready summary of a run: what the pages draw and the Runs page lists."""
    from kdlab.training.metrics import evaluate, latency_per_example

    data, t, cfg = result.dataset, result.teacher, result.config
    ev = evaluate(t.test_logits, data.y_test, data.num_classes)
    teacher = {"arch": cfg.teacher, "test_accuracy": t.test_accuracy, "agreement": 1.0,
               "params": int(t.meta["params"]), "latency_s": latency_per_example(t.model, data.input_shape),
               "source": t.source, "key": t.key, "confusion": ev.confusion,
               "per_class_accuracy": ev.per_class_accuracy}
    students = [s for s in (result.distilled, result.scratch) if s is not None]
    return jsonable({
        "created": time.time(), "label": run_label(to_dict(cfg)), "config": to_dict(cfg),
        "classes": list(data.classes), "teacher": teacher,
        "distilled": _student(result.distilled),
        "scratch": _student(result.scratch) if result.scratch is not None else None,
        "reason": next((s.reason for s in students if s.reason != "completed"), "completed"),
        "curves": curves or {},
    })


def _student(s: "StudentReport") -> dict[str, Any]:
    return {"test_accuracy": s.test_accuracy, "agreement": s.agreement, "kl_to_teacher": s.kl_to_teacher,
            "params": s.params, "macs": s.macs, "latency_s": s.latency_s, "seconds": s.seconds,
            "reason": s.reason, "history": s.history, "confusion": s.confusion,
            "per_class_accuracy": s.per_class_accuracy}


def run_label(config: dict[str, Any]) -> str:
    """One line naming a run, e.g. 'digits · mlp:500 → mlp:100 · hinton T=4 α=0.9 · 10 ep'."""
    c = config
    return (f"{c['dataset']} · {c['teacher']} → {c['student']} · {c['loss']} T={c['temperature']:g} "
            f"α={c['alpha']:g} · {c['train']['epochs']} ep")


def jsonable(obj: Any) -> Any:
    """Plain JSON types; NaN and infinities become None (strict JSON has no NaN)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return jsonable(obj.tolist())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return jsonable(obj.item())
    return obj


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
