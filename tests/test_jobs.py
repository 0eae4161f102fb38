"""Tests for kdlab.serve.jobs: a bounded FIFO worker pool with visible queue places, stop, abandonment, failures,
and fair sharing (one active job per owner, a queue bound per client address, a wall-time bound per job).

Jobs here are small functions coordinated with threading.Events, so every ordering is deterministic."""
from __future__ import annotations

import threading
import time

import pytest

from kdlab.serve import jobs
from kdlab.base.errors import ConfigError, KdlabError
from kdlab.serve.jobs import Busy, Job, JobPool, QueueFull, default_job_seconds, default_queued_per_client, \
    default_workers

WAIT = 10  # seconds: generous upper bounds, never sleeps


pytestmark = pytest.mark.usefixtures("kdlab_cache", "torch_one_thread")


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


def _endless_training(digits):
    """A job body: a real training run on digits for 10 000 epochs, ended by the job's Stop or time limit; it
    returns how the run ended."""
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
    return body


def test_a_real_training_run_through_the_pool(digits):
    """The pool and the engine together: should_stop reaches the training loop."""
    body = _endless_training(digits)

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


# ------------------------------------------------------------------------------------------- fair sharing
# Issue 10, failure 1: one session held both workers (Distill and Sweep at once), one script queued 200 jobs.


def test_one_active_job_per_owner_and_the_refusal_names_it():
    pool = JobPool(size=2)
    gate = Gate(name="first")
    first = pool.submit(gate, label="distill", owner="session-a", client="10.0.0.1")
    gate.started.wait(WAIT)
    with pytest.raises(Busy) as refused:  # e.g. Sweep while Distill runs, on another page of the same session
        pool.submit(lambda j: "second", label="sweep", owner="session-a", client="10.0.0.1")
    assert refused.value.job is first and isinstance(refused.value, KdlabError)
    assert "'distill'" in str(refused.value) and "running for" in str(refused.value)
    assert pool.active_for("session-a") is first and pool.active_for("session-b") is None
    other = pool.submit(lambda j: "other session", owner="session-b")  # the free worker serves someone else
    assert other.wait(WAIT) and other.result == "other session"
    assert first.status == "running" and pool.stats()["queued"] == 0  # the refused job never entered the queue
    gate.release()
    assert first.wait(WAIT) and first.status == "done" and first.result == "first"  # untouched by the refusal
    assert pool.active_for("session-a") is None
    again = pool.submit(lambda j: "next", owner="session-a")  # once it ended, the owner may run again
    assert again.wait(WAIT) and again.result == "next"


def test_a_queued_job_also_counts_and_stopping_it_frees_the_owner_at_once():
    pool = JobPool(size=1)
    blocker = Gate()
    pool.submit(blocker, owner="someone-else")
    blocker.started.wait(WAIT)
    never = Gate()
    queued = pool.submit(never, label="distill", owner="session-a")
    with pytest.raises(Busy, match="'distill', waiting in the queue for"):
        pool.submit(lambda j: None, owner="session-a")
    queued.stop()  # the Stop button the refusal offers: the owner must not wait for the job to reach a worker
    replacement = pool.submit(lambda j: "replacement", owner="session-a")
    assert queued.wait(WAIT) and queued.status == "stopped" and pool.position(queued) == 0
    assert pool.position(replacement) == 1
    blocker.release()
    assert replacement.wait(WAIT) and replacement.result == "replacement" and not never.started.is_set()


def test_a_closed_tabs_queued_job_does_not_hold_a_place():
    pool = JobPool(size=1, max_queued_per_client=1)
    blocker = Gate()
    pool.submit(blocker)
    blocker.started.wait(WAIT)
    connected = [True]
    pool.submit(lambda j: None, alive=lambda: connected[0], owner="tab-1", client="10.0.0.7")
    with pytest.raises(QueueFull):
        pool.submit(lambda j: None, owner="tab-2", client="10.0.0.7")
    connected[0] = False  # the tab closed while its job waited
    time.sleep(jobs.ALIVE_CHECK_SECONDS + 0.05)
    reopened = pool.submit(lambda j: "reopened", owner="tab-2", client="10.0.0.7")
    assert pool.position(reopened) == 1 and pool.stats()["queued"] == 1
    blocker.release()
    assert reopened.wait(WAIT) and reopened.result == "reopened"


def test_queued_jobs_per_client_are_bounded_and_others_still_get_in():
    pool = JobPool(size=1, max_queued_per_client=2)
    blocker = Gate()
    running = pool.submit(blocker, owner="s0", client="10.0.0.9")
    blocker.started.wait(WAIT)  # a running job is not waiting: it does not count
    script = [pool.submit(lambda j: None, owner=f"s{i}", client="10.0.0.9") for i in (1, 2)]
    with pytest.raises(QueueFull, match="2 runs from your address are already waiting.*KDLAB_QUEUE_PER_CLIENT"):
        pool.submit(lambda j: None, owner="s3", client="10.0.0.9")  # a new session of the same machine
    student = pool.submit(lambda j: "student", owner="s4", client="10.0.0.10")
    assert [pool.position(j) for j in (*script, student)] == [1, 2, 3]
    assert running.status == "running" and all(j.status == "queued" for j in script)
    blocker.release()
    assert student.wait(WAIT) and student.result == "student"
    assert all(j.wait(WAIT) and j.status == "done" for j in script)


