"""Work on the process-wide pool, watched from a page. General: any page (or kdlab.experiments) may use it.

* ``submit(slot, fn)`` queues ``fn(job)`` on the pool as this session's job in ``slot`` (one per slot).
* ``watch(slot, draw)`` renders a fragment that reruns every ``POLL_SECONDS`` while the job is queued or
  running: the queue position, then ``draw(job)``, and a Stop button. When the job ends it reruns the
  whole page, whose next run collects the job with ``take_finished(slot)``.

A job is alive while the browser session that submitted it is connected, so closing the tab stops it at
its next training step. Without a Streamlit runtime (AppTest, scripts) a job counts as alive; AppTest has
no timers, so tests wait with ``job.wait()`` and then rerun the app, which is deterministic.
"""
from __future__ import annotations

import secrets
from typing import Any, Callable

import streamlit as st
from streamlit import runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx

from kdlab.serve.jobs import Busy, Job
from kdlab.ui import resources
from kdlab.ui.i18n import t

POLL_SECONDS = 0.5  # a running job: at most two redraws a second per watching session
QUEUED_POLL_SECONDS = 2.0  # a queued job: its place in the queue changes slowly
PREFIX = "kd.job."  # session_state[PREFIX + slot]: the slot's Job, nothing else
ERROR_PREFIX = "kd.job-error."  # session_state[ERROR_PREFIX + slot]: (status, message) of its last failure


def session_alive() -> Callable[[], bool]:
    """A thread-safe check "is the session running this script still connected?"."""
    ctx = get_script_run_ctx()
    session_id = ctx.session_id if ctx is not None else None

    def alive() -> bool:
        if session_id is None or not runtime.exists():
            return True  # no server (AppTest, a script): nothing can close
        try:
            return bool(runtime.get_instance().is_active_session(session_id))
        except Exception:  # a runtime shutting down: let the run's own time bound end it
            return True

    return alive


OWNER = "kd.owner"  # a random name of this browser session: what its runs are labelled with


def session_owner() -> str:
    """This browser session's random name (made on first use): its runs are private to it."""
    return st.session_state.setdefault(OWNER, secrets.token_hex(8))


def _client_address() -> str | None:
    """The browser's address (None on loopback, in AppTest, or when Streamlit cannot tell)."""
    try:
        return st.context.ip_address
    except Exception:  # no runtime (AppTest, a script): no client to bound
        return None


def current(slot: str) -> Job | None:
    return st.session_state.get(PREFIX + slot)


def submit(slot: str, fn: Callable[[Job], Any], label: str = "") -> Job:
    """Queue ``fn`` as this session's job in ``slot``. The pool allows one active job per session across all
    pages (kdlab.serve.jobs.Busy names it: ``layout.errors_as_messages`` offers to stop it) and a few queued
    jobs per client address (QueueFull)."""
    job = current(slot)
    if job is not None and job.active:
        raise Busy(job)
    job = resources.pool().submit(fn, alive=session_alive(), label=label, owner=session_owner(),
                                  client=_client_address())
    st.session_state[PREFIX + slot] = job
    st.session_state.pop(ERROR_PREFIX + slot, None)  # the last run's message lasts until the next run
    return job


def collect(slot: str, keep: Callable[[Any], None]) -> None:
    """Hand a finished job's result to ``keep`` and remember its error (for ``show_error``)."""
    job = take_finished(slot)
    if job is None:
        return
    if job.result is not None:
        keep(job.result)
    if job.error:
        st.session_state[ERROR_PREFIX + slot] = (job.status, job.error)


def show_error(slot: str) -> None:
    """The message of the slot's last failed (error box) or stopped (warning) job, if any."""
    if (found := st.session_state.get(ERROR_PREFIX + slot)) is not None:
        status, message = found
        (st.warning if status == "stopped" else st.error)(message)


def take_finished(slot: str) -> Job | None:
    """The job of ``slot`` if it has ended (done, failed or stopped), removed from the session; else None."""
    job = current(slot)
    if job is None or job.active:
        return None
    del st.session_state[PREFIX + slot]
    return job


def watch(slot: str, draw: Callable[[Job], None]) -> None:
    job = current(slot)
    if job is None or not job.active:
        return
    if job.status == "queued":
        _queued_poller(slot)
    else:
        _poller(slot, draw)


# Two pollers: a waiting session only needs its place in the queue now and then, and with thirty sessions
# waiting, their polls would otherwise take a good share of the server's (GIL-bound) Python time from the
# workers. A status change reruns the whole page, which then picks the other poller or collects the result.

@st.fragment(run_every=QUEUED_POLL_SECONDS)
def _queued_poller(slot: str) -> None:
    job = current(slot)
    if job is None:
        return
    if job.status != "queued":
        st.rerun()
    info, stop = st.columns([4, 1])
    _stop_button(stop, job, slot)
    stats = resources.pool().stats()
    info.info(t("Waiting for a free worker: you are number {position} in the queue ({running} of {workers} workers "
                "busy).", position=resources.pool().position(job), running=stats["running"], workers=stats["workers"]))


@st.fragment(run_every=POLL_SECONDS)
def _poller(slot: str, draw: Callable[[Job], None]) -> None:
    job = current(slot)
    if job is None:
        return
    if not job.active:
        st.rerun()  # the whole page: it collects the result
    _, stop = st.columns([4, 1])
    _stop_button(stop, job, slot)
    draw(job)


def _stop_button(where, job: Job, slot: str) -> None:
    stopping = job.should_stop()
    where.button(t("Stopping…") if stopping else t("Stop"), key=f"stop.{slot}", on_click=job.stop, disabled=stopping,
                 width="stretch")
