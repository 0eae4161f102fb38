"""kdlab on a Ray cluster: connect to one (or start a private local Ray), share datasets through Ray's object
store, and train a batch of student runs as Ray tasks (``run_all_on_ray``, an Executor for run_sweep and
run_experiment).

How a batch runs:
* the driver checks every config, then gets each teacher once (memory -> disk cache -> train), exactly as a
  local run would, and puts it into the object store once; the dataset goes there once per process;
* the runs are split into about one chunk per cluster CPU (balanced by optimizer steps); each chunk is one
  task that calls kdlab.runs.batch.run_all on its worker with one torch thread, so whatever run_all does to
  train runs together (stacking) happens inside the task. The task finds its teacher in its process's memory,
  never on disk, so it neither reloads nor retrains it;
* progress streams back through the hub actor (kdlab.serve.ray_hub), the same channel carries a stop; the
  results come back as each chunk's return value (owned by the driver, so a worker that exits cannot take
  them along), so ``on_result`` hears of a chunk's runs when that chunk ends;
* a task whose worker dies is retried (``retries``, Ray's max_retries); past that the batch fails with a
  one-line RayWorkerLost. The driver only ever waits with a time-out, so it never hangs on a dead worker.

Ray is optional (``pip install 'kdlab[ray]'``): nothing here imports it before a function needs it.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import os
import socket
import threading
import time
import warnings
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Sequence

from kdlab.base.errors import KdlabError
from kdlab.data import Dataset
from kdlab.runs.batch import Run, RunDone, RunProgress
from kdlab.runs.distill import RunResult, validate
from kdlab.runs.teacher import MEMORY, RunStopped, Teacher, get_teacher
from kdlab.serve.ray_hub import Hub, Outbox
from kdlab.stores.teacher_cache import TeacherStore, teacher_key
from kdlab.training.engine import Event, planned_steps
from kdlab.training.models import validate_spec

log = logging.getLogger(__name__)
LOCAL = "local"  # "local" or "local:N": a private Ray on this machine (N CPUs), shut down with the command
PREFLIGHT_SECONDS = 3.0  # a TCP connect to the head: an unreachable address fails in this time, not minutes
CONNECT_SECONDS = 60.0  # ray.init (a local start, or a head that accepts connections but never answers)
POLL_SECONDS = 0.1  # the driver's pace: relay progress, check for a stop, notice finished tasks
STOP_GRACE_SECONDS = 15.0  # a stopped task normally ends within a training step; past this it is cancelled
CALL_SECONDS = 30.0  # the hub answers in milliseconds; one that does not answer in this time is gone
RETRIES = 1  # a task whose worker process dies is run once more (results are deterministic, so it is safe)
LOCAL_ENV = {  # for a private local Ray only (restored on close):
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # every Ray process binds to 127.0.0.1; nobody else can join
    "RAY_USAGE_STATS_ENABLED": "0",  # offline: no usage report to send
}


class RayUnavailable(KdlabError):
    """Ray is not installed, or the cluster cannot be reached."""


class RayWorkerLost(KdlabError):
    """A Ray worker died while it trained runs, and retrying did not help."""


def _ray():
    try:
        import ray
    except ImportError:
        raise RayUnavailable("Ray is not installed: pip install 'kdlab[ray]'") from None
    return ray


# ---------------------------------------------------------------------------------------------------------
# Connecting


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
    def start(cls, address: str) -> "RayCluster":
        """``connect`` with the connection made in the background, so a command loads its data and teacher
        meanwhile: a bad or unreachable address is still refused here (within PREFLIGHT_SECONDS), anything
        later when the cluster is first used."""
        ray = _ray()
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
        else:
            cluster._thread = threading.Thread(target=cluster._connect, args=(local, cpus), name="kdlab-ray",
                                               daemon=True)
            cluster._thread.start()
        return cluster

    def _connect(self, local: bool, cpus: int | None) -> None:
        """On the cluster's own thread. A local Ray's processes are started with PR_SET_PDEATHSIG, i.e. they
        die with the *thread* that started them: so that thread (this one) lives until ``close``, whatever
        thread asked for the cluster (a Streamlit script thread ends with its script run)."""
        ray = _ray()
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
            self._error = RayUnavailable(f"could not {what}: {_one_line(exc)}")
            return
        finally:
            self._connected.set()
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
        _register_serializers()

    @property
    def cpus(self) -> int:
        self.wait()
        return max(1, int(_ray().cluster_resources().get("CPU", 1)))

    @property
    def hub(self):
        """The channel actor of this driver (started on first use, on the driver's node)."""
        self.wait()
        with self._lock:
            if self._hub is None or self._hub_lost:
                self._hub_lost = False
                ray = _ray()
                from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

                here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=True)
                self._hub = ray.remote(Hub).options(num_cpus=0, scheduling_strategy=here).remote()
            return self._hub

    def hub_lost(self, exc: BaseException) -> KdlabError:
        """The hub's process died (killed, out of memory): the next batch starts a new one."""
        self._hub_lost = True
        return RayWorkerLost(f"the Ray process relaying progress died ({_one_line(exc)}); run again")

    def warm(self) -> None:
        """Have every CPU's worker import torch and kdlab now, while the driver loads data and teachers."""
        self.hub  # its own (light) process: start it now too
        task = _remote(_warm_up)
        for _ in range(self.cpus):
            task.remote()  # fire and forget: a dropped ObjectRef does not cancel its task

    def close(self) -> None:
        """Shut down what this handle started (and wait for it); nothing if it joined a running Ray."""
        self._connected.wait(CONNECT_SECONDS)  # a connection still being made is closed once it is made
        if not self.owned:
            return
        self.owned = False
        _SHARED.clear()
        _LOCAL_DATA.clear()
        self._closing.set()
        self._thread.join(CONNECT_SECONDS)

    def __enter__(self) -> "RayCluster":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


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


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


