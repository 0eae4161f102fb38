"""A connection to a Ray cluster: ``RayCluster`` connects to one (or starts a private local Ray), warms its
workers, owns the driver's hub actor (kdlab.serve.ray_hub) and shuts down what it started; plus the errors
and the few Ray helpers the batch runner (kdlab.serve.ray_backend) and the app's pool (kdlab.serve.ray_pool)
share.

Ray is optional (``pip install 'kdlab[ray]'``): nothing here imports it before a function needs it.
"""
from __future__ import annotations

import functools
import logging
import os
import socket
import threading
import time
from typing import Any, Callable

from kdlab.base.errors import KdlabError
from kdlab.serve import ray_data
from kdlab.serve.ray_hub import Hub

log = logging.getLogger(__name__)
LOCAL = "local"  # "local" or "local:N": a private Ray on this machine (N CPUs), shut down with the command
PREFLIGHT_SECONDS = 3.0  # a TCP connect to the head: an unreachable address fails in this time, not minutes
CONNECT_SECONDS = 60.0  # ray.init (a local start, or a head that accepts connections but never answers)
CALL_SECONDS = 30.0  # the hub answers in milliseconds; one that does not answer in this time is gone
LOCAL_ENV = {  # for a private local Ray only (restored on close):
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # every Ray process binds to 127.0.0.1; nobody else can join
    "RAY_USAGE_STATS_ENABLED": "0",  # offline: no usage report to send
}


class RayUnavailable(KdlabError):
    """Ray is not installed, or the cluster cannot be reached."""


class RayWorkerLost(KdlabError):
    """A Ray worker died while it trained runs, and retrying did not help."""


def ray_module():
    """``import ray``, or RayUnavailable saying how to install it."""
    try:
        import ray
    except ImportError:
        raise RayUnavailable("Ray is not installed: pip install 'kdlab[ray]'") from None
    return ray


@functools.cache
def remote_task(fn: Callable) -> Any:
    """``fn`` as a Ray task needing one CPU (made on first use: importing this module needs no Ray)."""
    return ray_module().remote(num_cpus=1)(fn)


def quiet_ray_logs() -> None:
    """Ray's loggers at ERROR (imported Ray sets its own handler at INFO), unless kdlab's level is below WARNING:
    a command's bar and one-line messages, or a benchmark's numbers, are not buried under Ray's start-up notices.
    Its workers' output stays in the cluster's log files (RayCluster connects with log_to_driver=False)."""
    level = logging.getLogger().getEffectiveLevel()
    logging.getLogger("ray").setLevel(level if level < logging.WARNING else logging.ERROR)


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


