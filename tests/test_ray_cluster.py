"""kdlab.serve.ray_cluster: bad and unreachable addresses are one line within seconds; a private local Ray is on
loopback, outlives the thread that asked for it, is joined (not restarted) by a second connection and is shut
down by close; importing the module needs no Ray. No module-wide cluster here: what needs one starts its own
in a subprocess (a Ray lives as long as its process's connection)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kdlab.base.errors import KdlabError
from kdlab.serve import ray_cluster
from kdlab.serve.ray_cluster import RayCluster, RayUnavailable

REPO = Path(__file__).resolve().parents[1]


def _python(code: str, timeout: float = 180) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, cwd=REPO,
                          env=env)


@pytest.mark.parametrize("address, words", [
    ("127.0.0.1:1", "cannot reach a Ray cluster at 127.0.0.1:1"),  # nothing listens on port 1
    ("ray://127.0.0.1:1", "cannot reach"),
    ("a-head-without-a-port", "is not a Ray address"),
    ("local:zero", "the number after 'local:'"),
    ("", "no Ray address"),
])
def test_a_bad_or_unreachable_address_is_one_line_within_seconds(address, words):
    t0 = time.monotonic()
    with pytest.raises(RayUnavailable) as err:
        RayCluster.start(address)  # refused before any thread starts: a command has done no work yet
    assert time.monotonic() - t0 < ray_cluster.PREFLIGHT_SECONDS + 2
    assert words in str(err.value) and "\n" not in str(err.value) and isinstance(err.value, KdlabError)


def test_a_local_ray_on_loopback_outlives_the_thread_that_asked_and_is_joined_then_shut_down():
    """As in the app: the pool (and its Ray) is made on a Streamlit script thread, which ends with the run."""
    code = ("import threading, time, ray\n"
            "from kdlab.serve.ray_cluster import RayCluster\n"
            "box = []\n"
            "t = threading.Thread(target=lambda: box.append(RayCluster.connect('local:1'))); t.start(); t.join()\n"
            "time.sleep(2)  # Ray's processes would die with the thread that started them\n"
            "print(ray.get(ray.remote(lambda: 42).remote(), timeout=60), box[0].cpus)\n"
            "print(sorted({n['NodeManagerAddress'] for n in ray.nodes() if n['Alive']}),\n"
            "      ray.get_runtime_context().gcs_address.split(':')[0])\n"
            "again = RayCluster.connect('local'); again.close()  # joins the running Ray, leaves it running\n"
            "print(again.owned, ray.is_initialized())\n"
            "box[0].close(); print(ray.is_initialized())\n")
    out = _python(code)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["42", "1", "['127.0.0.1']", "127.0.0.1", "False", "True", "False"]


def test_importing_the_cluster_module_needs_no_ray_until_it_is_used():
    code = ("import sys; sys.modules['ray'] = None\n"  # as if Ray were not installed
            "import kdlab.serve.ray_cluster as c, kdlab.serve.ray_backend, kdlab.serve.ray_pool\n"
            "try:\n    c.RayCluster.connect('local')\nexcept c.RayUnavailable as e:\n    print(e)\n")
    out = _python(code, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "Ray is not installed: pip install 'kdlab[ray]'"
