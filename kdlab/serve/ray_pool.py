"""The app's job pool on a Ray cluster: JobPool's queue, with each job's work done by a Ray task.

``RayJobPool`` is a JobPool: the same ``submit``, ``position``, ``stats`` and whatever admission rules JobPool
has (per-session fairness), because it only wraps each submitted ``fn``. Its ``size`` is the cluster's CPU
count, so the queue (and the place in it a waiting session sees) reflects the cluster. A pool thread ships
``fn`` to a task and then only relays: the task calls ``fn`` with a ``RemoteJob`` whose ``emit`` streams
events back through the hub (kdlab.serve.ray_hub) into the real Job's ``events``, and whose ``should_stop``
turns true once the real Job's does (Stop, or a closed tab). Whatever ``fn`` returns or raises comes back
as if it had run here.

``fn`` and what it holds are pickled: a Dataset travels as an object-store reference, a RunStore as its
folder (kdlab.serve.ray_data). What ``fn`` writes to disk (a saved run, a trained teacher) is written on the
worker's node: give every node the same KDLAB_CACHE_DIR on shared storage (README, "Beyond one machine") so
the server sees it.
"""
from __future__ import annotations

import functools
import logging
import time
from typing import Any, Callable

from kdlab.base.errors import KdlabError
from kdlab.runs.teacher import RunStopped
from kdlab.serve.jobs import Job, JobPool
from kdlab.serve.ray_cluster import RayCluster, RayWorkerLost, one_line, ray_module, remote_task
from kdlab.serve.ray_hub import POLL_SECONDS, STOP_GRACE_SECONDS, Outbox, plain, unplain

log = logging.getLogger(__name__)
RETRIES = 1  # a job whose worker dies starts once more from the beginning (its page starts over)


class RayJobPool(JobPool):
    def __init__(self, cluster: RayCluster, size: int | None = None, max_queue: int = 200, retries: int = RETRIES):
        self.cluster = cluster
        self.retries = retries
        size = size or cluster.cpus  # waits for the connection (and registers ray_data's serializers)
        super().__init__(size=size, max_queue=max_queue)

    @classmethod
    def connect(cls, address: str, **kwargs: Any) -> "RayJobPool":
        cluster = RayCluster.connect(address)
        cluster.warm()
        return cls(cluster, **kwargs)

    def submit(self, fn: Callable[[Job], Any], **kwargs: Any) -> Job:
        return super().submit(functools.partial(_on_ray, self, fn), **kwargs)


def _on_ray(pool: RayJobPool, fn: Callable[[Job], Any], job: Job) -> Any:
    """On a pool thread: run ``fn`` as a task, relay its events and the stop, return or raise its outcome."""
    ray = ray_module()
    hub = pool.cluster.hub
    ch = ray.get(hub.open.remote())
    meta = {"id": job.id, "label": job.label, "submitted": job.submitted, "started": job.started}
    ref = remote_task(_run_job).options(max_retries=pool.retries).remote(fn, hub, ch, meta)
    stopping: float | None = None
    ready: list = []
    try:
        while True:
            ready, _ = ray.wait([ref], timeout=POLL_SECONDS)
            _relay(pool.cluster.pull(hub, ch), job)  # after the wait: a finished task's last events
            if stopping is None and job.should_stop():  # Stop, or the session is gone
                stopping = time.monotonic()
                hub.stop.remote(ch)
            if stopping is not None and time.monotonic() - stopping > STOP_GRACE_SECONDS:
                log.warning("job %s: the stopped task did not end within %.0f s: cancelling it", job.id,
                            STOP_GRACE_SECONDS)
                ray.cancel(ref, force=True)
            if ready:
                break
        try:
            status, payload = ray.get(ref)
        except ray.exceptions.RayTaskError:
            raise
        except ray.exceptions.RayError as exc:
            if stopping is not None:
                raise RunStopped("the run was stopped") from None
            raise RayWorkerLost(f"the Ray worker running this job died ({one_line(exc)}); run it again") from None
        if status == "error":
            raise payload
        return payload
    finally:
        if stopping is None and not ready:  # left by an error in the relay: do not leave the task running
            ray.cancel(ref, force=True)
        hub.close.remote(ch)


def _relay(messages: list, job: Job) -> None:
    for message in messages:
        if message[0] == "begin":
            _, _, attempt, where = message
            if attempt > 1:  # a retry starts over: so does what the page shows
                log.warning("job %s restarted on %s (attempt %d)", job.id, where.get("host"), attempt)
                job.events.clear()
        else:
            job.emit(unplain(message[1]))


class RemoteJob(Job):
    """What ``fn`` gets on the worker: a Job whose events also go to the driver and whose stop comes from it."""

    outbox: Outbox | None = None

    def emit(self, event: Any) -> None:
        self.events.append(event)
        self.outbox.send(("event", plain(event)))

    def should_stop(self) -> bool:
        if self._stop.is_set():
            return True
        if self.outbox.stopped():
            self._stop.set()
        return self._stop.is_set()


def _run_job(fn: Callable[[Job], Any], hub: Any, ch: int, meta: dict[str, Any]) -> tuple[str, Any]:
    from kdlab.training.threads import pin_threads

    pin_threads(1)  # as the app's own process does: one task per CPU, one thread each
    job = RemoteJob(fn, id=meta["id"], label=meta["label"], status="running", submitted=meta["submitted"],
                    started=meta["started"])
    job.outbox = Outbox(hub, ch)
    job.outbox.begin("job")
    try:
        return "ok", fn(job)
    except KdlabError as exc:
        return "error", exc
    finally:
        job.outbox.flush()
