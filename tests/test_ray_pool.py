"""kdlab.serve.ray_pool: the app's jobs on a private local Ray (conftest's ``ray_cluster``): events stream back,
Stop and a closed session end the remote work, errors read as on the local pool, the queue still shows a
place; and pages/1_Distill.py in AppTest with its job on Ray."""
from __future__ import annotations

import os
import time

import pytest

from kdlab.base.errors import ConfigError
from kdlab.serve.ray_cluster import RayUnavailable
from kdlab.serve.ray_pool import RayJobPool


@pytest.fixture(scope="module")
def pool(ray_cluster):
    return RayJobPool(ray_cluster)


def _ticker(n: int = 200, pause: float = 0.02):
    """A job of ``n`` ticks that stops when told; returns where it ended and on which process. A closure, so
    Ray ships it by value (a worker never imports this test module)."""
    def fn(job):
        for i in range(n):
            if job.should_stop():
                return {"ended_at": i, "pid": os.getpid()}
            job.emit(("tick", i))
            time.sleep(pause)
        return {"ended_at": n, "pid": os.getpid()}
    return fn


def _wait_for_events(job, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not job.events and time.monotonic() < deadline:
        time.sleep(0.05)
    assert job.events, f"no event from the remote job within {timeout} s"


def test_a_job_runs_on_a_worker_and_its_events_stream_back(pool):
    job = pool.submit(_ticker(20, 0.0), label="ticks")
    assert job.wait(60) and job.status == "done", job.error
    assert job.result["ended_at"] == 20 and job.result["pid"] != os.getpid()
    assert list(job.events) == [("tick", i) for i in range(20)]  # every one, in order


@pytest.mark.parametrize("how", ["stop", "session gone"])
def test_stop_and_a_closed_session_end_the_remote_work(pool, how):
    connected = [True]
    job = pool.submit(_ticker(), alive=lambda: connected[0])  # 200 ticks: ~4 s if nobody stops it
    _wait_for_events(job)
    t0 = time.monotonic()
    if how == "stop":
        job.stop()
    else:
        connected[0] = False
    assert job.wait(10) and job.status == "stopped"
    assert time.monotonic() - t0 < 3  # the worker saw the flag within a few polls
    assert job.result["ended_at"] < 200 and job.result["ended_at"] == len(job.events)


@pytest.mark.parametrize("retries", [1, 0])
def test_a_job_whose_worker_dies_starts_over_or_fails_clearly(ray_cluster, retries):
    import signal

    def fn(job):
        for i in range(150):
            if job.should_stop():
                break
            job.emit(("pid", os.getpid(), i))
            time.sleep(0.02)
        return os.getpid()

    job = RayJobPool(ray_cluster, size=1, retries=retries).submit(fn)
    _wait_for_events(job)
    first = job.events[0][1]
    os.kill(first, signal.SIGKILL)  # the worker process, mid-job
    assert job.wait(60), "the pool hung on a dead worker"
    if retries:  # started over on a new worker: the page's events start over with it
        assert job.status == "done" and job.result != first and job.events[0] == ("pid", job.result, 0)
    else:
        assert job.status == "failed" and "worker running this job died" in job.error and "\n" not in job.error


def test_errors_read_as_on_the_local_pool(pool):
    def config_error(job):
        raise ConfigError("the student needs at least one hidden layer")

    def bug(job):
        raise ValueError("a bug")

    a, b = pool.submit(config_error), pool.submit(bug)
    assert a.wait(60) and b.wait(60)
    assert (a.status, a.error) == ("failed", "the student needs at least one hidden layer")
    assert b.status == "failed" and "ValueError" in b.error and "a bug" in b.error


def test_more_jobs_than_cpus_wait_in_line_with_a_place(pool):
    jobs = [pool.submit(_ticker(3000, 0.01)) for _ in range(3)]  # two CPUs: the third waits
    try:
        for job in jobs[:2]:
            _wait_for_events(job)
        assert jobs[2].status == "queued" and pool.position(jobs[2]) == 1
        stats = pool.stats()
        assert (stats["workers"], stats["running"], stats["queued"]) == (2, 2, 1)
    finally:
        for job in jobs:
            job.stop()
    assert all(job.wait(20) for job in jobs)
    assert jobs[2].status == "stopped" and not jobs[2].events  # stopped while queued: it never ran


def test_the_app_takes_its_pool_from_KDLAB_RAY_ADDRESS(ray_cluster, monkeypatch):
    from kdlab.ui import process

    monkeypatch.setattr(process, "_threads_set", True)  # this test runs no job: leave torch's threads alone
    monkeypatch.setattr(process, "_pool", None)
    monkeypatch.setenv("KDLAB_RAY_ADDRESS", "local")  # Ray is up in this process: the pool uses it
    assert isinstance(process.pool(), RayJobPool) and process.pool().size == 2
    monkeypatch.setattr(process, "_pool", None)
    monkeypatch.setenv("KDLAB_RAY_ADDRESS", "127.0.0.1:1")
    with pytest.raises(RayUnavailable, match="cannot reach"):
        process.pool()
    monkeypatch.delenv("KDLAB_RAY_ADDRESS")
    assert type(process.pool()) is not RayJobPool


# --- pages/1_Distill.py with its job on Ray (as tests/test_app_distill.py drives it locally) ---


def _distill_on_ray(app, pool, monkeypatch, **params):
    from kdlab.ui import process

    monkeypatch.setattr(process, "_pool", pool)
    app.query_params.update({"teacher": "mlp:64", **params})
    app.switch_page("pages/1_Distill.py").run()
    assert not app.exception
    return app


def test_a_distill_job_on_ray_shows_its_results(app, finish_jobs, pool, ray_cluster, monkeypatch):
    at = _distill_on_ray(app, pool, monkeypatch, steps="200", student="mlp:16", transfer_size="0")
    at.button(key="run").click().run()
    job = at.session_state["kd.job.distill"]
    finish_jobs(at)
    assert not at.exception and not at.error and job.status == "done"
    table = at.table[0].value
    assert list(table.index) == ["teacher", "distilled student", "scratch student"]
    assert all(float(v) > 50 for v in table["test accuracy (%)"])  # far above chance (10 %)
    assert any("cm_diff" in c.proto.id for c in at.get("plotly_chart"))
    assert {role for _, role, _ in job.events} == {"teacher", "distilled", "scratch"}  # streamed from the worker
    # the teacher was trained on a worker: it is in the workers' cache folder
    assert [p for p in (ray_cluster.worker_cache / "teachers").iterdir() if not p.name.startswith(".")]


def test_stop_on_the_page_ends_the_remote_run(app, finish_jobs, pool, monkeypatch):
    at = _distill_on_ray(app, pool, monkeypatch, steps="5000", student="mlp:512-512", transfer_size="0")  # ~10 s
    at.button(key="run").click().run()
    job = at.session_state["kd.job.distill"]
    deadline = time.monotonic() + 60
    while not any(role == "distilled" for _, role, _ in list(job.events)) and time.monotonic() < deadline:
        time.sleep(0.05)  # the student is training on the worker
    t0 = time.monotonic()
    at.button(key="stop.distill").click().run()
    assert job.wait(10) and job.status == "stopped"
    assert time.monotonic() - t0 < 5  # the worker stopped on the flag, not on the cancel after a grace time
    steps = [ev.step for _, role, ev in job.events if role == "distilled"]
    assert not steps or max(steps) < 5000
    finish_jobs(at)
    assert not at.exception and not at.error
    assert "kd.job.distill" not in at.session_state and not at.button(key="run").disabled


def test_the_sweep_page_runs_its_job_on_ray(app, finish_jobs, pool, monkeypatch):
    at = _distill_on_ray(app, pool, monkeypatch, steps="30", student="mlp:16")  # the sweep uses the lab's pair
    at.switch_page("pages/3_Sweep.py").run()
    at.multiselect(key="sweep.temperatures").set_value([1.0, 4.0]).run()
    at.multiselect(key="sweep.alphas").set_value([0.9]).run()
    at.button(key="run_sweep").click().run()
    job = at.session_state["kd.job.sweep"]
    finish_jobs(at)
    assert not at.exception and not at.error and job.status == "done"
    assert len(at.dataframe[0].value) == 2 and [r for r, _ in job.events].count("cell") == 2
    assert any("sweep_gain" in c.proto.id for c in at.get("plotly_chart"))
