"""A bounded, process-wide pool of training workers with a visible FIFO queue.

The Streamlit server runs every training job here, never in a script thread: a classroom of sessions
shares ``size`` workers (default: one per core) and each waiting session can see its place in line.
Workers never touch Streamlit; they write progress into their ``Job``, which the page polls.

A job stops at its next training step when ``stop()`` is called or when ``alive()`` (supplied by the UI,
e.g. "is this browser session still connected?") turns false, so a closed tab frees its worker.
"""
from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from kdlab.base.errors import KdlabError

log = logging.getLogger(__name__)
MAX_EVENTS = 5_000  # per job: bounds memory however long a run's history grows
ALIVE_CHECK_SECONDS = 0.25  # alive() may be costly-ish; ask at most this often


@dataclass
class Job:
    fn: Callable[["Job"], Any]  # runs on a worker; reads job.should_stop and calls job.emit
    alive: Callable[[], bool] = lambda: True
    label: str = ""
    id: int = 0
    status: str = "queued"  # queued -> running -> done | failed | stopped
    result: Any = None
    error: str = ""
    events: deque = field(default_factory=lambda: deque(maxlen=MAX_EVENTS))
    submitted: float = field(default_factory=time.monotonic)
    started: float | None = None
    finished: float | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _last_alive_check: float = 0.0
    _done: threading.Event = field(default_factory=threading.Event)

    def stop(self) -> None:
        self._stop.set()

    def should_stop(self) -> bool:
        if self._stop.is_set():
            return True
        now = time.monotonic()
        if now - self._last_alive_check >= ALIVE_CHECK_SECONDS:
            self._last_alive_check = now
            if not self.alive():
                log.info("job %s: its session is gone; stopping", self.id)
                self._stop.set()
        return self._stop.is_set()

    def emit(self, event: Any) -> None:
        self.events.append(event)  # deque.append is atomic: safe against a concurrent reader's list()

    @property
    def finished_ok(self) -> bool:
        return self.status == "done"

    @property
    def active(self) -> bool:
        return self.status in ("queued", "running")

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)


class JobPool:
    def __init__(self, size: int | None = None, max_queue: int = 200):
        self.size = size or default_workers()
        self.max_queue = max_queue  # beyond this, refuse: a queue nobody will live to see is no service
        self._queue: deque[Job] = deque()
        self._cond = threading.Condition()
        self._ids = itertools.count(1)
        self._running: set[int] = set()
        self._threads = [threading.Thread(target=self._work, name=f"kdlab-worker-{i}", daemon=True)
                         for i in range(self.size)]
        for t in self._threads:
            t.start()

    def submit(self, fn: Callable[[Job], Any], *, alive: Callable[[], bool] = lambda: True, label: str = "") -> Job:
        with self._cond:
            if len(self._queue) >= self.max_queue:
                raise KdlabError(f"the server is busy ({len(self._queue)} runs waiting); try again in a minute")
            job = Job(fn, alive, label, next(self._ids))
            self._queue.append(job)
            self._cond.notify()
        return job

    def position(self, job: Job) -> int:
        """1 for the next job to start, 2 for the one after, ...; 0 once running or finished."""
        with self._cond:
            for i, queued in enumerate(self._queue):
                if queued is job:
                    return i + 1
        return 0

    def stats(self) -> dict[str, int]:
        with self._cond:
            return {"workers": self.size, "running": len(self._running), "queued": len(self._queue)}

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._queue:
                    self._cond.wait()
                job = self._queue.popleft()
                self._running.add(job.id)
            try:
                self._run(job)
            finally:
                with self._cond:
                    self._running.discard(job.id)

    @staticmethod
    def _run(job: Job) -> None:
        job.started = time.monotonic()
        if job.should_stop():  # stopped or abandoned while it waited: don't spend a worker on it
            job.status = "stopped"
        else:
            job.status = "running"
            try:
                job.result = job.fn(job)
                job.status = "stopped" if job._stop.is_set() else "done"
            except KdlabError as exc:
                job.status, job.error = ("stopped" if job._stop.is_set() else "failed"), str(exc)
            except Exception as exc:  # a bug: keep the worker alive, show the message, log the traceback
                log.exception("job %s failed", job.id)
                job.status, job.error = "failed", f"{type(exc).__name__}: {exc}"
        job.finished = time.monotonic()
        job._done.set()


def default_workers() -> int:
    """KDLAB_WORKERS, else one worker per core."""
    raw = os.environ.get("KDLAB_WORKERS", "")
    try:
        n = int(raw) if raw else (os.cpu_count() or 1)
    except ValueError:
        n = os.cpu_count() or 1
    return max(1, min(n, 64))
