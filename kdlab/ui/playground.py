"""The Playground page's pieces: its settings (kdlab.runs.playground.PLAYGROUND_SETTINGS) as widgets and in the
URL, the pool job of a Run, the three students drawn live, the teacher's soft-target field at T, and the replay
of a finished run.

Two parts rerun on their own (``st.fragment``), so the page's other panels are not rebuilt: the teacher's panel,
whose T slider redraws the field from logits computed once on the grid (no job, no forward pass), and the replay
slider with the three students. While a run trains, ``runner.watch``'s poller draws its latest snapshot.
"""
from __future__ import annotations

from typing import Any

import pandas  # noqa: F401  before any figure: Plotly's validators use pandas if sys.modules has it, and on a
# fresh server the background warm-up may be importing it right now (a half-initialised module); an import
# here waits until that import has finished
import streamlit as st

from kdlab.base.errors import KdlabError
from kdlab.base.settings import changed
from kdlab.data.toys import TOYS
from kdlab.plots import playground as plots
from kdlab.runs.playground import (ARMS, PLAYGROUND_SETTINGS as TABLE, PlaygroundConfig, PlaygroundResult, Setup,
                                   Snapshot, find_setup, run_playground, validate)
from kdlab.serve.jobs import Job
from kdlab.ui import forms, layout, resources, runner
from kdlab.ui.i18n import N_, t

SLOT = "playground"
CONFIG = "kd.playground.config"  # the session's PlaygroundConfig, its noise written out
RESULT = "kd.playground.result"  # the last finished (or stopped) run: a PlaygroundResult
PREFIX = "pg"  # widget keys "pg.<setting name>"
FRAME = "pg.frame"  # the replay slider's key
DEFAULT = PlaygroundConfig().resolved()
MAIN = ("dataset", "labelled", "alpha")  # the knobs of the demonstration, above the panels; T is the teacher's
SIDEBAR = [s for s in TABLE if s.name not in (*MAIN, "temperature")]
PANEL_HEIGHT = 280  # a 2-line title over a square plot ~210 px wide: little white above and below
ABOUT = {
    "teacher": N_("Learnt every label. Colour: its class; depth: how sure it is at T. Raise T: the field pales "
                  "near the boundaries, the doubts the soft student copies."),
    "scratch": N_("The labelled points alone: all that the labels teach."),
    "hard": N_("The transfer points with the teacher's top class as label, plus the labels: its answers, not its "
               "doubts."),
    "soft": N_("The same points with the teacher's probabilities at T (weight α), plus the labels. Its gain over "
               "*hard* is the dark knowledge."),
}  # shown with t()


# -- settings -----------------------------------------------------------------------------------------------------

def config() -> PlaygroundConfig:
    return st.session_state.get(CONFIG, DEFAULT)


def settings_ui(where: list) -> PlaygroundConfig:
    """The settings' widgets (MAIN in the columns ``where``, the others in the sidebar), kept in step with the URL:
    a link reproduces the view; a bad value in it falls back to the default with a notice."""
    cfg = config()
    if (linked := forms.read_url(TABLE, cfg, DEFAULT, validate)) is not None:
        if "noise" not in st.query_params and linked.dataset != cfg.dataset:
            linked = linked.replace(noise=None)  # a link naming another toy but no noise: that toy's own
        cfg = linked.resolved()
        forms.reset(TABLE, PREFIX)
    new = forms.draw(TABLE, cfg, PREFIX, where[0], names=["dataset"])
    if new.dataset != cfg.dataset:  # each toy's noise has its own scale: start from the new toy's default
        new = new.replace(noise=TOYS[new.dataset].noise)
        forms.reset([s for s in TABLE if s.name == "noise"], PREFIX)
    for name, box in zip(MAIN[1:], where[1:]):
        new = forms.draw(TABLE, new, PREFIX, box, names=[name])
    st.sidebar.header(t("Playground settings"))
    new = forms.draw(SIDEBAR, new, PREFIX, st.sidebar)
    fitted = _fitted(new)
    st.session_state[CONFIG] = fitted
    forms.write_url(TABLE, fitted)
    if fitted != new:  # fewer training points than the counts asked for: redraw the counts' widgets
        forms.reset([s for s in TABLE if s.name in ("labelled", "transfer")], PREFIX)
        st.rerun()
    return fitted


def _fitted(cfg: PlaygroundConfig) -> PlaygroundConfig:
    """The labelled and transfer counts within the training points (their widgets' bounds follow ``points``)."""
    return cfg.replace(labelled=min(cfg.labelled, cfg.points), transfer=min(cfg.transfer, cfg.points))


def check(cfg: PlaygroundConfig) -> str:
    """Why Run cannot start ("" if it can): the config's own rules, beyond the widgets' bounds."""
    try:
        validate(cfg)
        resources.dataset(cfg.dataset_name)
    except KdlabError as exc:
        return str(exc)
    return ""


# -- the teacher's panel ------------------------------------------------------------------------------------------

class _NotCached(Exception):
    """Raised inside the cached function, so that st.cache_resource does not remember "no teacher yet"."""


