"""The app's server: Streamlit's own `streamlit run app.py`, in a process that imports torch and the pages'
modules before the server answers, so the first visitor of a fresh server does not wait seconds for them. `kdlab serve` runs this module (python -m kdlab.ui.serve --host ... --port ...).

The bind address is an explicit choice: loopback by default (only this machine can connect); a class needs
``--host 0.0.0.0``, which lets every machine that can reach this one use the app (README, "Classroom use").

The app shows students where to join (kdlab.ui.join): this program puts the classroom address into the
environment variable ``KDLAB_PUBLIC_URL`` before Streamlit starts: ``--public-url`` when given (a proxy, a
host name), else ``http://<this machine's LAN address>:<port>/`` for a bind beyond loopback. An inherited
``KDLAB_PUBLIC_URL`` is kept unless ``--public-url`` replaces it."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from kdlab.ui import join

APP = Path(__file__).resolve().parents[2] / "app.py"
WARM_TIMEOUT_S = 60.0  # past this (a very busy machine) the server starts anyway; the pages import what they need


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="kdlab serve", description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine "
                                                       "only; 0.0.0.0: every network interface, for a class)")
    p.add_argument("--port", type=int, default=8501, help="default: 8501")
    p.add_argument("--public-url", default=None, help="the address students open, shown with its QR code on the "
                                                      "home page (default: http://<this machine's LAN address>:"
                                                      "<port>/ when --host is not loopback); for a proxy or a name")
    a = p.parse_args(argv)
    if a.public_url is not None:
        try:
            join.check_public_url(a.public_url)
        except ValueError as exc:
            p.error(str(exc))
    return a


def environment(a: argparse.Namespace, inherited: dict[str, str] | None = None) -> dict[str, str]:
    """What the app is told (``KDLAB_PUBLIC_URL``), or {} when it has nothing to tell (loopback)."""
    inherited = os.environ if inherited is None else inherited
    if a.public_url is None and inherited.get(join.PUBLIC_URL_ENV, "").strip():
        return {}  # the user's own setting stands
    address = join.classroom_url(a.host, a.port, a.public_url)
    return {join.PUBLIC_URL_ENV: address.url} if address.url else {}


def main(argv: list[str] | None = None) -> int:
    a = parse(argv)
    os.environ.update(environment(a))  # read by the app's join panel, in this very process
    from streamlit.web import cli as streamlit_cli

    from kdlab.ui import process

    # torch, the pages' modules and the default dataset's loader (~3 s) before the server answers: once it is
    # healthy, a first visit of a training page renders at once instead of waiting for them
    print("kdlab: importing torch and the lab's modules ...", file=sys.stderr, flush=True)
    process.warm_up()
    if not process.wait_warm(WARM_TIMEOUT_S):
        print(f"kdlab: still importing after {WARM_TIMEOUT_S:.0f} s; starting the server anyway", file=sys.stderr)
    sys.argv = ["streamlit", "run", str(APP), "--server.address", a.host, "--server.port", str(a.port),
                "--server.headless", "true", "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"]
    return streamlit_cli.main()


if __name__ == "__main__":
    raise SystemExit(main())
