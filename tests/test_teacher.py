"""Tests for kdlab.runs.teacher.get_teacher: memory -> disk -> train, once, under a lock; stopping (also while
waiting for another run's lock); warnings; one teacher per architecture however it is spelled."""
from __future__ import annotations

import threading
import time

import pytest
import torch

from kdlab.stores.teacher_cache import LOCK_POLL_SECONDS, MemoryLRU, TeacherStore, teacher_key
from kdlab.base.config import TeacherConfig, TrainConfig
from kdlab.training.metrics import accuracy, predict_logits
from kdlab.runs.teacher import MEMORY, RunStopped, find_teacher, get_teacher

# big enough that training clearly costs more than loading (~0.5 s vs ~10 ms), small enough for a unit test
CONFIG = TeacherConfig(dataset="digits", arch="mlp:300", train=TrainConfig(epochs=10, lr=3e-3))
TINY = TeacherConfig(dataset="digits", arch="mlp:16", train=TrainConfig(epochs=2, lr=1e-2))


@pytest.fixture(autouse=True)
def _isolated(kdlab_cache, torch_one_thread):
    pass


def test_trained_then_memory_then_cache(digits, kdlab_cache):
    events = []
    t0 = time.perf_counter()
    trained = get_teacher(CONFIG, digits, on_event=events.append)
    train_s = time.perf_counter() - t0
    assert trained.source == "trained" and trained.warnings == []
    assert events and events[-1].kind == "done" and events[-1].reason == "completed"
    assert len(events[-1].history) == CONFIG.train.epochs
    assert trained.test_accuracy > 0.9
    assert trained.test_accuracy == pytest.approx(accuracy(trained.test_logits, digits.y_test))
    assert trained.train_logits.shape == (len(digits.x_train), 10) and trained.test_logits.shape == (360, 10)
    assert trained.meta["params"] == (64 * 300 + 300) + (300 * 10 + 10)
    assert trained.meta["train_seconds"] > 0
    assert not trained.model.training

    same = get_teacher(CONFIG, digits, on_event=events.append)
    assert same.source == "memory" and same.model is trained.model and same.key == trained.key

    MEMORY.clear()  # as if in a new process
    n_events = len(events)
    t0 = time.perf_counter()
    cached = get_teacher(CONFIG, digits, on_event=events.append)
    load_s = time.perf_counter() - t0
    assert cached.source == "cache" and len(events) == n_events  # no training at all
    assert load_s < train_s
    assert cached.key == trained.key and cached.test_accuracy == trained.test_accuracy
    assert torch.equal(cached.train_logits, trained.train_logits)
    assert torch.equal(cached.test_logits, trained.test_logits)
    assert torch.allclose(predict_logits(cached.model, digits.x_test), trained.test_logits, atol=1e-5)
    assert cached.model is not trained.model and not cached.model.training
    assert [row["key"] for row in TeacherStore(kdlab_cache).entries()] == [trained.key]


def test_memory_is_per_cache_folder(digits, tmp_path):
    a = get_teacher(TINY, digits, TeacherStore(tmp_path / "a"))
    b = get_teacher(TINY, digits, TeacherStore(tmp_path / "b"))
    assert a.source == b.source == "trained"
    assert get_teacher(TINY, digits, TeacherStore(tmp_path / "a")).source == "memory"


def test_same_seed_same_teacher(digits, tmp_path):
    a = get_teacher(TINY, digits, TeacherStore(tmp_path / "a"))
    b = get_teacher(TINY, digits, TeacherStore(tmp_path / "b"))
    assert torch.equal(a.test_logits, b.test_logits)


def test_invalid_config_fails_before_any_work(digits, kdlab_cache):
    from kdlab.base.errors import ConfigError

    with pytest.raises(ConfigError):
        get_teacher(TeacherConfig(train=TrainConfig(epochs=0)), digits)
    with pytest.raises(ConfigError):
        get_teacher(TeacherConfig(arch="mlp:x"), digits)
    assert not kdlab_cache.exists() or TeacherStore(kdlab_cache).entries() == []


