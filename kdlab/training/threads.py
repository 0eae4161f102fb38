"""How many CPU threads torch uses. ``torch.set_num_threads`` is process-wide, so it is set deliberately:

* A single-job process (CLI, bench, experiments) picks per run: small students train fastest on ONE
  thread (a 128x784x100 matmul is ~10 MMAC: splitting it costs more in thread wake-ups than it saves;
  measured on 2 cores, mlp:100 on Fashion-MNIST: 0.5 s/epoch on 1 thread vs 1.0 s on 2 under load), while
  a large teacher (mlp:1200-1200, ~300 MMAC per batch) gains from every core.
* The Streamlit server calls ``pin_threads(1)`` once at start-up: its pool runs one job per core, so each
  job gets one thread and jobs never fight over cores.
"""
from __future__ import annotations

import os

import torch

PARALLEL_MACS_PER_BATCH = 50_000_000  # below this a step is too short to share between threads
_pinned: int | None = None


def pin_threads(n: int) -> None:
    """Fix the thread count for the rest of the process; later ``auto_threads`` calls do nothing."""
    global _pinned
    _pinned = max(1, n)
    torch.set_num_threads(_pinned)


def auto_threads(macs_per_example: int, batch_size: int) -> int:
    """Sets (unless pinned) and returns the thread count for a run of this size."""
    if _pinned is not None:
        return _pinned
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    n = cores if macs_per_example * batch_size >= PARALLEL_MACS_PER_BATCH else 1
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n