# ---------------------------------------------------------------------------------------------------------
# Datasets through the object store: pickled as a reference, so a task (or an app job's closure) that
# carries a Dataset ships ~100 bytes, and every worker on a node maps the same shared-memory copy.

_SHARED: "weakref.WeakKeyDictionary[Dataset, Any]" = weakref.WeakKeyDictionary()  # driver: dataset -> its ref
_LOCAL_DATA: OrderedDict[str, Dataset] = OrderedDict()  # a worker: ref id -> the Dataset built from it
_LOCAL_CAPACITY = 4
_data_lock = threading.Lock()


def _register_serializers() -> None:
    from ray.util import register_serializer

    register_serializer(Dataset, serializer=_dataset_ref, deserializer=_dataset_from_ref)


def _dataset_ref(data: Dataset):
    """The object-store reference of ``data``, putting it there on first use (once per dataset object)."""
    ray = _ray()
    with _data_lock:
        ref = _SHARED.get(data)
        if ref is None:
            fields = {f.name: getattr(data, f.name) for f in dataclasses.fields(data)}
            for name in ("x_train", "y_train", "x_test", "y_test"):
                fields[name] = fields[name].numpy()  # numpy: read zero-copy from shared memory by workers
            ref = ray.put(fields)
            _SHARED[data] = ref  # released (and freed in the store) when the dataset object goes
        return ref


def _dataset_from_ref(ref) -> Dataset:
    import torch

    key = ref.hex()
    with _data_lock:
        if key in _LOCAL_DATA:
            _LOCAL_DATA.move_to_end(key)
            return _LOCAL_DATA[key]
    fields = dict(_ray().get(ref))
    with warnings.catch_warnings():  # the arrays are read-only views of shared memory; kdlab never writes them
        warnings.simplefilter("ignore", UserWarning)
        for name in ("x_train", "y_train", "x_test", "y_test"):
            fields[name] = torch.from_numpy(fields[name])
    data = Dataset(**fields)
    with _data_lock:
        _LOCAL_DATA[key] = data
        while len(_LOCAL_DATA) > _LOCAL_CAPACITY:
            _LOCAL_DATA.popitem(last=False)
    return data


# ---------------------------------------------------------------------------------------------------------
# A batch of runs on the cluster


@dataclass(frozen=True)
class Attempt:
    """A task started (or restarted: attempt > 1) on a worker; what ``on_attempt`` hears."""
    part: int
    attempt: int
    pid: int
    host: str
    keys: tuple[Hashable, ...]


def executor(cluster: RayCluster, **options: Any) -> Callable[..., dict[Hashable, RunResult]]:
    """``run_all_on_ray`` bound to ``cluster``: pass it as ``executor=`` to run_sweep or run_experiment."""
    return functools.partial(run_all_on_ray, cluster=cluster, **options)


def run_all_on_ray(runs: Sequence[Run], data: Dataset, *, cluster: RayCluster, store: TeacherStore | None = None,
                   on_progress: RunProgress | None = None, should_stop: Callable[[], bool] | None = None,
                   on_result: RunDone | None = None, parts: int | None = None, retries: int = RETRIES,
                   on_attempt: Callable[[Attempt], None] | None = None) -> dict[Hashable, RunResult]:
    """kdlab.runs.batch.run_all on the cluster: the same results, by key in the order of ``runs``.

    ``parts`` chunks (default: the cluster's CPUs) run in parallel; ``on_result`` hears of each chunk's runs
    when it ends. A stop ends every chunk at its next training step: the runs finished by then are returned.
    Raises what a local run would (ConfigError, TrainingDivergedError, ...) and RayWorkerLost when a worker
    died more than ``retries`` times."""
    runs = list(runs)
    if not runs:
        return {}
    for run in runs:  # every config is checked before any work, as run_experiment does
        validate(run.config)
        for spec in (run.config.teacher, run.config.student):
            validate_spec(spec, data.input_shape, data.num_classes)
        data.transfer_indices(run.config.transfer_size, run.config.omit_classes, run.config.train.seed)
    try:
        teachers = _teachers(runs, data, store, on_progress, should_stop)
    except RunStopped:
        return {}
    chunks = split(runs, parts or cluster.cpus, data)
    return _Batch(cluster, chunks, data, teachers, store, on_progress, should_stop, on_result, retries,
                  on_attempt).run(runs)


