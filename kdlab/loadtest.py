"""``kdlab loadtest``: N browser sessions run the default digits preset on one real server at once.

One headless Chromium (Debian's), N isolated browser contexts (separate Streamlit sessions). Each opens
the Distill page, clicks Run and waits for the results. We report completions, errors, median and 95th
percentile completion time, and the server's peak RSS (sampled every 0.2 s, children included).
"""
from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from kdlab.server import CHROMIUM, CHROMIUM_ARGS, running_server

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
    return ranked[min(len(ranked) - 1, max(0, round(q / 100 * len(ranked) + 0.5) - 1))]


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


async def one_session(browser, url: str, timeout_s: float) -> tuple[float | None, str]:
    """(seconds to results, "") on success, (None, error) otherwise."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
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
        await context.close()


async def _drive(url: str, sessions: int, timeout_s: float) -> list[tuple[float | None, str]]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            return await asyncio.gather(*(one_session(browser, url, timeout_s) for _ in range(sessions)))
        finally:
            await browser.close()


def run_loadtest(sessions: int = 30, timeout: float = 600.0, quiet: bool = False) -> dict[str, Any]:
    if not Path(CHROMIUM).exists():
        from kdlab.errors import KdlabError
        raise KdlabError(f"the load test needs Chromium at {CHROMIUM} (apt-get install chromium)")
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, file=sys.stderr))
    with tempfile.TemporaryDirectory() as cache, running_server(env={"KDLAB_CACHE_DIR": cache}) as server:
        sampler = RssSampler(server.process.pid)
        sampler.start()
        say(f"server at {server.url}; {sessions} sessions ...")
        t0 = time.monotonic()
        outcomes = asyncio.run(_drive(server.url, sessions, timeout))
        wall = time.monotonic() - t0
        peak = sampler.stop()
    times = [t for t, _ in outcomes if t is not None]
    errors = [e for t, e in outcomes if t is None]
    return {"sessions": sessions, "completed": len(times), "errors": len(errors),
            "p50_s": statistics.median(times) if times else float("nan"), "p95_s": percentile(times, 95),
            "peak_rss_mb": peak, "wall_s": wall, "error_messages": sorted(set(errors))[:10]}
