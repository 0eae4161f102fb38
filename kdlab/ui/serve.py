"""The app's server: Streamlit's own `streamlit run app.py`, in a process that imports torch and the pages'
modules in the background while the server starts, so the first visitor of a fresh server does not wait
seconds for them. `kdlab serve` runs this module (python -m kdlab.ui.serve --host ... --port ...).

The bind address is an explicit choice: loopback by default (only this machine can connect); a class needs
``--host 0.0.0.0``, which lets every machine that can reach this one use the app (README, "Classroom use")."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "app.py"


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="kdlab serve", description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine "
                                                       "only; 0.0.0.0: every network interface, for a class)")
    p.add_argument("--port", type=int, default=8501, help="default: 8501")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    a = parse(argv)
    from streamlit.web import cli as streamlit_cli

    from kdlab.ui import process

    process.warm_up()  # a background thread: torch and the pages' modules, while the server starts
    sys.argv = ["streamlit", "run", str(APP), "--server.address", a.host, "--server.port", str(a.port),
                "--server.headless", "true", "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"]
    return streamlit_cli.main()


if __name__ == "__main__":
    raise SystemExit(main())
