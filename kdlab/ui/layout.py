"""App-wide layout: the navigation, page headers, errors as one-line messages, the pool's status."""
from __future__ import annotations

import contextlib
import importlib
import re
import sys
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import streamlit as st

from kdlab.base.errors import KdlabError
from kdlab.serve.jobs import Busy, Job, QueueFull
from kdlab.ui import i18n, process, state
from kdlab.ui.i18n import SOURCE, t
from kdlab.ui.join import app_address, join_popover

# Material icons ship with Streamlit's frontend: they render even where no emoji font is installed.
ICONS = {"Home": ":material/home:", "Playground": ":material/scatter_plot:", "Distill": ":material/science:",
         "Temperature": ":material/thermostat:", "Sweep": ":material/grid_on:", "Runs": ":material/history:",
         "Experiments": ":material/biotech:", "Lesson": ":material/school:"}
CHART_CONFIG = {"displaylogo": False, "modeBarButtonsToRemove": ["lasso2d", "select2d"]}
PAGE_FILE = re.compile(r"(\d+)_(\w+)\.py")
ROOT = Path(__file__).resolve().parents[2]  # the folder of app.py, pages/ and assets/


def pages(root: Path = ROOT) -> list[tuple[Path, str]]:
    """(path, title) of every ``pages/<n>_<Title>.py`` in order; new pages appear without code changes."""
    found = []
    for path in (root / "pages").glob("*.py"):
        if m := PAGE_FILE.fullmatch(path.name):
            found.append((int(m.group(1)), path, m.group(2).replace("_", " ")))
    return [(path, title) for _, path, title in sorted(found)]


ROUTED = "kd.routed"  # set by app.py's navigation() in every run it routes
PRESENTER = "kd.presenter"  # presenter mode: large type, collapsed sidebar (toggle, or ?present=1)
PRESENTER_CSS = """<style>
html, body, [data-testid="stAppViewContainer"] { font-size: 21px; }
[data-testid="stMarkdownContainer"] p, [data-testid="stCaptionContainer"], li { font-size: 1.05rem; }
h1 { font-size: 2.6rem !important; } h2, h3 { font-size: 1.9rem !important; }
</style>"""


def require_router() -> None:
    """First line of every page: make sure the page runs through app.py (``st.navigation``).

    Streamlit still has its old "pages directory" mode: until some session has run ``st.navigation``, a visitor
    who opens a page URL directly (a shared link, the load test) gets that page script run on its own, without
    app.py's set-up and navigation. Calling ``st.navigation`` switches that mode off for the process (its
    documented effect), and the rerun then goes through app.py like every other run; it costs one near-empty
    run, once per server. tests/test_browser.py opens a page URL on a fresh server to keep this honest.
    (AppTest runs pages directly by design; there the rerun would only swallow button clicks, so it is skipped.)
    """
    from streamlit import config

    if not st.session_state.get(ROUTED) and not config.get_option("global.appTest"):
        navigation()  # the real pages, so the page asked for is found
        st.rerun()


def navigation():
    """Set up the process and this run's page config, and return the page to run (``st.navigation``)."""
    from kdlab.ui.home import home

    if st.query_params.get("present") in ("1", "true"):
        st.session_state[PRESENTER] = True
    i18n.set_from_url()
    st.set_page_config(page_title="kdlab", page_icon="🧪", layout="wide",
                       initial_sidebar_state="collapsed" if presenter() else "auto")
    entries = [st.Page(home, title=t("Home"), icon=ICONS["Home"], default=True, url_path="home")]
    # A page's address comes from its file name, so a link is the same in every language.
    entries += [st.Page(str(path), title=t(title), icon=ICONS.get(title)) for path, title in pages()]
    page = st.navigation(entries)
    st.session_state[ROUTED] = True
    if presenter():
        st.markdown(PRESENTER_CSS, unsafe_allow_html=True)
    return page


def presenter() -> bool:
    return bool(st.session_state.get(PRESENTER, False))


def presenter_toggle() -> None:
    """The sidebar's switch for projecting; the URL keeps it (``?present=1``), so a link opens in it."""
    on = st.sidebar.toggle(t("Presenter mode"), key=PRESENTER,
                           help=t("Large type and a collapsed sidebar, for a projector."))
    if on:
        st.query_params["present"] = "1"
    elif "present" in st.query_params:
        del st.query_params["present"]