def test_stopped_teacher_is_not_cached(digits, kdlab_cache):
    calls = []
    with pytest.raises(RunStopped, match="stopped"):
        get_teacher(CONFIG, digits, should_stop=lambda: calls.append(1) or len(calls) > 3)
    assert len(calls) == 4
    assert TeacherStore(kdlab_cache).entries() == []
    assert get_teacher(TINY, digits).source == "trained"  # nothing is left locked


def test_teacher_out_of_time_is_not_cached(digits, kdlab_cache):
    slow = TeacherConfig(arch="mlp:300", train=TrainConfig(epochs=10_000, max_seconds=0.2))
    t0 = time.perf_counter()
    with pytest.raises(RunStopped, match="time limit"):
        get_teacher(slow, digits)
    assert time.perf_counter() - t0 < 15
    assert TeacherStore(kdlab_cache).entries() == []


def _concurrently(n, fn):
    results, errors = [None] * n, []
    barrier = threading.Barrier(n)

    def worker(i):
        try:
            barrier.wait()
            results[i] = fn()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return results


def _slow(event):
    time.sleep(0.01)  # keeps training going while the other threads arrive


def test_threads_asking_at_once_train_once(digits):
    """Many sessions of one server, each with its own TeacherStore() object."""
    results = _concurrently(4, lambda: get_teacher(TINY, digits, on_event=_slow))
    sources = [t.source for t in results]
    assert sources.count("trained") == 1 and set(sources) <= {"trained", "memory", "cache"}
    assert len({t.key for t in results}) == 1


