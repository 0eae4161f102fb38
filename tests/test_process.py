"""kdlab.ui.process.init_process: once per server process, the stale temporary folders of both stores go.
(Issue 10, failure 8: hidden .tmp-* folders of killed writers stayed until a `cache clear`; the run store's were
never swept.)"""
from __future__ import annotations

import os
import time

import torch

from kdlab.stores import atomic
from kdlab.stores.run_store import RunStore
from kdlab.stores.teacher_cache import TeacherStore
from kdlab.training import threads
from kdlab.ui import process


def _plant(parent, name: str, age: float):
    folder = parent / name
    folder.mkdir(parents=True)
    (folder / "weights.safetensors").write_bytes(b"half")
    os.utime(folder, (time.time() - age,) * 2)
    return folder


def test_start_up_sweeps_both_stores(kdlab_cache, monkeypatch):
    stale = atomic.STALE_TMP_SECONDS + 60
    teacher_tmp = _plant(TeacherStore().dir, ".tmp-0123456789abcdef-" + "a" * 32, stale)
    run_tmp = _plant(RunStore().dir, ".tmp-20200101-000000000-abcdef-" + "b" * 32, stale)
    young = _plant(RunStore().dir, ".tmp-20200101-000000000-abcdef-" + "c" * 32, 1)  # maybe a live writer's
    before = torch.get_num_threads()
    monkeypatch.setattr(process, "_threads_set", False)  # as in a fresh server process
    monkeypatch.setattr(threads, "_pinned", threads._pinned)
    try:
        process.init_process()
    finally:
        torch.set_num_threads(before)
    assert not teacher_tmp.exists() and not run_tmp.exists() and young.exists()
