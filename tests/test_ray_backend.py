"""kdlab.serve.ray_backend (with ray_data and ray_hub) on a private local Ray (conftest's ``ray_cluster``): the
same rows and results as a local run, the teacher trained once on the driver, the dataset shared once, parallel
chunks, progress summed over them, stop (and the stopped runs kept), a killed worker; and the Ray benchmark."""
from __future__ import annotations

import os
import signal
import time

import pytest
import torch
import ray

from kdlab import experiments as ex
from kdlab.base.config import DistillConfig, TrainConfig
from kdlab.base.errors import ConfigError, KdlabError
from kdlab.runs.batch import Run, run_all
from kdlab.runs.sweep import run_sweep
from kdlab.serve import ray_data, ray_hub
from kdlab.serve.ray_backend import executor, run_all_on_ray, split
from kdlab.serve.ray_cluster import RayWorkerLost

BASE = DistillConfig(teacher="mlp:32", student="mlp:8", train=TrainConfig(epochs=1, lr=3e-3),
                     teacher_train=TrainConfig(epochs=2))
GRID = ([1.0, 4.0], [0.5, 0.9], [0, 1])  # 8 cells, 2 scratch runs


def _without(d, keys):
    return {k: v for k, v in d.items() if k not in keys}


def _same(row):
    return _without(row, ("seconds",))  # wall time is the one column that may differ


def _long(seed: int) -> Run:
    """A run of a few seconds (an 800-step budget of a wide student), so a kill surely lands mid-task: the kill
    comes within a poll (0.1 s) of the task's start."""
    cfg = BASE.replace(student="mlp:256-256", train=TrainConfig(steps=800, lr=1e-3, seed=seed))
    return Run(seed, cfg, scratch=False)


def test_a_sweep_on_ray_gives_the_local_rows_with_one_teacher(ray_cluster, digits, kdlab_cache, torch_one_thread):
    local = run_sweep(BASE, *GRID, data=digits)
    starts, roles = [], []
    rows = run_sweep(BASE, *GRID, data=digits, on_progress=lambda role, ev: roles.append(role),
                     executor=executor(ray_cluster, on_attempt=starts.append))
    assert [_same(r) for r in rows] == [_same(r) for r in local]
    assert len(rows) == 8 and roles.count("cell") == 8 and "distilled" in roles and "scratch" in roles
    # two chunks, one per CPU, on workers (not this process)
    assert sorted(a.part for a in starts) == [0, 1] and all(a.attempt == 1 for a in starts)
    assert os.getpid() not in {a.pid for a in starts}
    # the teacher: trained once, here (one cache entry); the workers neither trained nor stored one
    assert len([p for p in (kdlab_cache / "teachers").iterdir() if not p.name.startswith(".")]) == 1
    assert not (ray_cluster.worker_cache / "teachers").exists()


def test_the_chunks_train_at_the_same_time_on_two_workers(ray_cluster, digits, kdlab_cache):
    """Two runs that would take hours, stopped once both have started: neither can end before the other
    begins, so two starts on two processes mean two chunks trained at once."""
    endless = [Run(i, BASE.replace(train=TrainConfig(steps=1_000_000, seed=i)), scratch=False) for i in (1, 2)]
    starts = []
    deadline = time.monotonic() + 60
    t0 = time.monotonic()
    run_all_on_ray(endless, digits, cluster=ray_cluster, parts=2, on_attempt=starts.append,
                   should_stop=lambda: len(starts) == 2 or time.monotonic() > deadline)
    assert len(starts) == 2 and len({a.pid for a in starts}) == 2
    assert time.monotonic() - t0 < 60


def test_the_hub_never_imports_torch(ray_cluster, digits, kdlab_cache):
    run_all_on_ray([Run(0, BASE, scratch=False)], digits, cluster=ray_cluster)  # engine events went through it
    modules = ray.get(ray_cluster.hub.__ray_call__.remote(lambda hub: sorted(__import__("sys").modules)))
    assert "torch" not in modules and not [m for m in modules if m.startswith("kdlab.training")]


def test_events_travel_as_plain_tuples_and_come_back_as_events():
    from kdlab.training.engine import Event

    ev = Event("epoch", 2, 24, 48, {"test_accuracy": 0.5}, [{"epoch": 1}], "")
    message = ("cell", (ev, [ev, 3]), {"row": 1})
    assert "Event(kind=" in repr(message) and "Event(kind=" not in repr(ray_hub.plain(message))
    assert ray_hub.unplain(ray_hub.plain(message)) == message