def test_unwritable_cache_still_trains_once_across_threads(digits, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("KDLAB_CACHE_DIR", str(blocker / "cache"))
    results = _concurrently(3, lambda: get_teacher(TINY, digits, on_event=_slow))
    sources = sorted(t.source for t in results)
    assert sources == ["memory", "memory", "trained"]
    trained = next(t for t in results if t.source == "trained")
    assert trained.warnings and "could not write" in trained.warnings[0]


def test_memory_lru():
    lru = MemoryLRU(capacity=2)
    lru.put("a", 1)
    lru.put("b", 2)
    assert lru.get("a") == 1  # a is now the most recent
    lru.put("c", 3)
    assert lru.get("b") is None and lru.get("a") == 1 and lru.get("c") == 3
    lru.put("a", 10)
    assert lru.get("a") == 10
    lru.clear()
    assert lru.get("a") is None and lru.get("c") is None


# --------------------------------------------------------------------------- waiting for another run's lock
# Issue 10, failure 3: a job waiting for another session's teacher ignored Stop and closed tabs (a thread lock,
# then flock, without checking the stop flag); its worker stayed busy >= 20 s after its tab closed.


def _stop_after(seconds: float):
    t0 = time.monotonic()
    return lambda: time.monotonic() - t0 > seconds


def _get_in_thread(cfg, digits, should_stop):
    out: dict = {}

    def run():
        t0 = time.monotonic()
        try:
            out["teacher"] = get_teacher(cfg, digits, should_stop=should_stop)
        except Exception as exc:
            out["error"] = exc
        out["seconds"] = time.monotonic() - t0

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def test_waiting_for_a_thread_that_holds_the_lock_honours_stop(digits, kdlab_cache):
    store = TeacherStore()
    held, release = threading.Event(), threading.Event()

    def holder():  # another session of this server, training the same teacher
        with store.lock(teacher_key(TINY)):
            held.set()
            release.wait(60)

    threading.Thread(target=holder, daemon=True).start()
    assert held.wait(10)
    thread, out = _get_in_thread(TINY, digits, _stop_after(0.3))
    thread.join(10)
    release.set()
    assert not thread.is_alive(), "the waiter ignored its stop flag"
    assert isinstance(out.get("error"), RunStopped) and "waiting for another run" in str(out["error"])
    assert 0.3 <= out["seconds"] < 0.3 + 2.0
    assert get_teacher(TINY, digits).source == "trained"  # nothing was left locked or half-done


@pytest.mark.timeout(120)
def test_waiting_for_another_process_that_holds_the_lock_honours_stop(digits, kdlab_cache, lock_holder):
    with lock_holder("lock", teacher_key(TINY), kdlab_cache):  # the flock, held by another server process
        thread, out = _get_in_thread(TINY, digits, _stop_after(0.3))
        thread.join(10)
        assert not thread.is_alive(), "the waiter ignored its stop flag"
    assert isinstance(out.get("error"), RunStopped)
    assert out["seconds"] < 0.3 + 2.0
    assert get_teacher(TINY, digits).source == "trained"


@pytest.mark.timeout(120)
def test_a_waiter_gets_the_teacher_once_the_other_process_lets_go(digits, kdlab_cache, lock_holder):
    with lock_holder("lock", teacher_key(TINY), kdlab_cache):
        thread, out = _get_in_thread(TINY, digits, lambda: False)
        time.sleep(0.5)
        assert thread.is_alive()  # really waiting: polling is no busy loop that gives up
    thread.join(30)
    assert out["teacher"].source == "trained" and out["seconds"] >= 0.5


def test_a_closed_tab_frees_a_worker_that_waits_for_a_teacher(digits, kdlab_cache):
    """The issue's symptom, end to end: a pool job whose session closes while it waits on the lock."""
    from kdlab.serve.jobs import ALIVE_CHECK_SECONDS, JobPool

    store = TeacherStore()
    held, release = threading.Event(), threading.Event()

    def holder():
        with store.lock(teacher_key(TINY)):
            held.set()
            release.wait(60)

    threading.Thread(target=holder, daemon=True).start()
    assert held.wait(10)
    pool = JobPool(size=1)
    connected = [True]
    job = pool.submit(lambda j: get_teacher(TINY, digits, should_stop=j.should_stop), alive=lambda: connected[0])
    time.sleep(0.3)
    assert job.status == "running"
    t0 = time.monotonic()
    connected[0] = False  # the tab closed
    assert job.wait(10)
    assert time.monotonic() - t0 < ALIVE_CHECK_SECONDS + LOCK_POLL_SECONDS + 1.0
    assert job.status == "stopped" and job.stop_reason == "session closed"
    after = pool.submit(lambda j: "free")  # the worker serves the next job while the holder still holds
    assert after.wait(10) and after.result == "free"
    release.set()


# ------------------------------------------------------------------------------------ canonical architecture
# Issue 10, failure 2: 'mlp:0500', 'mlp:000500' each made a new teacher.


def test_spellings_of_one_architecture_share_one_teacher(digits, kdlab_cache):
    import dataclasses

    first = get_teacher(TINY, digits)
    for arch in ("mlp:016", " mlp:00016 ", "mlp:16:dropout=0"):
        other = dataclasses.replace(TINY, arch=arch)
        assert teacher_key(other) == first.key
        assert get_teacher(other, digits).source == "memory"
    MEMORY.clear()
    again = get_teacher(dataclasses.replace(TINY, arch="mlp:0016"), digits)
    assert again.source == "cache" and again.config.arch == "mlp:16"  # shown in the canonical form
    assert [row["arch"] for row in TeacherStore(kdlab_cache).entries()] == ["mlp:16"]


def test_a_non_ascii_architecture_is_a_config_error_before_any_work(digits, kdlab_cache):
    from kdlab.base.errors import ConfigError

    with pytest.raises(ConfigError, match="only a-z, 0-9"):
        get_teacher(TeacherConfig(arch="mlp:١٦", train=TINY.train), digits)
    assert not (kdlab_cache / "teachers").exists() or TeacherStore(kdlab_cache).entries() == []


def test_find_teacher_never_trains(digits, kdlab_cache):
    assert find_teacher(TINY, digits) is None and TeacherStore(kdlab_cache).entries() == []
    trained = get_teacher(TINY, digits)
    assert find_teacher(TINY, digits).source == "memory"
    MEMORY.clear()
    found = find_teacher(TINY, digits)
    assert found.source == "cache" and torch.equal(found.test_logits, trained.test_logits)
