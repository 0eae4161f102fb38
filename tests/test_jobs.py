"""Tests for kdlab.serve.jobs: a bounded FIFO worker pool with visible queue places, stop, abandonment, failures.

Jobs here are small functions coordinated with threading.Events, so every ordering is deterministic."""
from __future__ import annotations

import threading
import time

import pytest

from kdlab.serve import jobs
from kdlab.base.errors import ConfigError, KdlabError
from kdlab.serve.jobs import Job, JobPool, default_workers

WAIT = 10  # seconds: generous upper bounds, never sleeps


@pytest.fixture(autouse=True)
def _isolated(kdlab_cache, torch_one_thread):
    pass


def wait_until(predicate, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


class Gate:
    """A job body that says when it started and then waits for ``release()`` (or a stop)."""

    def __init__(self, log=None, name=""):
        self.started, self.go = threading.Event(), threading.Event()
        self.log, self.name = log, name

    def __call__(self, job: Job):
        if self.log is not None:
            self.log.append(self.name)
        self.started.set()
        while not self.go.wait(0.005):
            if job.should_stop():
                return "stopped early"
        return self.name

    def release(self):
        self.go.set()


def test_more_jobs_than_workers_all_finish_in_fifo_order():
    pool = JobPool(size=2)
    started: list[str] = []
    gates = {name: Gate(started, name) for name in "abcdef"}
    submitted = [pool.submit(gates[name], label=name) for name in "abcdef"]
    gates["a"].started.wait(WAIT)
    gates["b"].started.wait(WAIT)
    wait_until(lambda: pool.stats()["running"] == 2)
    assert pool.stats() == {"workers": 2, "running": 2, "queued": 4}
    assert [pool.position(j) for j in submitted] == [0, 0, 1, 2, 3, 4]
    assert [j.status for j in submitted] == ["running", "running", "queued", "queued", "queued", "queued"]

    gates["b"].release()  # the second worker frees up: the oldest waiting job (c) gets it, not a later one
    gates["c"].started.wait(WAIT)
    assert started == ["a", "b", "c"]
    assert [pool.position(j) for j in submitted[2:]] == [0, 1, 2, 3]
    gates["a"].release()
    gates["d"].started.wait(WAIT)
    assert started == ["a", "b", "c", "d"]
    for name in "cdef":
        gates[name].release()
    for j in submitted:
        assert j.wait(WAIT)
    assert started == list("abcdef")
    assert [j.status for j in submitted] == ["done"] * 6
    assert [j.result for j in submitted] == list("abcdef")
    assert [j.id for j in submitted] == sorted(j.id for j in submitted)
    assert all(j.submitted <= j.started <= j.finished for j in submitted)
    assert pool.stats() == {"workers": 2, "running": 0, "queued": 0}


def test_never_more_running_than_workers():
    pool = JobPool(size=2)
    lock, running, peak = threading.Lock(), [0], [0]

    def body(job):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.02)
        with lock:
            running[0] -= 1

    submitted = [pool.submit(body) for _ in range(8)]
    assert all(j.wait(WAIT) for j in submitted)
    assert peak[0] == 2 and all(j.status == "done" for j in submitted)


def test_stop_on_a_queued_job_means_it_never_runs():
    pool = JobPool(size=1)
    blocker, never = Gate(), Gate()
    first = pool.submit(blocker)
    blocker.started.wait(WAIT)
    queued = pool.submit(never)
    assert pool.position(queued) == 1
    queued.stop()
    blocker.release()
    assert queued.wait(WAIT) and first.wait(WAIT)
    assert queued.status == "stopped" and not never.started.is_set()
    assert first.status == "done"
    assert pool.position(queued) == 0


def test_stop_on_a_running_job_ends_it_promptly():
    pool = JobPool(size=1)
    gate = Gate()
    job = pool.submit(gate)
    gate.started.wait(WAIT)
    assert job.status == "running" and job.active
    t0 = time.monotonic()
    job.stop()
    assert job.wait(WAIT)
    assert time.monotonic() - t0 < 1.0
    assert job.status == "stopped" and not job.finished_ok and not job.active
    assert job.result == "stopped early"
    after = pool.submit(lambda j: "still working")  # the worker is free again
    assert after.wait(WAIT) and after.result == "still working"


