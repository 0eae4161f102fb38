"""The two-way channel between a driver and its remote work on Ray: progress events flow to the driver, a stop
flag flows to the workers.

One ``Hub`` actor per driver process holds every channel (a channel per batch or per app job): one actor
process for all, rather than one ``ray.util.queue.Queue`` actor (a process each) per job. The remote side
writes through an ``Outbox``, which batches its messages and sends them at most every ``FLUSH_SECONDS``; the
reply to each send carries the stop flag, so a worker learns of a stop within that time without ever asking
separately. Messages are plain Python values (``plain`` turns engine events into tuples, ``unplain`` turns
them back on the driver): the hub's process imports only ray, never torch, so it starts in well under a
second and never competes for a core with the workers' own start-up.
"""
from __future__ import annotations

import itertools
import os
import socket
import time
from collections import deque
from typing import Any

FLUSH_SECONDS = 0.1  # a remote sends at most 10 batches a second; the driver polls at the same pace
POLL_SECONDS = 0.1  # the driver's pace: relay progress, check for a stop, notice finished tasks
STOP_GRACE_SECONDS = 15.0  # a stopped task normally ends within a training step; past this it is cancelled
_EVENT = "kdlab.Event"


class Hub:
    """The actor's class (made remote by ``kdlab.serve.ray_cluster.RayCluster.hub``). Every method is short and non-blocking,
    so one thread serves every channel."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._messages: dict[int, deque] = {}
        self._stopped: set[int] = set()
        self._attempts: dict[tuple[int, Any], int] = {}

    def open(self) -> int:
        ch = next(self._ids)
        self._messages[ch] = deque()  # the driver drains it 10x a second
        return ch

    def begin(self, ch: int, part: Any, where: dict[str, Any]) -> int:
        """A remote attempt at ``part`` of channel ``ch`` has started; returns its number (1, then 2 on a retry)."""
        attempt = self._attempts.get((ch, part), 0) + 1
        self._attempts[(ch, part)] = attempt
        self.push(ch, [("begin", part, attempt, where)])
        return attempt

    def push(self, ch: int, messages: list) -> bool:
        """Appends ``messages``; True if the driver asked ``ch`` to stop (or has closed it)."""
        box = self._messages.get(ch)
        if box is None:
            return True
        box.extend(messages)
        return ch in self._stopped

    def pull(self, ch: int) -> list:
        box = self._messages.get(ch)
        if box is None:
            return []
        out = list(box)
        box.clear()
        return out

    def stop(self, ch: int) -> None:
        self._stopped.add(ch)

    def close(self, ch: int) -> None:
        self._messages.pop(ch, None)
        self._stopped.discard(ch)
        self._attempts = {k: v for k, v in self._attempts.items() if k[0] != ch}

    def channels(self) -> int:
        return len(self._messages)


class Outbox:
    """The remote end of a channel, used from inside a Ray task: ``send`` queues a message, ``stopped`` says
    whether the driver asked to stop. Both are cheap enough to call on every training step."""

    def __init__(self, hub: Any, ch: int) -> None:
        self._hub, self._ch = hub, ch
        self._pending: list = []
        self._last = time.monotonic()
        self._stop = False

    def begin(self, part: Any) -> int:
        import ray

        where = {"pid": os.getpid(), "host": socket.gethostname(), "node": ray.get_runtime_context().get_node_id()}
        try:
            return ray.get(self._hub.begin.remote(self._ch, part, where))
        except ray.exceptions.RayActorError:  # the driver is gone: nothing to report to, nobody to work for
            self._stop = True
            return 0

    def send(self, message: Any) -> None:
        self._pending.append(message)
        if time.monotonic() - self._last >= FLUSH_SECONDS:
            self.flush()

    def stopped(self) -> bool:
        if not self._stop and time.monotonic() - self._last >= FLUSH_SECONDS:
            self.flush()
        return self._stop

    def flush(self) -> None:
        import ray

        batch, self._pending = self._pending, []
        self._last = time.monotonic()
        try:  # waits for the reply: it carries the stop flag, and keeps the messages in order
            self._stop = ray.get(self._hub.push.remote(self._ch, batch)) or self._stop
        except ray.exceptions.RayActorError:
            self._stop = True


# Engine events travel as plain tuples. Event is imported inside the functions, which only workers and the
# driver call: importing this module (as the hub's process does) imports no torch.

def plain(obj: Any) -> Any:
    """``obj`` with every engine Event in it (at any depth of tuples and lists) as a plain tuple."""
    from kdlab.training.engine import Event

    if isinstance(obj, Event):
        return (_EVENT, obj.kind, obj.epoch, obj.step, obj.total_steps, obj.metrics, obj.history, obj.reason)
    if type(obj) in (tuple, list):
        return type(obj)(plain(x) for x in obj)
    return obj


def unplain(obj: Any) -> Any:
    """The inverse of ``plain``."""
    if type(obj) is tuple and len(obj) == 8 and obj[0] == _EVENT:
        from kdlab.training.engine import Event

        return Event(*obj[1:])
    if type(obj) in (tuple, list):
        return type(obj)(unplain(x) for x in obj)
    return obj