@st.cache_resource(max_entries=16, show_spinner=False)
def _cached_setup(key: PlaygroundConfig) -> Setup:
    found = find_setup(key, data=resources.dataset(key.dataset_name))
    if found is None:
        raise _NotCached
    return found


def _setup_key(cfg: PlaygroundConfig) -> PlaygroundConfig:
    """What a Setup depends on (data, teacher, points, grid): the students' settings at their defaults."""
    return cfg.replace(student=DEFAULT.student, temperature=DEFAULT.temperature, alpha=DEFAULT.alpha,
                       steps=DEFAULT.steps, lr=DEFAULT.lr, batch_size=DEFAULT.batch_size, frames=DEFAULT.frames)


def teacher_setup(cfg: PlaygroundConfig) -> Setup | None:
    """The Setup of ``cfg`` if its teacher is cached (from the last run, memory or disk); never trains."""
    result: PlaygroundResult | None = st.session_state.get(RESULT)
    if result is not None and _setup_key(result.setup.config) == _setup_key(cfg):
        return result.setup
    try:
        return _cached_setup(_setup_key(cfg))
    except (_NotCached, KdlabError):
        return None


@st.fragment
def teacher_panel() -> None:
    """The teacher's soft-target field at T, the T slider under it. A fragment: moving T reruns only this
    (a softmax of the cached grid logits and one figure), not the page."""
    box = st.container(key="pg_teacher_panel")  # PANELS_CSS finds the teacher's column by this key
    chart = box.container()
    cfg = forms.draw(TABLE, config(), PREFIX, box, names=["temperature"])
    st.session_state[CONFIG] = cfg
    forms.write_url(TABLE, cfg)
    setup = teacher_setup(cfg)
    if setup is None:
        chart.info(t("The teacher {teacher} has not learnt this data set yet: **Run** trains it first (a few "
                     "seconds, once; then it is cached) and draws its field here.", teacher=cfg.teacher))
    else:
        layout.chart(plots.teacher_figure(setup.grid.xs, setup.grid.ys, setup.teacher_logits, cfg.temperature,
                                          setup.data.classes, test_accuracy=setup.teacher.test_accuracy,
                                          height=PANEL_HEIGHT, **setup.points()), key="pg_chart.teacher", where=chart)
    box.caption(t(ABOUT["teacher"]))
    result: PlaygroundResult | None = st.session_state.get(RESULT)
    if result is not None and result.setup.config.temperature != cfg.temperature:
        box.caption(t("The soft student learnt at T = {trained:g}; **Run** again to train it at T = {now:g}.",
                      trained=result.setup.config.temperature, now=cfg.temperature))


# The teacher's column keeps at least PANEL_MIN_WIDTH: where the page is narrower than four such panels (a
# 1024 px window with the sidebar open) it wraps onto a row of its own above the three students, instead of
# four panels too narrow for their titles. (Streamlit's columns already wrap; they just have no minimum width.)
PANEL_MIN_WIDTH = 190
PANELS_CSS = f"""<style>
[data-testid="stColumn"]:has(.st-key-pg_teacher_panel) {{ min-width: {PANEL_MIN_WIDTH}px; }}
</style>"""


def panels_css() -> None:
    st.markdown(PANELS_CSS, unsafe_allow_html=True)


# -- a run on the pool --------------------------------------------------------------------------------------------

def start(cfg: PlaygroundConfig) -> Job:
    data = resources.dataset(cfg.dataset_name)

    def fn(job: Job) -> PlaygroundResult:
        return run_playground(cfg, data=data, should_stop=job.should_stop,
                              on_teacher=lambda ev: job.emit(("teacher", ev)),
                              on_setup=lambda setup: job.emit(("setup", setup)),
                              on_snapshot=lambda snap: job.emit(("snapshot", snap)))

    return runner.submit(SLOT, fn, label=t("playground"))  # shown to its session only


def collect() -> None:
    runner.collect(SLOT, _keep)


def _keep(result: PlaygroundResult) -> None:
    st.session_state[RESULT] = result
    st.session_state.pop(FRAME, None)  # the replay starts at the last step


def busy() -> bool:
    job = runner.current(SLOT)
    return job is not None and job.active


def watch() -> None:
    runner.watch(SLOT, live_panel)


def live_panel(job: Job) -> None:
    """Drawn by the poller about twice a second while the job runs: the newest snapshot of the three students."""
    setup, snap, teacher = None, None, None
    for kind, payload in reversed(list(job.events)):  # a copy: the worker keeps appending
        if kind == "snapshot" and snap is None:
            snap = payload
        elif kind == "setup":
            setup = payload
            break
        elif kind == "teacher" and teacher is None:
            teacher = payload
    if setup is None or snap is None:
        frac = teacher.step / max(1, teacher.total_steps) if teacher is not None else 0.0
        st.progress(frac, text=t("Training the teacher on every label (once; then it is cached)…") if teacher
                    else t("Getting the teacher…"))
        return
    students(setup, snap, "pg_chart.live")  # first: on a projector the panels stay where the replay shows them
    st.progress(snap.step / max(1, snap.total_steps),
                text=t("Training the three students: step {step:,} of {total:,}", step=snap.step,
                       total=snap.total_steps))


