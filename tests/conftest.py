"""Shared pytest fixtures and hooks. Append new fixtures below; keep each one small and documented. No test
module defines a fixture another module needs: it lives here. A module whose every test needs its own cache
folder and one torch thread says ``pytestmark = pytest.mark.usefixtures("kdlab_cache", "torch_one_thread")``."""
from __future__ import annotations

import os

import pytest

_SKIPPED: list[str] = []


def pytest_runtest_logreport(report):
    if report.skipped and report.when in ("setup", "call"):
        _SKIPPED.append(f"{report.nodeid}: {report.longrepr[-1] if isinstance(report.longrepr, tuple) else ''}")


def pytest_sessionfinish(session, exitstatus):
    """With CI=true a skipped test fails the run: CI installs Chromium and Fashion-MNIST, so a skip there means a
    test that silently stopped testing."""
    if os.environ.get("CI", "").lower() in ("1", "true") and _SKIPPED and exitstatus == 0:
        print("\nCI=true, and these tests were skipped:\n  " + "\n  ".join(_SKIPPED))
        session.exitstatus = 1


@pytest.fixture
def no_gpu(monkeypatch):
    """A machine without CUDA, whatever this one has: torch reports no device."""
    import torch

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


# --- core fixtures (tests/test_{config,registry,models,engine,metrics,cache,teacher,distill,jobs,cli}.py) ---


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's 8x8 digits as a kdlab Dataset, loaded once per session. Read-only: never modify it."""
    from kdlab.data import load_dataset

    return load_dataset("digits")


@pytest.fixture(scope="session")
def teacher_logits(digits):
    """(train, test) logits of a small real teacher (mlp:100, 5 epochs on digits, > 90 % test accuracy),
    trained once for the whole run: soft targets for the trainers' tests."""
    import torch

    from kdlab.base.config import TrainConfig
    from kdlab.training.engine import Split, train
    from kdlab.training.losses import make_loss
    from kdlab.training.metrics import accuracy, predict_logits
    from kdlab.training.models import build_model

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    teacher = build_model("mlp:100", digits.input_shape, digits.num_classes)
    list(train(teacher, Split(digits.x_train, digits.y_train), make_loss("hinton", alpha=0.0),
               TrainConfig(epochs=5, lr=1e-2)))
    torch.set_num_threads(threads)
    assert accuracy(predict_logits(teacher, digits.x_test), digits.y_test) > 0.9
    return predict_logits(teacher, digits.x_train), predict_logits(teacher, digits.x_test)


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


class StopAfter:
    """should_stop() that turns true on its (k+1)-th call: the trainers ask it once before each step."""

    def __init__(self, k: int):
        self.k, self.calls = k, 0

    def __call__(self) -> bool:
        self.calls += 1
        return self.calls > self.k


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    """``kdlab *argv`` in this process: (exit status, stdout, stderr); the CLI tests' one way to call it."""
    from kdlab.cli.main import main

    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


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
    at = AppTest.from_file(str(APP_ROOT / "app.py"), default_timeout=60).run()
    process.warm_up()
    assert process.wait_warm(120), "the background warm-up did not finish"
    yield at.run()  # what needed the warmed modules (the loss's formula) is drawn now
    torch.set_num_threads(before)
    process._threads_set = False  # the next app test pins again


@pytest.fixture
def speak():
    """``speak(at, lang="zh")``: the AppTest session's language for its next run; returns ``at``. In the app,
    app.py reads ?lang= and draws the language switch on every run; AppTest runs a page without app.py, and
    Streamlit drops the state of a switch that is not drawn after each run, so it is set before every run."""
    from kdlab.ui.i18n import LANG, SOURCE

    def speak(at, lang: str = "zh"):
        if lang != SOURCE:
            at.session_state[LANG] = lang
        return at
    return speak


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


# --- store fixtures (tests/test_cache.py, test_teacher.py) ---


@pytest.fixture
def lock_holder(tmp_path):
    """``with lock_holder(kind, key, root):`` another *process* holds the teacher store's lock on ``key``
    ("lock": exclusive, as a trainer does; "reading": shared, as a reader does) until the block ends."""
    import contextlib
    import os
    import subprocess
    import sys
    import time

    helper = APP_ROOT / "tests" / "helpers" / "teacher_proc.py"
    procs = []

    @contextlib.contextmanager
    def hold(kind: str, key: str, root):
        out = tmp_path / f"holder-{len(procs)}"
        out.mkdir()
        env = dict(os.environ, KDLAB_CACHE_DIR=str(root), OMP_NUM_THREADS="1")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(APP_ROOT), env.get("PYTHONPATH")]))
        p = subprocess.Popen([sys.executable, str(helper), "hold", str(out), kind, key], cwd=APP_ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(p)
        deadline = time.monotonic() + 60
        while not (out / "holding").exists():
            assert p.poll() is None, p.communicate()[1]
            assert time.monotonic() < deadline, "the lock holder never got the lock"
            time.sleep(0.01)
        try:
            yield p
        finally:
            (out / "release").touch()
            p.communicate(timeout=60)

    yield hold
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.communicate()


# --- Ray fixtures (tests/test_ray_backend.py, tests/test_ray_pool.py) ---


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """A private local Ray for one test module (2 CPUs, every process on 127.0.0.1, no dashboard), shut down
    after it. Its workers see KDLAB_CACHE_DIR = ``ray_cluster.worker_cache``, a folder of their own: what a
    task writes there (a teacher it trained) shows that the work ran on a worker."""
    from kdlab.serve.ray_cluster import RayCluster

    cache = tmp_path_factory.mktemp("ray-worker-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KDLAB_CACHE_DIR", str(cache))  # inherited by every Ray process this starts
        cluster = RayCluster.connect("local:2")
    cluster.worker_cache = cache
    cluster.warm()
    yield cluster
    cluster.close()
