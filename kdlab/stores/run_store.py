"""Finished runs on disk, so the Runs page lists them again after a server restart.

Layout: ``<KDLAB_CACHE_DIR or ~/.cache/kdlab>/runs/<id>/{run.json, weights.safetensors, outputs.safetensors}``

* ``run.json``: the record (config, results, curves; see ``record_from_result``) plus each file's size and
  SHA-256. ``weights.safetensors``: the distilled student's state dict. ``outputs.safetensors``: the test
  logits of each student role, (N_test, C) float32.
* Writes are atomic: a hidden temporary folder is renamed into place, so a killed writer leaves no entry.
* Blobs are verified against their checksums on load; nothing is ever unpickled.
* At most ``max_runs`` runs are kept (env KDLAB_MAX_RUNS, default 200); saving prunes the oldest.
"""
from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from kdlab.stores.atomic import verified_bytes, write_folder
from kdlab.stores.teacher_cache import cache_root
from kdlab.base.config import to_dict
from kdlab.base.errors import KdlabError

if TYPE_CHECKING:
    from kdlab.runs.distill import RunResult, StudentReport

log = logging.getLogger(__name__)
FORMAT_VERSION = 1
DEFAULT_MAX_RUNS = 200  # ~200 small MLP students stay well under 100 MB
ID_PATTERN = re.compile(r"\d{8}-\d{9}-[0-9a-f]{6}")  # UTC date, time with ms, random; ids from widgets are never paths


class RunNotFound(KdlabError):
    """No stored run has this id (or its files are damaged)."""


class RunStore:
    def __init__(self, root: Path | str | None = None, max_runs: int | None = None):
        self.root = Path(root) if root is not None else cache_root()
        self.dir = self.root / "runs"
        self.max_runs = max_runs or _env_int("KDLAB_MAX_RUNS", DEFAULT_MAX_RUNS)
        self._records: dict[str, dict[str, Any]] = {}  # run.json is immutable once written: parse it once
        self._lock = threading.Lock()

    # -- writing ---------------------------------------------------------------------------------------
    def save(self, record: dict[str, Any], weights: dict[str, torch.Tensor],
             outputs: dict[str, torch.Tensor] | None = None) -> str:
        """Store a run atomically; returns its new id. Raises OSError when the folder is not writable."""
        run_id = new_id()
        blobs = {"weights.safetensors": st_save({k: v.detach().cpu().contiguous() for k, v in weights.items()}),
                 "outputs.safetensors": st_save({k: v.detach().cpu().float().contiguous()
                                                 for k, v in (outputs or {}).items()})}
        record = {**jsonable(record), "format_version": FORMAT_VERSION, "id": run_id,
                  "created": record.get("created") or time.time()}
        write_folder(self.dir, run_id, blobs, "run.json", record)
        self.prune()
        return run_id

    def prune(self) -> list[str]:
        """Delete the oldest runs beyond ``max_runs``; ids sort by creation time."""
        ids = self.ids()
        doomed = ids[self.max_runs:]
        for run_id in doomed:
            self.remove(run_id)
        return doomed

    def remove(self, run_id: str) -> None:
        _check_id(run_id)
        with self._lock:
            self._records.pop(run_id, None)
        shutil.rmtree(self.dir / run_id, ignore_errors=True)

    # -- reading ---------------------------------------------------------------------------------------
    def ids(self) -> list[str]:
        """Newest first; temporary folders are invisible."""
        if not self.dir.is_dir():
            return []
        return sorted((p.name for p in self.dir.iterdir() if ID_PATTERN.fullmatch(p.name)), reverse=True)

    def list(self) -> list[dict[str, Any]]:
        """The records of every readable run, newest first; a damaged run is logged and skipped."""
        out = []
        for run_id in self.ids():
            try:
                out.append(self.load(run_id))
            except RunNotFound as exc:
                log.warning("skipping stored run %s: %s", run_id, exc)
        return out

    def load(self, run_id: str) -> dict[str, Any]:
        _check_id(run_id)
        with self._lock:
            if run_id in self._records:
                return self._records[run_id]
        try:
            record = json.loads((self.dir / run_id / "run.json").read_text())
        except (OSError, ValueError) as exc:
            raise RunNotFound(f"run {run_id} cannot be read ({type(exc).__name__}: {exc})") from None
        if not isinstance(record, dict) or record.get("format_version") != FORMAT_VERSION:
            raise RunNotFound(f"run {run_id} is from another format version")
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
