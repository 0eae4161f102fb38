"""App-wide layout: the navigation, page headers, errors as one-line messages, the pool's status."""
from __future__ import annotations

import contextlib
import functools
import re
from pathlib import Path
from typing import Iterator

import streamlit as st

from kdlab.base.errors import KdlabError
from kdlab.ui import process, state

# Material icons ship with Streamlit's frontend: they render even where no emoji font is installed.
ICONS = {"Home": ":material/home:", "Distill": ":material/science:", "Temperature": ":material/thermostat:",
         "Sweep": ":material/grid_on:", "Runs": ":material/history:", "Experiments": ":material/biotech:"}
CHART_CONFIG = {"displaylogo": False, "modeBarButtonsToRemove": ["lasso2d", "select2d"]}
PAGE_FILE = re.compile(r"(\d+)_(\w+)\.py")
ASSETS = Path(__file__).resolve().parents[2] / "assets"  # images and static text of the pages


def pages(root: Path) -> list[tuple[Path, str]]:
    """(path, title) of every ``pages/<n>_<Title>.py`` in order; new pages appear without code changes."""
    found = []
    for path in (root / "pages").glob("*.py"):
        if m := PAGE_FILE.fullmatch(path.name):
            found.append((int(m.group(1)), path, m.group(2).replace("_", " ")))
    return [(path, title) for _, path, title in sorted(found)]


def require_router() -> None:
    """First line of every page: make sure the page runs through app.py (``st.navigation``).

    Streamlit still has its old "pages directory" mode: until some session has run app.py, a visitor who
    opens a page URL directly (a shared link, the load test) gets that page script run on its own, without
    app.py's set-up and navigation. Switching the flag off and rerunning makes that first run go through
    app.py like every other; it costs one near-empty run, once. (AppTest resets the flag before every run
    and runs pages directly by design: there the rerun would only swallow button clicks, so it is skipped.)
    """
    from streamlit import config
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory and not config.get_option("global.appTest"):
        PagesManager.uses_pages_directory = False
        st.rerun()


def navigation(home, root: Path):
    """Set up the process and this run's page config, and return the page to run (``st.navigation``)."""
    st.set_page_config(page_title="kdlab", page_icon="🧪", layout="wide")
    entries = [st.Page(home, title="Home", icon=ICONS["Home"], default=True, url_path="home")]
    entries += [st.Page(str(path), title=title, icon=ICONS.get(title)) for path, title in pages(root)]
    return st.navigation(entries)


def chart(fig, key: str, where=None) -> None:
    """A Plotly figure with kdlab's own styling (kdlab.plots.figures), not Streamlit's theme: large projector fonts."""
    (where or st).plotly_chart(fig, key=key, theme=None, config=CHART_CONFIG)


def header(title: str, caption: str) -> None:
    st.title(title)
    st.caption(caption)
    if notice := state.pop_notice():
        st.success(notice)


@functools.lru_cache(maxsize=32)
def asset_text(name: str) -> str:
    return (ASSETS / name).read_text(encoding="utf-8")


def explain(title: str, name: str) -> None:
    """An explanation from ``assets/<name>.md`` in a closed expander: the projector view stays clean."""
    with st.expander(title):
        st.markdown(asset_text(f"{name}.md"))


@contextlib.contextmanager
def errors_as_messages() -> Iterator[None]:
    """A KdlabError inside the block shows as ``st.error(message)``, never a traceback."""
    try:
        yield
    except KdlabError as exc:
        st.error(str(exc))


def after_run() -> None:
    """The end of every run: the pool's load in the sidebar, then (once per process) start importing the heavy
    modules in the background, after the home page has been sent rather than competing with it for the GIL."""
    stats = process.stats()
    st.sidebar.caption(f"Server: {stats['running']}/{stats['workers']} workers busy, {stats['queued']} runs waiting.")
    process.warm_up()