def when_imported(module: str, draw: Callable[[], None]) -> None:
    """``draw()`` now if ``module`` is imported already (or being imported: then this waits for it), else once the
    background warm-up has imported it: the first page of a fresh server does not wait seconds for torch."""
    if module in sys.modules:
        importlib.import_module(module)  # returns at once, or when another thread's import of it completes
        draw()
        return
    process.warm_up()
    _until_imported(module)


@st.fragment(run_every=0.3)
def _until_imported(module: str) -> None:
    if module in sys.modules:
        st.rerun()  # the whole page, which now draws what needed the module
    st.caption(t("Loading…"))


def chart(fig, key: str, where=None) -> None:
    """A Plotly figure with kdlab's own styling (kdlab.plots.figures), not Streamlit's theme: large projector fonts,
    larger still in presenter mode."""
    if presenter():
        from kdlab.plots.figures import for_presenter

        fig = for_presenter(fig)
    (where or st).plotly_chart(fig, key=key, theme=None, config=CHART_CONFIG)


def bars(classes: Sequence[str], sets: Sequence[dict[str, Any]], true_class: int | None = None, where=None) -> None:
    """Soft-target bars (kdlab.plots.bars: HTML, which a T step redraws in place), larger in presenter mode;
    ``classes`` as the dataset has them (the bars show them in the reader's language)."""
    from kdlab.plots.bars import probability_bars  # imports Plotly's colours module: not for the home page

    (where or st).html(probability_bars(classes, sets, true_class, presenter()))


def header(title: str, caption: str, join: bool = True) -> None:
    """The page's title and caption; in presenter mode with a Join button (the address and its QR code) beside
    them, for the students who come late (``join=False``: the page shows the panel itself)."""
    address = app_address() if join and presenter() else None
    if address is not None and address.url is not None:
        left, right = st.columns([4, 1], vertical_alignment="center")  # room for the button at 1024 wide
        left.title(title)
        with right:
            join_popover(address.url)
    else:
        st.title(title)
    st.caption(caption)
    if notice := state.pop_notice():
        st.success(notice)


def explain(title: str, name: str) -> None:
    """An explanation from ``assets/<name>.md`` (in the session's language) in a closed expander: the projector
    view stays clean. ``title`` is translated by the caller."""
    with st.expander(title):
        st.markdown(i18n.asset(name + ".md"))


@contextlib.contextmanager
def errors_as_messages() -> Iterator[None]:
    """A KdlabError inside the block shows as ``st.error(message)``, never a traceback; when it is this
    session's other job that is in the way (one active job a session), a button stops that job."""
    try:
        yield
    except Busy as exc:
        st.error(busy_message(exc.job))
        st.button(t("Stop “{label}”", label=exc.job.label), key="busy.stop", on_click=exc.job.stop)
    except KdlabError as exc:
        st.error(message(exc))


def busy_message(job: Job) -> str:
    what = t("waiting in the queue") if job.status == "queued" else t("running")
    return t("You already have a run in progress: “{label}”, {state} for {elapsed}. Stop it or wait until it "
             "finishes, then start the next one.", label=job.label, state=what, elapsed=duration(job.elapsed()))


def duration(seconds: float) -> str:
    seconds = int(seconds)
    return t("{s} s", s=seconds) if seconds < 60 else t("{m} min {s:02d} s", m=seconds // 60, s=seconds % 60)


def message(exc: KdlabError) -> str:
    """``exc``'s message for this reader. The pool's, which a class meets, are in the reader's language; the
    others (a forged link's value, a damaged file: what the widgets cannot produce) stay in English, introduced
    in the reader's language."""
    if isinstance(exc, QueueFull):
        if exc.per_client:
            return t("{waiting} runs from your address are already waiting; wait until one of them starts.",
                     waiting=exc.waiting)
        return t("The server is busy ({waiting} runs waiting); try again in a minute.", waiting=exc.waiting)
    if i18n.language() == SOURCE:
        return str(exc)
    return t("This cannot be done (the reason, in English): {reason}", reason=str(exc))


def after_run() -> None:
    """The end of every run: the presenter switch and the pool's load in the sidebar, then (once per process)
    start importing the heavy modules in the background, after the home page has been sent rather than
    competing with it for the GIL."""
    presenter_toggle()
    i18n.language_switch()
    stats = process.stats()
    st.sidebar.caption(t("Server: {running}/{workers} workers busy, {queued} runs waiting.", **stats))
    process.warm_up()
