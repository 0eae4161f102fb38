"""``kdlab loadtest``: N sessions run the default digits preset on one real server at once.

Two clients. ``--client ws`` (the default, kdlab.serve.loadtest_ws) speaks Streamlit's websocket protocol
directly, one connection per session and no browser, so the numbers are the server's own. ``--client
browser``: one headless Chromium (Debian's) with N tabs: each tab has its own websocket and so is its own
Streamlit session (tabs of one browser context share the HTTP and code caches, as a real browser's tabs
would); on 2 cores, 30 tabs take most of the CPU, so this measures the browsers as much as the server.
Each session opens the Distill page, clicks Run and waits for the results. We report completions, errors,
median and 95th percentile completion time, and the server's peak RSS (sampled every 0.2 s, children
included).
"""
from __future__ import annotations

import asyncio
import math
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from kdlab.base.errors import KdlabError
from kdlab.serve.server import CHROMIUM, CHROMIUM_ARGS, running_server

MAX_SESSIONS = 500  # each session holds a websocket (or a browser tab) and a pool job
DISTILL_PATH = "/Distill"
RUN_BUTTON = "Run"
DONE = "[data-testid='stApp'] >> text=Confusion matrices"  # the heading drawn once a run's results are in
ERROR_BOX = "[data-testid='stException'], [data-testid='stAlertContentError']"
APP_IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in [0, 100]); NaN for no values."""
    if not values:
        return float("nan")
    ranked = sorted(values)
    rank = math.ceil(q / 100 * len(ranked) - 1e-9)  # the smallest value with at least q% at or below it
    return ranked[min(len(ranked) - 1, max(0, rank - 1))]


class RssSampler(threading.Thread):
    """Peak resident memory of a process tree, sampled in the background."""

    def __init__(self, pid: int, every: float = 0.2):
        super().__init__(daemon=True)
        self.proc, self.every, self.peak, self._halt = psutil.Process(pid), every, 0, threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                procs = [self.proc, *self.proc.children(recursive=True)]
                self.peak = max(self.peak, sum(p.memory_info().rss for p in procs))
            except psutil.Error:
                pass
            self._halt.wait(self.every)

    def stop(self) -> float:
        self._halt.set()
        self.join()
        return self.peak / 2**20


async def one_session(context, url: str, timeout_s: float) -> tuple[float | None, str]:
    """(seconds to results, "") on success, (None, error) otherwise."""
    page = await context.new_page()
    t0 = time.monotonic()
    try:
        await page.goto(url + DISTILL_PATH, timeout=timeout_s * 1000)
        await page.wait_for_selector(APP_IDLE, timeout=timeout_s * 1000)
        await page.get_by_role("button", name=RUN_BUTTON, exact=True).click(timeout=timeout_s * 1000)
        remaining = max(1.0, timeout_s - (time.monotonic() - t0))
        await page.wait_for_selector(DONE, timeout=remaining * 1000)
        if await page.locator(ERROR_BOX).count():
            return None, (await page.locator(ERROR_BOX).first.inner_text())[:200]
        return time.monotonic() - t0, ""
    except Exception as exc:  # a timeout or a crash: this session failed, the others go on
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    finally:
        await page.close()


async def _drive(url: str, sessions: int, timeout_s: float) -> list[tuple[float | None, str]]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(viewport={"width": 1280, "height": 900})
            return await asyncio.gather(*(one_session(context, url, timeout_s) for _ in range(sessions)))
        finally:
            await browser.close()


CLIENTS = ("ws", "browser")


def run_loadtest(sessions: int = 30, timeout: float = 600.0, quiet: bool = False,
                 client: str = "ws") -> dict[str, Any]:
    """``client="ws"`` speaks Streamlit's websocket protocol (kdlab.serve.loadtest_ws): it measures the server alone;
    ``"browser"`` drives Chromium tabs, whose rendering shares the cores with the server."""
    if client not in CLIENTS:
        raise KdlabError(f"unknown load-test client {client!r}; choose one of {', '.join(CLIENTS)}")
    if not 1 <= sessions <= MAX_SESSIONS or not timeout > 0:
        raise KdlabError(f"sessions must be in [1, {MAX_SESSIONS}] and timeout > 0, got {sessions} and {timeout}")
    if client == "browser" and not Path(CHROMIUM).exists():
        raise KdlabError(f"the load test needs Chromium at {CHROMIUM} (apt-get install chromium)")
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, file=sys.stderr))
    with tempfile.TemporaryDirectory() as cache, running_server(env={"KDLAB_CACHE_DIR": cache}) as server:
        sampler = RssSampler(server.process.pid)
        sampler.start()
        say(f"server at {server.url}; {sessions} {client} sessions ...")
        t0 = time.monotonic()
        if client == "ws":
            from kdlab.serve.loadtest_ws import drive
        else:
            drive = _drive
        outcomes = asyncio.run(drive(server.url, sessions, timeout))
        wall = time.monotonic() - t0
        peak = sampler.stop()
    times = [t for t, _ in outcomes if t is not None]
    errors = [e for t, e in outcomes if t is None]
    return {"client": client, "sessions": sessions, "completed": len(times), "errors": len(errors),
            "p50_s": statistics.median(times) if times else float("nan"), "p95_s": percentile(times, 95),
            "peak_rss_mb": peak, "wall_s": wall, "error_messages": sorted(set(errors))[:10]}
