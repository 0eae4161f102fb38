"""``kdlab loadtest``: N concurrent app sessions against a real local server."""
from __future__ import annotations

import argparse
from typing import Any

from kdlab.cli import args as cli_args


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("loadtest", help="N concurrent app sessions against a real local server")
    p.add_argument("--sessions", type=int, default=30, help="default: 30")
    p.add_argument("--timeout", type=float, default=600.0,
                   help="seconds before unfinished sessions count as errors (default: 600)")
    p.add_argument("--client", choices=["ws", "browser"], default="ws",
                   help="ws: Streamlit's websocket protocol, no browser (measures the server alone); "
                        "browser: Chromium tabs (default: ws)")
    cli_args.output_flags(p)
    p.set_defaults(run=run, show=show)


def run(a: argparse.Namespace) -> dict[str, Any]:
    from kdlab.serve.loadtest import run_loadtest

    return run_loadtest(sessions=a.sessions, timeout=a.timeout, quiet=a.quiet, client=a.client)


def show(out: dict[str, Any]) -> str:
    lines = [f"{out['completed']}/{out['sessions']} {out['client']} sessions completed, {out['errors']} errors, "
             f"p50 {out['p50_s']:.1f} s, p95 {out['p95_s']:.1f} s, peak server RSS {out['peak_rss_mb']:.0f} MB, "
             f"{out['wall_s']:.0f} s wall"]
    return "\n".join(lines + [f"error: {m}" for m in out["error_messages"]])
