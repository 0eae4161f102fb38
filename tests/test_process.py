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


def test_the_warm_up_does_a_first_runs_one_time_work_of_streamlit_too():
    """A fresh server's first visit paid ~130 ms for Streamlit's emoji catalog (the page icon) and ~50 ms for its
    check that it is not in a REPL (an inspect.stack() of the script's deep stack); the warm-up does both."""
    import subprocess
    import sys

    code = ("import sys; from kdlab.ui import process; process.warm_up(); assert process.wait_warm(120); "
            "from streamlit import delta_generator; "
            "print('streamlit.emojis' in sys.modules, delta_generator._use_warning_has_been_displayed)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180, check=True)
    assert out.stdout.split() == ["True", "True"], out.stderr[-2000:]
