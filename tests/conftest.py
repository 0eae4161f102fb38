"""Shared pytest fixtures. Append new fixtures below; keep each one small and documented."""
from __future__ import annotations

import pytest


# --- core fixtures (tests/test_{config,registry,models,engine,metrics,cache,teacher,distill,jobs,cli}.py) ---


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's 8x8 digits as a kdlab Dataset, loaded once per session. Read-only: never modify it."""
    from kdlab.data import load_dataset

    return load_dataset("digits")


@pytest.fixture
def kdlab_cache(tmp_path, monkeypatch):
    """A fresh KDLAB_CACHE_DIR under tmp_path (nothing touches ~/.cache) and an empty in-memory teacher LRU."""
    from kdlab.runs.teacher import MEMORY

    root = tmp_path / "kdlab-cache"
    monkeypatch.setenv("KDLAB_CACHE_DIR", str(root))
    MEMORY.clear()
    yield root
    MEMORY.clear()


@pytest.fixture
def torch_one_thread():
    """One intra-op torch thread for the test, then the previous count. Tiny models gain nothing from more,
    and on a busy 2-core machine extra threads spin against other processes (10-80x slower steps)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --- app fixtures (tests/test_app_*.py, test_plots, test_presets, test_runstore, test_sweep, test_browser) ---

APP_ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def _kdlab_session_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("kdlab-cache")


@pytest.fixture(autouse=True)
def _kdlab_cache_dir(_kdlab_session_cache, monkeypatch):
    """Every test runs with KDLAB_CACHE_DIR under pytest's tmp dir, never ~/.cache. One folder per session, so
    the app tests share the teachers they train; ``kdlab_cache`` still gives a test a folder of its own."""
    monkeypatch.setenv("KDLAB_CACHE_DIR", str(_kdlab_session_cache))


@pytest.fixture
def app(monkeypatch):
    """``app.py`` (the entry point of every page) in AppTest, run once. The app pins torch to one thread for
    the process (kdlab.training.threads.pin_threads); the previous setting is restored afterwards."""
    import torch
    from streamlit.testing.v1 import AppTest

    from kdlab.training import threads
    from kdlab.ui import process

    before = torch.get_num_threads()
    monkeypatch.setattr(threads, "_pinned", threads._pinned)  # restored at teardown
    yield AppTest.from_file(str(APP_ROOT / "app.py"), default_timeout=60).run()
    torch.set_num_threads(before)
    process._threads_set = False  # the next app test pins again


@pytest.fixture
def finish_jobs():
    """``finish_jobs(at)``: wait for the session's pool jobs, then rerun. AppTest has no timers, so the page
    collects a finished job on that next run, deterministically."""
    from kdlab.ui import runner

    def finish(at, timeout: float = 120):
        for key in list(at.session_state.keys()):
            if key.startswith(runner.PREFIX):
                assert at.session_state[key].wait(timeout), f"{key} did not finish in {timeout} s"
        return at.run()

    return finish


# --- Ray fixtures (tests/test_ray_backend.py, tests/test_ray_pool.py) ---


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """A private local Ray for one test module (2 CPUs, every process on 127.0.0.1, no dashboard), shut down
    after it. Its workers see KDLAB_CACHE_DIR = ``ray_cluster.worker_cache``, a folder of their own: what a
    task writes there (a teacher it trained) shows that the work ran on a worker."""
    from kdlab.serve.ray_backend import RayCluster

    cache = tmp_path_factory.mktemp("ray-worker-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KDLAB_CACHE_DIR", str(cache))  # inherited by every Ray process this starts
        cluster = RayCluster.connect("local:2")
    cluster.worker_cache = cache
    cluster.warm()
    yield cluster
    cluster.close()