def test_the_results_are_run_alls_with_this_processs_dataset_and_teacher(ray_cluster, digits, kdlab_cache,
                                                                          torch_one_thread):
    runs = [Run(i, BASE.replace(temperature=t), scratch=i == 0) for i, t in enumerate((1.0, 2.0, 4.0))]
    local = run_all(runs, digits)
    done = []
    remote = run_all_on_ray(runs, digits, cluster=ray_cluster, on_result=lambda key, r: done.append(key))
    assert list(remote) == [0, 1, 2] and sorted(done) == [0, 1, 2]
    for key, r in remote.items():
        assert r.distilled.test_accuracy == local[key].distilled.test_accuracy
        assert [_same(h) for h in r.distilled.history] == [_same(h) for h in local[key].distilled.history]
        assert torch.allclose(r.distilled.test_logits, local[key].distilled.test_logits, atol=1e-5)  # stacked or not: rounding
        assert r.dataset is digits and r.teacher.key == local[key].teacher.key
    assert remote[0].scratch.test_accuracy == local[0].scratch.test_accuracy and remote[1].scratch is None
    timings = ("seconds", "latency_s", "history")  # measured, not computed (history rows hold wall times)
    assert _without(remote[0].summary()["student"], timings) == _without(local[0].summary()["student"], timings)
    # the dataset went into the object store once, however many batches and tasks used it
    run_all_on_ray(runs[:1], digits, cluster=ray_cluster)
    assert ray_data.shared() == [digits]


def test_an_experiment_on_ray_reports_what_it_reports_locally(ray_cluster, digits, kdlab_cache, torch_one_thread):
    settings = dict(teacher="mlp:64", teacher_epochs=5, students=("mlp:10", "mlp:32"), temperatures=(1.0, 4.0),
                    steps=40)
    local = ex.run_experiment("temperature-size", dataset="digits", seeds=1, data=digits, **settings)
    events = []
    remote = ex.run_experiment("temperature-size", dataset="digits", seeds=1, data=digits,
                               executor=executor(ray_cluster), on_progress=lambda role, ev: events.append((role, ev)),
                               **settings)
    for arm in local["arms"]:
        assert remote["arms"][arm]["per_seed"] == local["arms"][arm]["per_seed"], arm
    assert remote["teacher"] == local["teacher"] | {"source": "memory"}  # the second run found it in memory
    # two chunks trained at once and their events interleaved: the experiment's bar still only moves forward
    steps = [ev.step for role, ev in events if role == "experiment"]
    assert steps == sorted(steps) and steps[-1] == events[-1][1].total_steps


def test_keep_stopped_returns_the_runs_a_stop_interrupted_as_run_all_does(ray_cluster, digits, kdlab_cache):
    runs = [Run(0, BASE, scratch=False), _long(1), _long(2)]  # chunks [0, 1] and [2]
    started, heard = set(), []

    def progress(key, role, event):
        if event.kind == "done" or (key != 0 and event.step > 0):
            started.add(key)

    out = run_all_on_ray(runs, digits, cluster=ray_cluster, parts=2, on_progress=progress, keep_stopped=True,
                         should_stop=lambda: started == {0, 1, 2}, on_result=lambda key, r: heard.append(key))
    assert list(out) == [0, 1, 2] and heard == [0]  # the stopped runs are kept, but were never reported done
    assert out[0].distilled.reason == "completed"
    assert [out[k].distilled.reason for k in (1, 2)] == ["stopped", "stopped"]
    assert all(0 < out[k].distilled.steps < 800 and out[k].dataset is digits for k in (1, 2))


def test_a_stop_ends_every_chunk_and_keeps_the_finished_runs(ray_cluster, digits, kdlab_cache):
    runs = [Run(0, BASE, scratch=False), _long(1), _long(2)]  # chunks [0, 1] and [2]
    first_done = []

    def progress(key, role, event):
        if key == 0 and event.kind == "done":
            first_done.append(key)

    t0 = time.monotonic()
    out = run_all_on_ray(runs, digits, cluster=ray_cluster, parts=2, on_progress=progress,
                         should_stop=lambda: bool(first_done))  # stop once the short run is done
    assert list(out) == [0] and out[0].distilled.reason == "completed"
    assert time.monotonic() - t0 < 30  # the long runs were stopped, not waited for


