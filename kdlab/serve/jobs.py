"""A bounded, process-wide pool of training workers with a visible FIFO queue, shared fairly.

The Streamlit server runs every training job here, never in a script thread: a classroom of sessions
shares ``size`` workers (default: one per core) and each waiting session can see its place in line.
Workers never touch Streamlit; they write progress into their ``Job``, which the page polls.

A job stops at its next training step when ``stop()`` is called, when ``alive()`` (supplied by the UI,
e.g. "is this browser session still connected?") turns false, so a closed tab frees its worker, or when it
has run for ``job_seconds`` (env KDLAB_JOB_SECONDS).

Fair sharing (a classroom of 30 on two workers; one script must not be able to starve everyone else):

* ``owner`` (a browser session): at most one active (queued or running) job; a second ``submit`` raises
  ``Busy``, which carries the running job so a page can say what runs and offer to stop it.
* ``client`` (the client's IP address): at most ``max_queued_per_client`` jobs *waiting* (env
  KDLAB_QUEUE_PER_CLIENT, default 4, 0 = no limit), so a script opening many sessions cannot fill the queue.
  Behind a reverse proxy every client has the proxy's address: there, set it to 0 (or pass the forwarded
  address as ``client`` if the proxy is trusted), or one busy student would block the whole class.
* ``max_queue`` bounds the whole queue; the queue stays FIFO across sessions.
"""
from __future__ import annotations

import itertools
import logging
import math
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
# A job is one Run (a teacher and up to two students, each training bounded by TrainConfig.max_seconds = 600 s)
# or one experiment. The heaviest built-in one, temperature-size on Fashion-MNIST, took 298 s (docs/RESULTS.md)
# and a digits run takes seconds; 15 minutes leaves room for one torch thread per job on a shared CPU, yet a job
# too big for a lesson gives its worker back within a quarter of an hour. 0 = no bound.
DEFAULT_JOB_SECONDS = 900.0
# Waiting jobs per client address. A session has one job at most, so this is "sessions of one machine waiting at
# once": a student with a few tabs is served, a script with 200 sessions gets 4 places in line.
DEFAULT_QUEUED_PER_CLIENT = 4


class Busy(KdlabError):
    """The owner already has an active job: ``job`` (so a page can show it and offer to stop it)."""

    def __init__(self, job: "Job"):
        self.job = job
        super().__init__(f"you already have a run in progress: {job.describe()}; stop it or wait until it "
                         f"finishes, then start the next one")


class QueueFull(KdlabError):
    """The queue (of the whole server, or of one client address) has no room for another job."""


@dataclass(eq=False)  # a job is equal only to itself: queue lookups by identity, never field by field
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
    owner: str | None = None  # the browser session that submitted it (None: no per-owner rule)
    client: str | None = None  # the client's address (None: no per-client rule)
    max_seconds: float | None = None  # wall-time bound once running; None: none
    stop_reason: str = ""  # why should_stop() turned true: "stopped", "session closed" or "time limit"
    _stop: threading.Event = field(default_factory=threading.Event)
    _last_alive_check: float = 0.0
    _done: threading.Event = field(default_factory=threading.Event)

    def stop(self, reason: str = "stopped") -> None:
        if not self._stop.is_set():
            self.stop_reason = reason
        self._stop.set()

    def should_stop(self) -> bool:
        if self._stop.is_set():
            return True
        now = time.monotonic()
        if self.max_seconds and self.started is not None and now - self.started > self.max_seconds:
            log.info("job %s: time limit of %g s reached; stopping", self.id, self.max_seconds)
            self.stop("time limit")
        elif now - self._last_alive_check >= ALIVE_CHECK_SECONDS:
            self._last_alive_check = now
            if not self.alive():
                log.info("job %s: its session is gone; stopping", self.id)
                self.stop("session closed")
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

    def elapsed(self) -> float:
        """Seconds in its current state: waiting while queued, running once started, total once finished."""
        now = time.monotonic()
        if self.status == "queued":
            return now - self.submitted
        return (self.finished or now) - (self.started or self.submitted)

    def describe(self) -> str:
        """One clause for messages: "'distill', running for 1 min 05 s"."""
        state = {"queued": "waiting in the queue", "running": "running"}.get(self.status, self.status)
        stopping = ", stopping" if self._stop.is_set() and self.active else ""
        return f"{self.label or 'a run'!r}, {state} for {_duration(self.elapsed())}{stopping}"


