"""Where the Temperature slider's latency goes in Chromium: from a key press to the rerun sent over the
websocket, to the server's first answer, to the first example's bars redrawn for the new T. A fresh server on
127.0.0.1 (the teacher trained into the cache on the first visit if it is not there); medians.

Every time is taken inside the page (performance.now(): a keydown listener, the websocket's send and message
events, a check on every animation frame), so Playwright's own event delivery does not enter the numbers.

    python -m scripts.slider_latency [--changes 10]   (from the repository root; needs Debian's chromium)
"""
from __future__ import annotations

import argparse
import statistics

from playwright.sync_api import sync_playwright

from kdlab.serve.server import CHROMIUM, CHROMIUM_ARGS, running_server

IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
# Installed before the app's own scripts: timestamps of the key press, the websocket's traffic and the redraw.
PROBE = """
window.__kd = [];
const mark = name => window.__kd.push([name, performance.now()]);
const NativeWebSocket = window.WebSocket;
window.WebSocket = function (...args) {
  const ws = new NativeWebSocket(...args);
  ws.addEventListener('message', () => mark('answer'));
  const send = ws.send.bind(ws);
  ws.send = data => { mark('sent'); return send(data); };
  return ws;
};
window.WebSocket.prototype = NativeWebSocket.prototype;
Object.assign(window.WebSocket, NativeWebSocket);
document.addEventListener('keydown', () => mark('key'), true);
window.__kdWatch = name => {
  const check = () => document.querySelector(`[data-kd-bars='${name}']`) ? mark('drawn') : requestAnimationFrame(check);
  check();
};
"""


def measure(changes: int) -> list[tuple[float, float, float]]:
    """(key -> sent, sent -> first answer, key -> bars redrawn) in milliseconds, one per slider change."""
    rows = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        with running_server() as server:
            context = browser.new_context(viewport={"width": 1440, "height": 1000})
            context.add_init_script(PROBE)
            page = context.new_page()
            page.goto(f"{server.url}/Temperature?temperature=2")
            slider = page.get_by_role("slider", name="Temperature T")
            slider.wait_for(timeout=300_000)  # a cold teacher trains first
            page.wait_for_selector(IDLE)
            page.wait_for_timeout(1500)
            for k in range(1, changes + 1):
                slider.focus()
                page.evaluate("name => { window.__kd = []; window.__kdWatch(name); }", f"T={2 + 0.1 * k:g}")
                page.keyboard.press("ArrowRight")
                page.wait_for_function("() => window.__kd.some(([name]) => name === 'drawn')", timeout=10_000)
                page.wait_for_selector(IDLE)
                page.wait_for_timeout(300)
                rows.append(_row(page.evaluate("() => window.__kd")))
        browser.close()
    return rows


def _row(marks: list[list]) -> tuple[float, float, float]:
    first = lambda name, after=0.0: next(t for n, t in marks if n == name and t >= after)  # noqa: E731
    key = first("key")
    sent = first("sent", key)
    return sent - key, first("answer", sent) - sent, first("drawn", key) - key


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--changes", type=int, default=10)
    rows = measure(ap.parse_args().changes)
    med = [statistics.median(col) for col in zip(*rows)]
    print(f"{len(rows)} slider changes, medians: key press -> rerun sent {med[0]:.0f} ms, -> the server's first "
          f"answer {med[1]:.0f} ms, key press -> bars redrawn {med[2]:.0f} ms "
          f"(min {min(r[2] for r in rows):.0f}, max {max(r[2] for r in rows):.0f})")


if __name__ == "__main__":
    main()