def test_zero_switches_the_client_bound_off():
    """Behind a reverse proxy every client has the proxy's address: the bound must be able to go."""
    pool = JobPool(size=1, max_queued_per_client=0)
    blocker = Gate()
    pool.submit(blocker)
    blocker.started.wait(WAIT)
    waiting = [pool.submit(lambda j: None, owner=f"s{i}", client="127.0.0.1") for i in range(10)]
    assert pool.stats()["queued"] == 10
    blocker.release()
    assert all(j.wait(WAIT) for j in waiting)


def test_the_server_wide_bound_stays_and_refuses_without_touching_the_queue():
    pool = JobPool(size=1, max_queue=3, max_queued_per_client=0)
    blocker = Gate()
    pool.submit(blocker)
    blocker.started.wait(WAIT)
    waiting = [pool.submit(lambda j: None, owner=f"s{i}", client=f"10.0.0.{i}") for i in range(3)]
    with pytest.raises(QueueFull, match="server is busy"):
        pool.submit(lambda j: None, owner="s9", client="10.0.0.99")
    assert [pool.position(j) for j in waiting] == [1, 2, 3]
    blocker.release()
    assert all(j.wait(WAIT) and j.status == "done" for j in waiting)


def test_fifo_across_sessions_and_clients():
    pool = JobPool(size=1, max_queued_per_client=2)
    started: list[str] = []
    blocker = Gate(started, "blocker")
    pool.submit(blocker, owner="s-blocker", client="10.0.0.1")
    blocker.started.wait(WAIT)
    order = [("a", "10.0.0.1"), ("b", "10.0.0.2"), ("c", "10.0.0.1"), ("d", "10.0.0.3"), ("e", "10.0.0.2")]
    submitted = [pool.submit(Gate(started, name), owner=f"s-{name}", client=client) for name, client in order]
    for job in submitted:
        job.fn.release()
    blocker.release()
    assert all(j.wait(WAIT) for j in submitted)
    assert started == ["blocker", "a", "b", "c", "d", "e"]


def test_a_job_ends_at_its_time_limit():
    pool = JobPool(size=1, job_seconds=0.3)
    blocker = Gate()
    first = pool.submit(blocker, label="long")
    blocker.started.wait(WAIT)
    second = pool.submit(lambda j: "quick" if not j.should_stop() else "cut")  # waits about as long as the limit
    assert first.wait(WAIT)
    assert first.status == "stopped" and first.stop_reason == "time limit" and first.result == "stopped early"
    assert first.error.startswith("time limit") and "KDLAB_JOB_SECONDS" in first.error
    assert 0.3 <= first.finished - first.started < 0.3 + 2.0
    assert second.wait(WAIT) and second.started - second.submitted >= 0.25  # waiting does not count, running does
    assert second.status == "done" and second.result == "quick" and second.error == ""


def test_a_real_training_run_ends_at_the_jobs_time_limit(digits):
    body = _endless_training(digits)

    pool = JobPool(size=1, job_seconds=0.5)
    job = pool.submit(body)
    assert job.wait(WAIT)
    assert job.status == "stopped" and job.stop_reason == "time limit"
    assert job.result == "stopped" and "time limit" in job.error


@pytest.mark.parametrize("env, expected", [("", jobs.DEFAULT_JOB_SECONDS), ("120", 120.0), ("0", 0.0),
                                           ("-5", 0.0), ("nan", 0.0), ("soon", jobs.DEFAULT_JOB_SECONDS)])
def test_job_seconds_from_the_environment(monkeypatch, env, expected):
    monkeypatch.setenv("KDLAB_JOB_SECONDS", env)
    assert default_job_seconds() == expected
    assert JobPool(size=1).job_seconds == expected


@pytest.mark.parametrize("env, expected", [("", jobs.DEFAULT_QUEUED_PER_CLIENT), ("0", 0), ("9", 9), ("-1", 0),
                                           ("x", jobs.DEFAULT_QUEUED_PER_CLIENT)])
def test_queued_per_client_from_the_environment(monkeypatch, env, expected):
    monkeypatch.setenv("KDLAB_QUEUE_PER_CLIENT", env)
    assert default_queued_per_client() == expected


def test_without_owner_or_client_nothing_changes_for_old_callers():
    """kdlab/ui/runner.py calls submit(fn, alive=..., label=...): no owner, no client, no per-session rule."""
    pool = JobPool(size=1)
    blocker = Gate()
    pool.submit(blocker, alive=lambda: True, label="x")
    blocker.started.wait(WAIT)
    more = [pool.submit(lambda j: None, alive=lambda: True, label="x") for _ in range(6)]
    blocker.release()
    assert all(j.wait(WAIT) and j.status == "done" for j in more)
