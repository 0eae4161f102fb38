"""Start the real Streamlit server on 127.0.0.1 (for the browser test and the load test)."""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

APP = Path(__file__).resolve().parents[2] / "app.py"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@dataclass
class Server:
    url: str
    process: subprocess.Popen


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_server(env: dict[str, str] | None = None, startup_timeout: float = 60.0,
                   log_path: Path | None = None) -> Iterator[Server]:
    """The app's server as `kdlab serve` runs it, on a free port; yields once /_stcore/health answers; always
    terminates it."""
    port = free_port()
    cmd = [sys.executable, "-m", "kdlab.ui.serve", "--host", "127.0.0.1", "--port", str(port)]  # `kdlab serve`
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, cwd=APP.parent, env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_healthy(url, proc, startup_timeout, log_path)
        yield Server(url, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if log_path:
            log.close()


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float, log_path: Path | None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with status {proc.returncode} before it was healthy{_tail(log_path)}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        time.sleep(0.2)
    raise TimeoutError(f"streamlit did not become healthy within {timeout:.0f} s{_tail(log_path)}")


def _tail(log_path: Path | None, chars: int = 3000) -> str:
    if log_path is None or not log_path.exists():
        return ""
    return "; its log ends:\n" + log_path.read_text(errors="replace")[-chars:]