def test_a_kdlab_error_in_a_task_is_raised_as_itself(ray_cluster, digits, kdlab_cache):
    bad = Run(0, BASE.replace(eval_bias=((42, 1.0),)), scratch=False)  # checked against the data in run_distill
    with pytest.raises(ConfigError) as local:
        run_all([bad], digits)
    with pytest.raises(ConfigError) as remote:
        run_all_on_ray([bad], digits, cluster=ray_cluster)
    assert str(remote.value) == str(local.value) and "\n" not in str(remote.value)
    assert type(remote.value) is ConfigError  # not Ray's wrapper with a traceback for a message


def _kill_on_first_attempt(killed: list):
    def on_attempt(attempt):
        if attempt.part == 0 and attempt.attempt == 1:
            os.kill(attempt.pid, signal.SIGKILL)  # the worker process, mid-task
            killed.append(attempt.pid)
    return on_attempt


def test_a_killed_worker_is_retried_and_the_results_are_the_same(ray_cluster, digits, kdlab_cache, caplog,
                                                                 torch_one_thread):
    runs = [_long(1), Run(2, BASE, scratch=True)]  # part 0 is the long run
    killed, starts = [], []
    kill = _kill_on_first_attempt(killed)
    t0 = time.monotonic()
    out = run_all_on_ray(runs, digits, cluster=ray_cluster, parts=2, retries=1,
                         on_attempt=lambda a: (starts.append(a), kill(a)))
    assert time.monotonic() - t0 < 60
    assert len(killed) == 1 and [(a.part, a.attempt) for a in starts if a.part == 0] == [(0, 1), (0, 2)]
    assert "restarted (attempt 2)" in caplog.text
    local = run_all(runs, digits)
    assert {k: r.distilled.test_accuracy for k, r in out.items()} == \
        {k: r.distilled.test_accuracy for k, r in local.items()}


def test_a_worker_that_dies_past_its_retries_is_a_clear_error(ray_cluster, digits, kdlab_cache):
    killed = []
    t0 = time.monotonic()
    with pytest.raises(RayWorkerLost) as err:
        run_all_on_ray([_long(1)], digits, cluster=ray_cluster, retries=0, on_attempt=_kill_on_first_attempt(killed))
    assert time.monotonic() - t0 < 60 and killed
    message = str(err.value)
    assert "\n" not in message and "worker died" in message and "runs 1" in message


def test_split_balances_steps_and_keeps_the_order(digits):
    runs = [Run(i, BASE, scratch=i == 0) for i in range(16)]  # a 4 x 4 x 1 sweep: the first has a scratch twin
    chunks = split(runs, 2, digits)
    assert sorted(len(c) for c in chunks) == [8, 8] or sorted(len(c) for c in chunks) == [7, 9]
    work = sorted(sum(1 + r.scratch for r in c) for c in chunks)
    assert work == [8, 9]  # 17 trainings: as even as they can be
    assert all([r.key for r in c] == sorted(r.key for r in c) for c in chunks)
    assert sorted(r.key for c in chunks for r in c) == list(range(16))
    assert len(split(runs[:1], 8, digits)) == 1 and len(split(runs, 1, digits)) == 1


def test_a_stop_during_the_teacher_returns_nothing(ray_cluster, digits, kdlab_cache):
    assert run_all_on_ray([Run(0, BASE, scratch=True)], digits, cluster=ray_cluster, should_stop=lambda: True) == {}


def test_the_ray_benchmark_runs_both_arms_and_compares_their_rows(ray_cluster, digits, kdlab_cache, monkeypatch):
    """Its numbers are for people (kdlab bench --ray); here only that it runs, on digits and this module's Ray,
    and that the serial and Ray rows were compared (a difference is an error)."""
    from kdlab.serve import ray_bench

    monkeypatch.setattr(ray_bench, "TEMPERATURES", (1.0, 4.0))
    monkeypatch.setattr(ray_bench, "ALPHAS", (0.9,))
    monkeypatch.setattr(ray_bench, "EPOCHS", 1)
    out = ray_bench.run_ray_bench("digits", repeats=1)
    assert out["rows_identical"] and out["cells"] == 2 and len(out["serial_s"]) == len(out["ray_sweep_s"]) == 1
    assert out["speedup"] == out["serial_s"][0] / out["ray_sweep_s"][0] > 0
    assert "--ray local:2" in out["commands"]["ray"] and "kdlab sweep --dataset digits" in out["commands"]["serial"]
    assert "rows identical on every repeat: yes" in ray_bench.show(out)
    with pytest.raises(KdlabError, match="differ"):
        ray_bench._check_same([{"gain": 0.1, "seconds": 1.0}], [{"gain": 0.2, "seconds": 1.0}])