def test_an_abandoned_session_stops_its_job():
    pool = JobPool(size=1)
    connected = [True]
    gate = Gate()
    job = pool.submit(gate, alive=lambda: connected[0])
    gate.started.wait(WAIT)
    time.sleep(0.05)
    assert job.status == "running"
    t0 = time.monotonic()
    connected[0] = False  # the browser tab closed
    assert job.wait(WAIT)
    assert time.monotonic() - t0 < jobs.ALIVE_CHECK_SECONDS + 1.0
    assert job.status == "stopped"


def test_an_abandoned_queued_job_never_runs():
    pool = JobPool(size=1)
    blocker, never = Gate(), Gate()
    pool.submit(blocker)
    blocker.started.wait(WAIT)
    job = pool.submit(never, alive=lambda: False)
    blocker.release()
    assert job.wait(WAIT) and job.status == "stopped" and not never.started.is_set()


@pytest.mark.parametrize("error, status_message", [
    (ConfigError("temperature must be > 0"), "temperature must be > 0"),
    (KdlabError("the loss became nan"), "the loss became nan"),
    (ZeroDivisionError("division by zero"), "ZeroDivisionError: division by zero"),
    (KeyError("oops"), "KeyError: 'oops'"),
])
def test_a_failing_job_is_reported_and_the_worker_survives(error, status_message, caplog):
    pool = JobPool(size=1)

    def fail(job):
        raise error

    bad = pool.submit(fail)
    good = pool.submit(lambda job: 42)
    assert bad.wait(WAIT) and good.wait(WAIT)
    assert bad.status == "failed" and bad.error == status_message and bad.result is None
    assert good.status == "done" and good.result == 42
    if not isinstance(error, KdlabError):
        assert any("failed" in r.getMessage() and r.exc_info for r in caplog.records)  # a bug keeps its traceback


def test_a_kdlab_error_after_stop_counts_as_stopped():
    """E.g. RunStopped raised by a run whose user clicked Stop: not a failure."""
    pool = JobPool(size=1)

    def body(job):
        while not job.should_stop():
            time.sleep(0.005)
        raise KdlabError("stopped before finishing an epoch")

    job = pool.submit(body)
    wait_until(lambda: job.status == "running")
    job.stop()
    assert job.wait(WAIT) and job.status == "stopped"


def test_events_are_bounded():
    pool = JobPool(size=1)

    def chatty(job):
        for i in range(jobs.MAX_EVENTS + 10):
            job.emit(i)

    job = pool.submit(chatty)
    assert job.wait(WAIT)
    assert len(job.events) == jobs.MAX_EVENTS and job.events[0] == 10 and job.events[-1] == jobs.MAX_EVENTS + 9


def test_a_full_queue_refuses_politely():
    pool = JobPool(size=1, max_queue=2)
    gate = Gate()
    pool.submit(gate)
    gate.started.wait(WAIT)
    pool.submit(lambda j: None)
    pool.submit(lambda j: None)
    with pytest.raises(KdlabError, match="busy"):
        pool.submit(lambda j: None)
    gate.release()


def test_a_real_training_run_through_the_pool(digits):
    """The pool and the engine together: should_stop reaches the training loop."""
    from kdlab.base.config import TrainConfig
    from kdlab.training.engine import Split, train
    from kdlab.training.losses import make_loss
    from kdlab.training.models import build_model

    def body(job):
        model = build_model("mlp:32", digits.input_shape, digits.num_classes)
        for event in train(model, Split(digits.x_train, digits.y_train), make_loss("hinton", alpha=0.0),
                           TrainConfig(epochs=10_000), should_stop=job.should_stop):
            job.emit(event)
        return job.events[-1].reason

    pool = JobPool(size=1)
    job = pool.submit(body)
    wait_until(lambda: len(job.events) >= 3)
    job.stop()
    assert job.wait(WAIT)
    assert job.status == "stopped" and job.result == "stopped"


@pytest.mark.parametrize("env, expected", [("3", 3), ("0", 1), ("1000", 64), ("lots", None), ("", None)])
def test_default_workers(monkeypatch, env, expected):
    import os

    monkeypatch.setenv("KDLAB_WORKERS", env)
    assert default_workers() == (expected if expected is not None else max(1, min(os.cpu_count() or 1, 64)))