class RayCluster:
    """A connection to a Ray cluster; ``close()`` (or leaving the ``with`` block) shuts down what it started.

    Ray allows one connection per process: if Ray is already initialised (a test's cluster, an app that
    connected before), this handle uses it and leaves it running on close."""

    def __init__(self, address: str):
        self.address = address
        self.owned = False
        self._restore: dict[str, Any] = {}
        self._hub = None
        self._hub_lost = False
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @classmethod
    def connect(cls, address: str) -> "RayCluster":
        """``"local"`` (or ``"local:N"``) starts a private Ray on 127.0.0.1 with this machine's (or N) CPUs
        and no dashboard; ``"auto"`` finds a cluster started on this machine with ``ray start``; anything
        else is a head's ``host:port`` (or ``ray://host:port``). RayUnavailable, with one line, if that fails."""
        cluster = cls.start(address)
        cluster.wait()
        return cluster

    @classmethod
    def start(cls, address: str, warm: bool = False) -> "RayCluster":
        """``connect`` with the connection made in the background, so a command loads its data and teacher
        meanwhile (and, with ``warm``, the workers import torch meanwhile too): a bad or unreachable address
        is still refused here (within PREFLIGHT_SECONDS), anything later when the cluster is first used."""
        ray = ray_module()
        address = (address or "").strip()
        if not address:
            raise RayUnavailable("no Ray address given: use 'local', 'auto' or the head's host:port")
        local = address == LOCAL or address.startswith(LOCAL + ":")
        cpus = _local_cpus(address) if local else None
        if not local and address != "auto":
            _preflight(address)
        cluster = cls(address)
        if ray.is_initialized():
            log.info("Ray is already initialised in this process: using that connection")
            cluster._connected.set()
            if warm:
                cluster.warm()
        else:
            cluster._thread = threading.Thread(target=cluster._connect, args=(local, cpus, warm), name="kdlab-ray",
                                               daemon=True)
            cluster._thread.start()
        return cluster

    def _connect(self, local: bool, cpus: int | None, warm: bool) -> None:
        """On the cluster's own thread. A local Ray's processes are started with PR_SET_PDEATHSIG, i.e. they
        die with the *thread* that started them: so that thread (this one) lives until ``close``, whatever
        thread asked for the cluster (a Streamlit script thread ends with its script run)."""
        ray = ray_module()
        t0 = time.perf_counter()
        options: dict[str, Any] = dict(log_to_driver=False, configure_logging=False, namespace="kdlab")
        if local:
            options.update(address="local", num_cpus=cpus, include_dashboard=False)
            what = "start a local Ray"
        else:
            options.update(address=self.address)
            what = f"connect to the Ray cluster at {self.address}"
        try:
            if local:
                self._restore = _local_environment()
            ray.init(**options)
            self.owned = True
            log.info("Ray at %s ready in %.1f s", self.address, time.perf_counter() - t0)
        except BaseException as exc:  # handed to the thread that waits
            _restore_env(self._restore)
            self._error = RayUnavailable(f"could not {what}: {one_line(exc)}")
            return
        finally:
            self._connected.set()
        if warm:
            self._warm_quietly()
        self._closing.wait()
        t0 = time.perf_counter()
        ray.shutdown()
        _restore_env(self._restore)
        log.info("Ray shut down in %.1f s", time.perf_counter() - t0)

    def wait(self) -> None:
        """Until connected (or the connection failed: its RayUnavailable is raised here, every time)."""
        if not self._connected.wait(CONNECT_SECONDS):
            raise RayUnavailable(f"{self.address} did not answer as a Ray cluster within {CONNECT_SECONDS:.0f} s; "
                                 "check the address (the head's GCS port, 6379 by default)")
        if self._error is not None:
            raise self._error
        ray_data.register_serializers()

    @property
    def cpus(self) -> int:
        self.wait()
        return max(1, int(ray_module().cluster_resources().get("CPU", 1)))

    @property
    def hub(self):
        """The channel actor of this driver (started on first use, on the driver's node)."""
        self.wait()
        with self._lock:
            if self._hub is None or self._hub_lost:
                self._hub_lost = False
                ray = ray_module()
                from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

                here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=True)
                self._hub = ray.remote(Hub).options(num_cpus=0, scheduling_strategy=here).remote()
            return self._hub

    def pull(self, hub: Any, ch: int) -> list:
        """The messages channel ``ch`` of ``hub`` holds (the hub a batch or job opened its channel on: a new
        one would not know it); RayWorkerLost if that hub does not answer."""
        ray = ray_module()
        try:
            return ray.get(hub.pull.remote(ch), timeout=CALL_SECONDS)
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError) as exc:
            self._hub_lost = True  # its process died (killed, out of memory): the next batch starts a new one
            raise RayWorkerLost(f"the Ray process relaying progress died ({one_line(exc)}); run again") from None

    def warm(self, wait: bool = False) -> None:
        """Have every CPU's worker import torch and kdlab now, while the driver loads data and teachers; with
        ``wait``, return once they have (a benchmark that counts it as start-up)."""
        self.hub  # its own (light) process: start it now too
        task = remote_task(_warm_up)
        refs = [task.remote() for _ in range(self.cpus)]  # a dropped ObjectRef does not cancel its task
        if wait:
            ray_module().get(refs, timeout=CONNECT_SECONDS)

    def _warm_quietly(self) -> None:
        try:
            self.warm()
        except Exception as exc:  # only a head start: the first real use reports what is wrong
            log.info("could not warm the Ray workers: %s", one_line(exc))

    def close(self) -> None:
        """Shut down what this handle started (and wait for it); nothing if it joined a running Ray."""
        self._connected.wait(CONNECT_SECONDS)  # a connection still being made is closed once it is made
        if not self.owned:
            return
        self.owned = False
        ray_data.forget()
        self._closing.set()
        self._thread.join(CONNECT_SECONDS)

    def __enter__(self) -> "RayCluster":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _warm_up() -> None:
    import kdlab.runs.batch  # noqa: F401  (torch and the engine: ~1 s a fresh worker would spend on its first task)


def _local_cpus(address: str) -> int | None:
    raw = address.partition(":")[2]
    if not raw:
        return None
    if not raw.isdigit() or not 1 <= int(raw) <= 1024:
        raise RayUnavailable(f"'{address}': the number after 'local:' is the CPUs to use, e.g. local:2")
    return int(raw)


def _local_environment() -> dict[str, Any]:
    """Set what a private local Ray needs; returns what to restore when it shuts down."""
    from ray._private import ray_constants

    restore: dict[str, Any] = {k: os.environ.get(k) for k in LOCAL_ENV}
    os.environ.update(LOCAL_ENV)  # read by the Ray processes it starts ...
    # ... and by this one, which read the first at import: set what Ray derived from it, else the head would
    # bind to the machine's network address however it is asked
    restore["_enable_cluster"] = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    return restore


def _restore_env(saved: dict[str, Any]) -> None:
    for key, value in saved.items():
        if key == "_enable_cluster":
            from ray._private import ray_constants
            ray_constants.ENABLE_RAY_CLUSTER = value
        elif value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _preflight(address: str) -> None:
    """A TCP connect to the head within PREFLIGHT_SECONDS: ray.init itself retries an absent head for minutes."""
    host, port = _host_port(address)
    try:
        with socket.create_connection((host, port), timeout=PREFLIGHT_SECONDS):
            pass
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or type(exc).__name__)
        raise RayUnavailable(f"cannot reach a Ray cluster at {address} ({reason}); start one with "
                             "`ray start --head` or check the address") from None


def _host_port(address: str) -> tuple[str, int]:
    rest = address.split("://", 1)[-1]
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise RayUnavailable(f"'{address}' is not a Ray address: use host:port (e.g. 10.0.0.5:6379), "
                             "ray://host:10001, 'auto' or 'local'")
    return host.strip("[]"), int(port)