def _teachers(runs: list[Run], data: Dataset, store: TeacherStore | None, on_progress: RunProgress | None,
              should_stop: Callable[[], bool] | None) -> dict[str, Teacher]:
    """Each distinct teacher of ``runs`` once, on the driver, reported as its first run's "teacher" events."""
    teachers: dict[str, Teacher] = {}
    for run in runs:
        tcfg = run.config.teacher_config()
        if teacher_key(tcfg) in teachers:
            continue
        tagged = None if on_progress is None else functools.partial(on_progress, run.key, "teacher")
        t0 = time.perf_counter()
        teacher = get_teacher(tcfg, data, store, tagged, should_stop)
        if teacher.source != "trained":  # as run_distill records it
            teacher.meta = {**teacher.meta, "load_seconds": time.perf_counter() - t0}
        teachers[teacher.key] = teacher
    return teachers


def split(runs: Sequence[Run], parts: int, data: Dataset) -> list[list[Run]]:
    """At most ``parts`` chunks of about equal work (optimizer steps, twice for a run with a scratch twin),
    each in the runs' order: the costliest run goes first, each onto the least loaded chunk."""
    def cost(run: Run) -> int:
        n = run.config.transfer_size or len(data.x_train)
        return planned_steps(n, run.config.train)[1] * (1 + run.scratch)

    n = max(1, min(parts, len(runs)))
    loads, groups = [0] * n, [[] for _ in range(n)]
    for i in sorted(range(len(runs)), key=lambda i: -cost(runs[i])):  # stable: ties keep their order
        g = loads.index(min(loads))
        groups[g].append(i)
        loads[g] += cost(runs[i])
    return [[runs[i] for i in sorted(g)] for g in groups if g]


class _Batch:
    """The driver's side of one run_all_on_ray call: submit the chunks, relay, stop, collect."""

    def __init__(self, cluster, chunks, data, teachers, store, on_progress, should_stop, on_result, retries,
                 on_attempt):
        self.cluster, self.chunks, self.data, self.teachers, self.store = cluster, chunks, data, teachers, store
        self.on_progress, self.should_stop, self.on_result = on_progress, should_stop, on_result
        self.retries, self.on_attempt = retries, on_attempt
        self.results: dict[Hashable, RunResult] = {}
        self.done_events: set[tuple[Hashable, str]] = set()  # (key, role) whose "done" was relayed
        self.restarted: set[int] = set()

    def run(self, runs: list[Run]) -> dict[Hashable, RunResult]:
        ray = _ray()
        hub = self.cluster.hub
        ch = ray.get(hub.open.remote())
        task = _remote(_run_chunk)
        teachers = ray.put(self.teachers)  # once; every task reads it from the object store
        pending = {task.options(max_retries=self.retries).remote(i, chunk, self.data, teachers, self.store, hub, ch): i
                   for i, chunk in enumerate(self.chunks)}
        stopping: float | None = None
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=len(pending), timeout=POLL_SECONDS)
                self._relay(_pull(ray, self.cluster, hub, ch))  # after the wait: a finished task's last messages
                if stopping is None and self.should_stop is not None and self.should_stop():
                    stopping = time.monotonic()
                    hub.stop.remote(ch)
                if stopping is not None and time.monotonic() - stopping > STOP_GRACE_SECONDS:
                    log.warning("a stopped Ray task did not end within %.0f s: cancelling it", STOP_GRACE_SECONDS)
                    for ref in pending:
                        ray.cancel(ref, force=True)
                for ref in ready:
                    for key, result in self._collect(ray, ref, pending.pop(ref), stopping is not None).items():
                        self._result(key, result)
        finally:
            if pending:  # an error (ours or a caller's callback): end the other chunks too
                hub.stop.remote(ch)
                for ref in pending:
                    ray.cancel(ref, force=False)
            hub.close.remote(ch)
        return {run.key: self.results[run.key] for run in runs if run.key in self.results}

    def _collect(self, ray, ref, part: int, stopping: bool) -> dict[Hashable, RunResult]:
        """A finished task's results; or what it raised, or what killed it."""
        try:
            status, payload = ray.get(ref)
        except ray.exceptions.RayTaskError:
            raise  # a bug in kdlab on the worker: its traceback is the message
        except ray.exceptions.RayError as exc:  # the worker (or its node) died, or the task was cancelled
            if stopping:
                return {}
            keys = [run.key for run in self.chunks[part]]
            raise RayWorkerLost(f"a Ray worker died while training runs {_keys(keys)} ({_one_line(exc)}) and "
                                f"{self.retries} retr{'y' if self.retries == 1 else 'ies'} did not help; "
                                "check that node's memory and logs, then run again") from None
        if status == "error":
            raise payload
        return payload

    def _relay(self, messages: list) -> None:
        for message in messages:
            if message[0] == "begin":
                self._begin(*message[1:])
            else:
                self._event(*message[1:])

    def _begin(self, part: int, attempt: int, where: dict[str, Any]) -> None:
        if attempt > 1:
            self.restarted.add(part)
            log.warning("Ray task %d restarted (attempt %d) on %s, pid %s", part, attempt, where.get("host"),
                        where.get("pid"))
        if self.on_attempt is not None:
            self.on_attempt(Attempt(part, attempt, where.get("pid", 0), where.get("host", ""),
                                    tuple(run.key for run in self.chunks[part])))

    def _event(self, part: int, key: Hashable, role: str, event: Any) -> None:
        event = unplain(event)
        if part in self.restarted and (key, role) in self.done_events:
            return  # a retried task replays runs already reported done: report them once
        if getattr(event, "kind", "") == "done":
            self.done_events.add((key, role))
        if self.on_progress is not None:
            self.on_progress(key, role, event)

    def _result(self, key: Hashable, result: RunResult) -> None:
        result = dataclasses.replace(result, dataset=self.data, teacher=self.teachers[_teacher_key(result)])
        self.results[key] = result
        if self.on_result is not None:
            self.on_result(key, result)


