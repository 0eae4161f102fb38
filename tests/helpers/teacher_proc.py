"""A separate process that asks the teacher cache for a teacher (tests/test_cache.py drives it).

    python teacher_proc.py get OUTDIR N_PROCS   # wait until N_PROCS processes are ready, then get_teacher;
                                                # prints one JSON line {"pid", "source", "key", "test_accuracy"}
    python teacher_proc.py die-writing OUTDIR   # train, start writing the entry, write OUTDIR/writing after the
                                                # first file, then sleep until killed
    python teacher_proc.py full-disk OUTDIR     # get_teacher with files capped at 1 KiB (RLIMIT_FSIZE): writing
                                                # the entry fails with EFBIG at its 2 KiB logits file, as a
                                                # full disk fails with ENOSPC; prints
                                                # {"source", "key", "warnings"}
    python teacher_proc.py hold OUTDIR KIND KEY     # hold the store's lock on KEY (KIND "lock": exclusive, as a
                                                # trainer; "reading": shared, as a reader), write OUTDIR/holding,
                                                # and keep it until OUTDIR/release exists

KDLAB_CACHE_DIR selects the cache. The dataset is synthetic (torch only, no scikit-learn import) and
identical in every process, so every process computes the same key.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import torch

from kdlab.base.config import TeacherConfig, TrainConfig
from kdlab.data import Dataset

CONFIG = TeacherConfig(dataset="synthetic-blobs", arch="mlp:16", train=TrainConfig(epochs=3, lr=1e-2, batch_size=64))


def synthetic_dataset() -> Dataset:
    """Two Gaussian blobs in 2-D, the same in every process."""
    g = torch.Generator().manual_seed(0)
    y = torch.arange(320) % 2  # (N,)
    x = torch.randn(320, 2, generator=g) + 4.0 * y[:, None].float() - 2.0  # (N, 2), well separated
    return Dataset("synthetic-blobs", x[:256].contiguous(), y[:256], x[256:].contiguous(), y[256:],
                   ("left", "right"), (2,))


def _get(outdir: Path, n_procs: int) -> None:
    from kdlab.runs.teacher import get_teacher

    data = synthetic_dataset()
    (outdir / f"ready-{os.getpid()}").touch()
    deadline = time.monotonic() + 120
    while len(list(outdir.glob("ready-*"))) < n_procs:  # a barrier: everyone asks at (nearly) the same moment
        if time.monotonic() > deadline:
            raise SystemExit("barrier timed out")
        time.sleep(0.01)

    def slow(event) -> None:  # training takes ~1 s, so the others really do arrive while it runs
        if not (outdir / f"trained-{os.getpid()}").exists():
            (outdir / f"trained-{os.getpid()}").touch()
        time.sleep(0.05)

    t = get_teacher(CONFIG, data, on_event=slow)
    print(json.dumps({"pid": os.getpid(), "source": t.source, "key": t.key, "test_accuracy": t.test_accuracy}))


def _die_writing(outdir: Path) -> None:
    from kdlab.stores import atomic
    from kdlab.runs.teacher import get_teacher

    real = atomic.write_synced

    def first_file_then_hang(path: Path, blob: bytes) -> None:
        real(path, blob)
        (outdir / "writing").write_text(str(path))
        time.sleep(600)  # the test SIGKILLs us here, mid-entry

    atomic.write_synced = first_file_then_hang
    get_teacher(CONFIG, synthetic_dataset())
    raise SystemExit("unreachable: the writer should have been killed")


def _full_disk() -> None:
    import resource
    import signal

    from kdlab.runs.teacher import get_teacher

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # then a write past the limit fails with EFBIG, not a signal
    resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))  # the logits alone are 2 KiB
    t = get_teacher(CONFIG, synthetic_dataset())
    print(json.dumps({"source": t.source, "key": t.key, "warnings": t.warnings}))


def _hold(outdir: Path, kind: str, key: str) -> None:
    from kdlab.stores.teacher_cache import TeacherStore

    store = TeacherStore()
    with (store.lock(key) if kind == "lock" else store.reading(key)) as got:
        if kind == "reading" and not got:
            raise SystemExit("the shared lock was not free")
        (outdir / "holding").touch()
        deadline = time.monotonic() + 120
        while not (outdir / "release").exists() and time.monotonic() < deadline:
            time.sleep(0.01)


if __name__ == "__main__":
    torch.set_num_threads(1)
    mode, out = sys.argv[1], Path(sys.argv[2])
    if mode == "get":
        _get(out, int(sys.argv[3]))
    elif mode == "die-writing":
        _die_writing(out)
    elif mode == "full-disk":
        _full_disk()
    elif mode == "hold":
        _hold(out, sys.argv[3], sys.argv[4])
    else:
        raise SystemExit(f"unknown mode {mode!r}")
