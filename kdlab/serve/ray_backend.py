"""A batch of student runs on a Ray cluster: ``run_all_on_ray``, kdlab.runs.batch.run_all with the runs trained
as Ray tasks (an Executor for run_sweep and run_experiment; ``executor(cluster)`` binds it to a cluster).

How a batch runs:
* the driver checks every config, then gets each teacher once (memory -> disk cache -> train), exactly as a
  local run would, and puts it into the object store once; the dataset goes there once per process
  (kdlab.serve.ray_data);
* the runs are split into about one chunk per cluster CPU (balanced by optimizer steps); each chunk is one
  task that calls kdlab.runs.batch.run_all on its worker with one torch thread, so whatever run_all does to
  train runs together (stacking) happens inside the task. The task finds its teacher in its process's memory,
  never on disk, so it neither reloads nor retrains it;
* progress streams back through the hub actor (kdlab.serve.ray_hub), the same channel carries a stop; the
  results come back as each chunk's return value (owned by the driver, so a worker that exits cannot take
  them along), so ``on_result`` hears of a chunk's runs when that chunk ends;
* a task whose worker dies is retried (``retries``, Ray's max_retries); past that the batch fails with a
  one-line RayWorkerLost. The driver only ever waits with a time-out, so it never hangs on a dead worker.

The connection is kdlab.serve.ray_cluster's RayCluster; Ray itself is imported only when a batch runs.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Sequence

from kdlab.base.errors import KdlabError
from kdlab.data import Dataset
from kdlab.runs.batch import Run, RunDone, RunProgress, stopped
from kdlab.runs.distill import RunResult, check_data, fetch_teacher, validate
from kdlab.runs.teacher import MEMORY, RunStopped, Teacher, memory_key
from kdlab.serve.ray_cluster import RayCluster, RayWorkerLost, one_line, ray_module, remote_task
from kdlab.serve.ray_hub import POLL_SECONDS, STOP_GRACE_SECONDS, Outbox, plain, unplain
from kdlab.stores.teacher_cache import TeacherStore, teacher_key
from kdlab.training.engine import planned_steps

log = logging.getLogger(__name__)
RETRIES = 1  # a task whose worker process dies is run once more (results are deterministic, so it is safe)


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
                   keep_stopped: bool = False, on_result: RunDone | None = None, parts: int | None = None,
                   retries: int = RETRIES, on_attempt: Callable[[Attempt], None] | None = None
                   ) -> dict[Hashable, RunResult]:
    """kdlab.runs.batch.run_all on the cluster: the same results, by key in the order of ``runs``.

    ``parts`` chunks (default: the cluster's CPUs) run in parallel; ``on_result`` hears of each chunk's runs
    when it ends. A stop ends every chunk at its next training step: the runs finished by then are returned,
    and with ``keep_stopped`` the ones it interrupted too (one a chunk at most, its students marked
    "stopped", never reported to ``on_result``: as run_all does). Raises what a local run would (ConfigError,
    TrainingDivergedError, ...) and RayWorkerLost when a worker died more than ``retries`` times."""
    runs = list(runs)
    if not runs:
        return {}
    for run in runs:  # every config is checked before any work, as run_all does
        validate(run.config)
        check_data(run.config, data)
    try:
        teachers = _teachers(runs, data, store, on_progress, should_stop)
    except RunStopped:
        return {}
    batch = _Batch(cluster, split(runs, parts or cluster.cpus, data), data, teachers, store, keep_stopped=keep_stopped,
                   retries=retries, on_progress=on_progress, on_result=on_result, on_attempt=on_attempt)
    return batch.run(runs, should_stop)


def _teachers(runs: list[Run], data: Dataset, store: TeacherStore | None, on_progress: RunProgress | None,
              should_stop: Callable[[], bool] | None) -> dict[str, Teacher]:
    """Each distinct teacher of ``runs`` once, on the driver, reported as its first run's "teacher" events."""
    teachers: dict[str, Teacher] = {}
    for run in runs:
        tcfg = run.config.teacher_config()
        if teacher_key(tcfg) in teachers:
            continue
        progress = None if on_progress is None else functools.partial(on_progress, run.key)
        teacher = fetch_teacher(run.config, data, store, progress, should_stop)
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


@dataclass
class _Batch:
    """The driver's side of one run_all_on_ray call: submit the chunks, relay, stop, collect."""

    cluster: RayCluster
    chunks: list[list[Run]]
    data: Dataset
    teachers: dict[str, Teacher]
    store: TeacherStore | None
    keep_stopped: bool = False
    retries: int = RETRIES
    on_progress: RunProgress | None = None
    on_result: RunDone | None = None
    on_attempt: Callable[[Attempt], None] | None = None
    results: dict[Hashable, RunResult] = dataclasses.field(default_factory=dict)
    done_events: set[tuple[Hashable, str]] = dataclasses.field(default_factory=set)  # (key, role) relayed "done"
    restarted: set[int] = dataclasses.field(default_factory=set)

    def run(self, runs: list[Run], should_stop: Callable[[], bool] | None) -> dict[Hashable, RunResult]:
        ray = ray_module()
        hub = self.cluster.hub
        ch = ray.get(hub.open.remote())
        task = remote_task(_run_chunk).options(max_retries=self.retries)
        teachers = ray.put(self.teachers)  # once; every task reads it from the object store
        pending = {task.remote(i, chunk, self.data, teachers, self.store, self.keep_stopped, hub, ch): i
                   for i, chunk in enumerate(self.chunks)}
        stopping: float | None = None
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=len(pending), timeout=POLL_SECONDS)
                self._relay(self.cluster.pull(hub, ch))  # after the wait: a finished task's last messages
                if stopping is None and should_stop is not None and should_stop():
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
            raise RayWorkerLost(f"a Ray worker died while training runs {_keys(keys)} ({one_line(exc)}) and "
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
        if self.on_result is not None and not stopped(result):  # run_all reports finished runs only
            self.on_result(key, result)


def _teacher_key(result: RunResult) -> str:
    return teacher_key(result.config.teacher_config())


def _keys(keys: list[Hashable]) -> str:
    shown = ", ".join(map(str, keys[:4]))
    return shown + (f" and {len(keys) - 4} more" if len(keys) > 4 else "")


# ---------------------------------------------------------------------------------------------------------
# What runs on the workers


def _run_chunk(part: int, runs: list[Run], data: Dataset, teachers: dict[str, Teacher], store: TeacherStore | None,
               keep_stopped: bool, hub: Any, ch: int) -> tuple[str, Any]:
    """One chunk on a worker: run_all with the shipped teachers in this process's memory, one torch thread."""
    from kdlab.runs.batch import run_all
    from kdlab.training.threads import pin_threads

    pin_threads(1)  # one task per CPU: a second thread would only fight the next task for its core
    outbox = Outbox(hub, ch)
    outbox.begin(part)
    store = store or TeacherStore()
    for key, teacher in teachers.items():  # what get_teacher looks at first: it neither reloads nor retrains
        MEMORY.put(memory_key(store, key), teacher)

    def send(key: Hashable, role: str, event: Any) -> None:
        outbox.send(("event", part, key, role, plain(event)))

    try:
        results = run_all(runs, data, store=store, should_stop=outbox.stopped, on_progress=send,
                          keep_stopped=keep_stopped)
    except KdlabError as exc:  # returned, not raised: the driver re-raises it with its own one-line message
        return "error", exc
    finally:
        outbox.flush()
    # the dataset and teacher stay here: the driver holds both and puts them back
    return "ok", {key: dataclasses.replace(r, dataset=None, teacher=None) for key, r in results.items()}
