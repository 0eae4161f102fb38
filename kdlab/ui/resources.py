"""Process-wide shared objects: datasets, stores, cached teachers (and the pool, from ``process``).

Everything here is shared by every browser session of one server process and is read-only once built.
"""
from __future__ import annotations

import functools
import logging
import threading

import streamlit as st
import torch

from kdlab.stores.teacher_cache import TeacherStore
from kdlab.base.config import DistillConfig
from kdlab.data import Dataset, load_dataset
from kdlab.training.models import build_model, count_params
from kdlab.stores.run_store import RunStore
from kdlab.runs.teacher import Teacher, find_teacher
from kdlab.base.i18n import LANGUAGES, translate
from kdlab.ui import process
from kdlab.ui.i18n import N_, language

log = logging.getLogger(__name__)
_lock = threading.Lock()
_run_stores: dict[str, RunStore] = {}
pool = process.pool  # re-exported: the pages' one pool


LOADING = N_("Loading the dataset…")


def _load(name: str) -> Dataset:
    return load_dataset(name)


# One cache, whatever the language: Streamlit names a cache after its function's code, the same for each of these,
# so a dataset is loaded (and held) once; only the spinner of a first load differs, in the reader's language.
_loaders = {lang: st.cache_resource(_load, show_spinner=translate(LOADING, lang), max_entries=4) for lang in LANGUAGES}


def dataset(name: str) -> Dataset:
    """A dataset loaded once per process (read-only tensors shared by every session)."""
    return _loaders[language()](name)


def run_store() -> RunStore:
    """The store of finished runs under the current KDLAB_CACHE_DIR (one instance per root)."""
    store = RunStore()
    with _lock:
        return _run_stores.setdefault(str(store.root), store)


@functools.lru_cache(maxsize=256)
def param_count(spec: str, input_shape: tuple[int, ...], num_classes: int) -> int:
    """Parameters of ``spec`` for this data, counted on the meta device (no memory allocated)."""
    with torch.device("meta"):
        return count_params(build_model(spec, input_shape, num_classes))


@functools.lru_cache(maxsize=16)
def student_model(run_id: str, spec: str, input_shape: tuple[int, ...], num_classes: int) -> torch.nn.Module:
    """A stored run's distilled student, rebuilt from its verified weights (runs are immutable: cache it)."""
    model = build_model(spec, input_shape, num_classes)
    model.load_state_dict(run_store().weights(run_id))
    return model.eval()


def cached_teacher(cfg: DistillConfig, data: Dataset) -> Teacher | None:
    """The teacher of ``cfg`` if it is in memory or in the disk cache, else None: never trains."""
    return find_teacher(cfg.teacher_config(), data, TeacherStore())