def _pull(ray, cluster: RayCluster, hub: Any, ch: int) -> list:
    try:
        return ray.get(hub.pull.remote(ch), timeout=CALL_SECONDS)
    except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError) as exc:
        raise cluster.hub_lost(exc) from None


def _teacher_key(result: RunResult) -> str:
    return teacher_key(result.config.teacher_config())


def _keys(keys: list[Hashable]) -> str:
    shown = ", ".join(map(str, keys[:4]))
    return shown + (f" and {len(keys) - 4} more" if len(keys) > 4 else "")


# ---------------------------------------------------------------------------------------------------------
# What runs on the workers


@functools.cache
def _remote(fn: Callable) -> Any:
    """``fn`` as a Ray task needing one CPU (made on first use: importing this module needs no Ray)."""
    return _ray().remote(num_cpus=1)(fn)


def _warm_up() -> None:
    import kdlab.runs.batch  # noqa: F401  (torch and the engine: ~1 s a fresh worker would spend on its first task)


def _run_chunk(part: int, runs: list[Run], data: Dataset, teachers: dict[str, Teacher],
               store: TeacherStore | None, hub: Any, ch: int) -> tuple[str, Any]:
    """One chunk on a worker: run_all with the shipped teachers in this process's memory, one torch thread."""
    from kdlab.runs.batch import run_all
    from kdlab.training.threads import pin_threads

    pin_threads(1)  # one task per CPU: a second thread would only fight the next task for its core
    outbox = Outbox(hub, ch)
    outbox.begin(part)
    store = store or TeacherStore()
    for key, teacher in teachers.items():  # what get_teacher looks at first: it neither reloads nor retrains
        MEMORY.put(f"{store.root}:{key}", teacher)

    try:
        results = run_all(runs, data, store=store, should_stop=outbox.stopped,
                          on_progress=lambda key, role, event: outbox.send(("event", part, key, role, plain(event))))
    except KdlabError as exc:  # returned, not raised: the driver re-raises it with its own one-line message
        return "error", exc
    finally:
        outbox.flush()
    # the dataset and teacher stay here: the driver holds both and puts them back
    return "ok", {key: dataclasses.replace(r, dataset=None, teacher=None) for key, r in results.items()}


# Engine events travel as plain tuples: the hub's process then reads them without importing torch.
_EVENT = "kdlab.Event"


def plain(obj: Any) -> Any:
    """``obj`` with every engine Event in it (at any depth of tuples and lists) as a plain tuple."""
    if isinstance(obj, Event):
        return (_EVENT, obj.kind, obj.epoch, obj.step, obj.total_steps, obj.metrics, obj.history, obj.reason)
    if type(obj) in (tuple, list):
        return type(obj)(plain(x) for x in obj)
    return obj


def unplain(obj: Any) -> Any:
    """The inverse of ``plain``."""
    if type(obj) is tuple and len(obj) == 8 and obj[0] == _EVENT:
        return Event(*obj[1:])
    if type(obj) in (tuple, list):
        return type(obj)(unplain(x) for x in obj)
    return obj
