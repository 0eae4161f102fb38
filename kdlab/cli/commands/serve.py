"""``kdlab serve``: the app's server (kdlab.ui.serve), bound to loopback unless told otherwise."""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any, NoReturn


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="start the app (loopback by default; --host 0.0.0.0 for a class)",
                       description="The app's server; it imports torch and the pages' modules before it answers (a first visit renders at once).")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine "
                                                       "only; 0.0.0.0: every network interface, for a class)")
    p.add_argument("--port", type=int, default=8501, help="default: 8501")
    p.add_argument("--public-url", default=None, help="the address students open, shown with its QR code on the "
                                                      "home page (default: http://<this machine's LAN address>:"
                                                      "<port>/ when --host is not loopback); for a proxy or a "
                                                      "name. The app reads it from KDLAB_PUBLIC_URL")
    p.set_defaults(run=run, show=str)


def run(a: argparse.Namespace) -> NoReturn | dict[str, Any]:
    # The server is the UI layer's program: replace this process with it (the CLI never imports kdlab.ui).
    extra = ["--public-url", a.public_url] if a.public_url is not None else []
    os.execv(sys.executable, [sys.executable, "-m", "kdlab.ui.serve", "--host", a.host, "--port", str(a.port), *extra])
