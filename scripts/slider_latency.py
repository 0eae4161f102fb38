"""Where the Temperature slider's latency goes in Chromium: from a key press to the rerun sent over the
websocket, to the server's first answer, to the first example's bars redrawn for the new T. A fresh server on
127.0.0.1 (the teacher trained into the cache on the first visit if it is not there); medians.

    python -m scripts.slider_latency [--changes 10]   (from the repository root; needs Debian's chromium)
"""
from __future__ import annotations

import argparse
import statistics
import time

from playwright.sync_api import sync_playwright

from kdlab.serve.server import CHROMIUM, CHROMIUM_ARGS, running_server

IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
REDRAWN = """name => [...document.querySelectorAll('.js-plotly-plot')].some(
    p => (p.data || []).some(t => (t.name || '').endsWith(name)))"""


def measure(changes: int) -> list[tuple[float, float, float]]:
    """(key -> sent, sent -> first answer, key -> bars redrawn) in seconds, one per slider change."""
    frames: list[tuple[str, float]] = []
    rows = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        with running_server() as server:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.on("websocket", lambda ws: (ws.on("framesent", lambda _: frames.append(("sent", time.perf_counter()))),
                                             ws.on("framereceived", lambda _: frames.append(("recv", time.perf_counter())))))
            page.goto(f"{server.url}/Temperature?temperature=2")
            slider = page.get_by_role("slider", name="Temperature T")
            slider.wait_for(timeout=300_000)  # a cold teacher trains first
            page.wait_for_selector(IDLE)
            page.wait_for_timeout(1500)
            for k in range(1, changes + 1):
                slider.focus()
                frames.clear()
                t0 = time.perf_counter()
                page.keyboard.press("ArrowRight")
                page.wait_for_function(REDRAWN, arg=f"T={2 + 0.1 * k:g}", timeout=10_000)
                t3 = time.perf_counter()
                page.wait_for_selector(IDLE)
                page.wait_for_timeout(300)
                sent = next(t for kind, t in frames if kind == "sent")
                answer = next(t for kind, t in frames if kind == "recv" and t > sent)
                rows.append((sent - t0, answer - sent, t3 - t0))
        browser.close()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--changes", type=int, default=10)
    rows = measure(ap.parse_args().changes)
    med = [1000 * statistics.median(col) for col in zip(*rows)]
    print(f"{len(rows)} slider changes, medians: key press -> rerun sent {med[0]:.0f} ms, -> the server's first "
          f"answer {med[1]:.0f} ms, key press -> bars redrawn {med[2]:.0f} ms (min {1000 * min(r[2] for r in rows):.0f})")


if __name__ == "__main__":
    main()