# -- the three students -------------------------------------------------------------------------------------------

def students(setup: Setup, snap: Snapshot, key: str) -> None:
    """The three panels side by side: decision regions shaded by confidence, the labelled points marked."""
    pts = setup.points()
    for col, arm in zip(st.columns(len(ARMS)), ARMS):
        frame = snap.arms[arm]
        fig = plots.boundary_figure(setup.grid.xs, setup.grid.ys, frame.probs, setup.data.classes,
                                    plots.arm_title(arm, frame.test_accuracy, frame.step),
                                    labelled_xy=pts["labelled_xy"], labelled_class=pts["labelled_class"],
                                    transfer_xy=None if arm == "scratch" else pts["transfer_xy"],
                                    height=PANEL_HEIGHT)
        layout.chart(fig, key=f"{key}.{arm}", where=col)
        col.caption(t(ABOUT[arm]))


@st.fragment
def replay(result: PlaygroundResult) -> None:
    """The finished run's three students at any of its snapshots (a fragment: the slider reruns only this)."""
    frames = result.frames
    panels = st.container()
    if len(frames) > 1:
        i = st.select_slider(t("Replay the training"), options=list(range(len(frames))), value=len(frames) - 1,
                             format_func=lambda k: t("step {step:,}", step=frames[k].step), key=FRAME,
                             help=t("Drag to watch the three students learn, from their first step to their last."))
    else:
        i = 0
    with panels:
        students(result.setup, frames[i], "pg_chart.arm")


def results(result: PlaygroundResult, cfg: PlaygroundConfig) -> None:
    """The stale or stopped notice, the replay and one sentence comparing the three students."""
    then = result.setup.config
    final = result.final
    if final.reason == "stopped":
        st.warning(t("**Stopped run**: the students were stopped at step {step:,} of {total:,}; below is what they "
                     "had learnt by then.", step=final.step, total=final.total_steps), icon="⏹️")
    elif final.reason == "time limit":
        st.info(t("This run hit its time limit at step {step:,} of {total:,}.", step=final.step,
                  total=final.total_steps))
    if names := [t(s.label) for s in TABLE if s.name in changed(TABLE, then, cfg)]:
        st.warning(t("**Stale results**: the settings changed since this run ({changed}). Press Run to update the "
                     "students.", changed=", ".join(names)), icon="⚠️")
    replay(result)
    st.caption(verdict(result))


def verdict(result: PlaygroundResult) -> str:
    """One sentence on the final accuracies, from this run's own numbers."""
    acc = {arm: 100 * f.test_accuracy for arm, f in result.final.arms.items()}
    cfg, n_test = result.setup.config, len(result.setup.data.y_test)
    text = t("Test accuracy on {n_test:,} points: scratch {scratch:.1f} %, hard pseudo-labels {hard:.1f} % "
             "({hard_gain:+.1f} points), soft targets {soft:.1f} % ({soft_gain:+.1f}); the teacher {teacher:.1f} %.",
             n_test=n_test, scratch=acc["scratch"], hard=acc["hard"], hard_gain=acc["hard"] - acc["scratch"],
             soft=acc["soft"], soft_gain=acc["soft"] - acc["scratch"],
             teacher=100 * result.setup.teacher.test_accuracy)
    if abs(acc["soft"] - acc["hard"]) < 1 and cfg.transfer > 200:
        text = t("{accuracies} With {transfer:,} transfer points the teacher's answers already carry almost "
                 "everything; with fewer (say 50) its doubts count for more.", accuracies=text, transfer=cfg.transfer)
    return text


def run_caption(cfg: PlaygroundConfig) -> str:
    return t("Run trains three {student} students for {steps:,} steps each: {labelled} of {points:,} points "
             "labelled, {transfer:,} transfer points, teacher {teacher}.", student=cfg.student, steps=cfg.steps,
             labelled=cfg.labelled, points=cfg.points, transfer=cfg.transfer, teacher=cfg.teacher)


def describe_points() -> str:
    return t("Large markers: the labelled points (colour and shape: their class). Grey dots: the transfer points, "
             "which only the teacher labels. The same seed for the data, the points and the students' start.")


def run_button(where: Any, notice: Any, cfg: PlaygroundConfig, running: bool) -> bool:
    """The Run button (in ``where``); why it is off, if it is (in ``notice``). True when pressed."""
    why = check(cfg)
    pressed = where.button(t("Run"), type="primary", key="pg.run", disabled=running or bool(why), width="stretch",
                           help=t("Gets the teacher (cached after its first run), then trains the three students "
                                  "side by side on the server's job pool."))
    if why:
        notice.error(t("Run is off: {why}. Fix it in the settings.", why=why))
    elif not layout.presenter():  # the projector's view keeps its height for the panels
        notice.caption(run_caption(cfg))
    return pressed