class JobPool:
    def __init__(self, size: int | None = None, max_queue: int = 200, *, max_queued_per_client: int | None = None,
                 job_seconds: float | None = None):
        """``max_queued_per_client`` and ``job_seconds`` default to env KDLAB_QUEUE_PER_CLIENT and
        KDLAB_JOB_SECONDS; 0 switches either off."""
        self.size = size or default_workers()
        self.max_queue = max_queue  # beyond this, refuse: a queue nobody will live to see is no service
        self.max_queued_per_client = (default_queued_per_client() if max_queued_per_client is None
                                      else max(0, int(max_queued_per_client)))
        self.job_seconds = default_job_seconds() if job_seconds is None else max(0.0, float(job_seconds))
        self._queue: deque[Job] = deque()
        self._cond = threading.Condition()
        self._ids = itertools.count(1)
        self._running: set[int] = set()
        self._active: dict[str, Job] = {}  # owner -> its queued or running job
        self._threads = [threading.Thread(target=self._work, name=f"kdlab-worker-{i}", daemon=True)
                         for i in range(self.size)]
        for t in self._threads:
            t.start()

    def submit(self, fn: Callable[[Job], Any], *, alive: Callable[[], bool] = lambda: True, label: str = "",
               owner: str | None = None, client: str | None = None) -> Job:
        """Queue ``fn(job)``. Raises ``Busy`` if ``owner`` has an active job, ``QueueFull`` if the queue (or
        ``client``'s share of it) is full; the jobs already queued are untouched either way."""
        self._drop_stopped_queued()  # a stopped or abandoned job must not hold its owner's place or a slot
        with self._cond:
            if owner is not None and (mine := self._active.get(owner)) is not None and mine.active:
                raise Busy(mine)
            if len(self._queue) >= self.max_queue:
                raise QueueFull(f"the server is busy ({len(self._queue)} runs waiting); try again in a minute")
            if client is not None and self.max_queued_per_client:
                waiting = sum(1 for j in self._queue if j.client == client)
                if waiting >= self.max_queued_per_client:
                    raise QueueFull(f"{waiting} runs from your address are already waiting (the limit per address, "
                                    f"KDLAB_QUEUE_PER_CLIENT); wait until one of them starts")
            limit = self.job_seconds or None
            job = Job(fn, alive, label, next(self._ids), owner=owner, client=client, max_seconds=limit)
            self._queue.append(job)
            if owner is not None:
                self._active[owner] = job
            self._cond.notify()
        return job

    def active_for(self, owner: str) -> Job | None:
        """The owner's queued or running job, if any."""
        with self._cond:
            job = self._active.get(owner)
        return job if job is not None and job.active else None

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

    def _drop_stopped_queued(self) -> None:
        with self._cond:
            queued = list(self._queue)
        doomed = [j for j in queued if j.should_stop()]  # outside the lock: alive() is the UI's code
        if not doomed:
            return
        with self._cond:
            for job in doomed:
                if job in self._queue:  # a worker may have taken it meanwhile: then it ends as usual
                    self._queue.remove(job)
                    job.status, job.finished = "stopped", time.monotonic()
                    self._release(job)
                    job._done.set()

    def _release(self, job: Job) -> None:  # under self._cond
        if job.owner is not None and self._active.get(job.owner) is job:
            del self._active[job.owner]

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
                    self._release(job)
                job._done.set()  # after the release: a waiter may submit the owner's next job at once

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
        if job.stop_reason == "time limit" and job.status == "stopped":
            job.error = (f"time limit: the run was stopped after {_duration(job.max_seconds or 0)}, the most one run "
                         f"may take on this server (KDLAB_JOB_SECONDS)")
        job.finished = time.monotonic()


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds} s" if seconds < 60 else f"{seconds // 60} min {seconds % 60:02d} s"


def default_workers() -> int:
    """KDLAB_WORKERS, else one worker per core."""
    raw = os.environ.get("KDLAB_WORKERS", "")
    try:
        n = int(raw) if raw else (os.cpu_count() or 1)
    except ValueError:
        n = os.cpu_count() or 1
    return max(1, min(n, 64))


def default_job_seconds() -> float:
    """KDLAB_JOB_SECONDS (0 = no bound), else DEFAULT_JOB_SECONDS."""
    raw = os.environ.get("KDLAB_JOB_SECONDS", "")
    try:
        value = float(raw) if raw else DEFAULT_JOB_SECONDS
    except ValueError:
        log.warning("KDLAB_JOB_SECONDS=%r is not a number; using %g", raw, DEFAULT_JOB_SECONDS)
        return DEFAULT_JOB_SECONDS
    return value if math.isfinite(value) and value > 0 else 0.0


def default_queued_per_client() -> int:
    """KDLAB_QUEUE_PER_CLIENT (0 = no limit), else DEFAULT_QUEUED_PER_CLIENT."""
    raw = os.environ.get("KDLAB_QUEUE_PER_CLIENT", "")
    try:
        return max(0, int(raw)) if raw else DEFAULT_QUEUED_PER_CLIENT
    except ValueError:
        log.warning("KDLAB_QUEUE_PER_CLIENT=%r is not a whole number; using %d", raw, DEFAULT_QUEUED_PER_CLIENT)
        return DEFAULT_QUEUED_PER_CLIENT
