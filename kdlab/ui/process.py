"""Once-per-process set-up and the job pool. Deliberately light (no torch at import time): the home page
imports only this, so its first render does not wait for PyTorch to load (~1 s here)."""
from __future__ import annotations

import importlib
import logging
import os
import threading

from kdlab.serve.jobs import JobPool, default_workers

log = logging.getLogger(__name__)
_lock = threading.Lock()
_pool: JobPool | None = None
_threads_set = False
_warming = False
_warm = threading.Event()  # set once the warm-up thread has finished
# The pages' heavy imports, scikit-learn's for digits (the default dataset: ~1.3 s of a first visit), and
# Streamlit's emoji catalog, which st.set_page_config loads for the page icon on the first run (~130 ms here)
WARM_MODULES = ("torch", "kdlab.training.losses", "plotly.graph_objects", "kdlab.ui.settings", "kdlab.ui.distill",
                "kdlab.ui.temperature", "sklearn.datasets", "sklearn.model_selection", "streamlit.emojis")


def init_process() -> None:
    """Once per server process: one intra-op torch thread per job, and a sweep of the stores' stale temporary
    folders (left by writers killed before this start).

    The pool runs one training job per core (KDLAB_WORKERS, default = cores). With torch's default of one
    intra-op thread per core, N concurrent jobs would run N x cores threads on N cores; measured here with a
    second process busy, a digits teacher took 35 s instead of 2.3 s. With one thread per job each core works
    on one job and the pool's queue decides who waits. ``torch.set_num_threads`` is process-wide (worker
    threads pick it up on their first op), hence once, before the first job; ``pin_threads`` also stops the
    engine's per-run ``auto_threads`` from raising it again for a large teacher.
    """
    global _threads_set
    with _lock:
        if not _threads_set:
            from kdlab.training.threads import pin_threads  # imports torch: only now, not when the home page loads

            pin_threads(1)
            _threads_set = True
            log.info("kdlab: torch uses 1 intra-op thread per job")
            _sweep_stores()


def _sweep_stores() -> None:
    """Temporary folders that writers killed before this start left in both stores (once per process)."""
    from kdlab.stores.run_store import RunStore
    from kdlab.stores.teacher_cache import TeacherStore

    for store in (TeacherStore(), RunStore()):
        try:
            store.sweep_temporary()
        except OSError as exc:  # a read-only cache: nothing to sweep that we could sweep
            log.warning("kdlab: could not sweep %s: %s", store.dir, exc)


def pool() -> JobPool:
    """The process-wide bounded pool every training job of the app goes through."""
    global _pool
    init_process()  # before any worker can run a torch op
    with _lock:
        if _pool is None:
            _pool = _new_pool()
        return _pool


def _new_pool() -> JobPool:
    """KDLAB_RAY_ADDRESS set: every job runs on that Ray cluster ("local" starts one for this server); else
    here, with KDLAB_WORKERS workers (default: one per core). An unreachable cluster is a KdlabError, shown
    where a run was asked for; the next run tries again."""
    address = os.environ.get("KDLAB_RAY_ADDRESS", "").strip()
    if not address:
        return JobPool()
    from kdlab.serve.ray_pool import RayJobPool  # only now: Ray is an optional extra

    return RayJobPool.connect(address)


def stats() -> dict[str, int]:
    """The pool's load, without creating it (and so without importing torch) if no job ever ran."""
    with _lock:
        current = _pool
    return current.stats() if current is not None else {"workers": default_workers(), "running": 0, "queued": 0}


def wait_warm(timeout: float | None = None) -> bool:
    """Wait for the warm-up (kdlab serve before it starts the server, a test, a page that needs torch at once)."""
    return _warm.wait(timeout)


def _skip_direct_execution_check() -> None:
    """Streamlit checks, once per process on the first element drawn, whether it runs in a REPL rather than
    under `streamlit run`; the check is an ``inspect.stack()`` of the script thread's deep stack, which reads
    the source of every frame (~50 ms of a fresh server's first visit here). This process is the app's
    server, so the answer is known: mark the check as done (a private flag; without it the check just runs)."""
    from streamlit import delta_generator

    if hasattr(delta_generator, "_use_warning_has_been_displayed"):
        delta_generator._use_warning_has_been_displayed = True


def warm_up() -> None:
    """Import the heavy modules in a background thread, once (kdlab serve waits for it before it answers)."""
    global _warming
    with _lock:
        if _warming:
            return
        _warming = True

    def work() -> None:
        try:
            _skip_direct_execution_check()
            init_process()
            for name in WARM_MODULES:
                importlib.import_module(name)
        except Exception:  # warming is an optimisation: the pages import what they need anyway
            log.exception("kdlab: warm-up failed")
        finally:
            _warm.set()

    threading.Thread(target=work, name="kdlab-warm-up", daemon=True).start()
