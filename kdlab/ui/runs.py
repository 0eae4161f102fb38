"""The Runs page's pieces: this session's runs and those kept on disk, a table, overlays and downloads."""
from __future__ import annotations

import hmac
import json
import os
import time

import pandas as pd
import streamlit as st

from kdlab.base.errors import KdlabError
from kdlab.base.record import RunRecord
from kdlab.plots import figures as plots
from kdlab.ui import layout, resources, runner, state
from kdlab.ui.i18n import N_, t


LECTURER = "kd.lecturer"  # True once this session gave the lecturer's token (KDLAB_LECTURER_TOKEN)
# The table's columns of percentages (the page formats them); like every column, shown translated.
PERCENT_COLUMNS = (N_("teacher %"), N_("distilled %"), N_("scratch %"), N_("gain (points)"))
ENDINGS = (N_("completed"), N_("stopped"), N_("time limit"))  # kdlab.base.record.REASONS, shown translated


def all_runs() -> list[tuple[RunRecord, bool]]:
    """(record, from this session) pairs, newest first: this session's runs (some unsaved) and the stored ones
    it made; every stored run in the lecturer's view. A student sees no other student's runs."""
    mine = state.runs()
    seen = {r.id for r in mine if r.id}
    owner = runner.session_owner()
    everyone = bool(st.session_state.get(LECTURER))
    stored = [r for r in resources.run_store().list() if r.id not in seen and (everyone or r.owner == owner)]
    pairs = [(r, True) for r in mine] + [(r, False) for r in stored]
    return sorted(pairs, key=lambda pair: pair[0].created, reverse=True)


def lecturer_login() -> None:
    """The lecturer's view of every run, behind the token the server was started with (none: no such view)."""
    token = os.environ.get("KDLAB_LECTURER_TOKEN", "")
    if not token or st.session_state.get(LECTURER):
        return
    with st.expander(t("Lecturer view")):
        given = st.text_input(t("Lecturer token"), type="password", key="runs.token",
                              help=t("Shows every student's runs; the server's KDLAB_LECTURER_TOKEN."))
        if given and hmac.compare_digest(given.encode(), token.encode()):
            st.session_state[LECTURER] = True
            st.rerun()
        elif given:
            st.error(t("That is not the lecturer token."))


def key(run: RunRecord) -> str:
    """Stable across reruns: the stored id, else (an unsaved session run) its creation time."""
    return run.id or f"session-{run.created}"


def name(run: RunRecord) -> str:
    return f"{time.strftime('%d %b %H:%M:%S', time.localtime(run.created))} · {run.label}"


def table(runs: list[tuple[RunRecord, bool]]) -> pd.DataFrame:
    """One row per run; the column names (and how a run ended) in the reader's language."""
    teacher, distilled, scratch, gain = PERCENT_COLUMNS
    rows = []
    for r, mine in runs:
        d, s = r.stats("distilled"), r.stats("scratch")
        rows.append({N_("when"): name(r).split(" · ")[0], N_("run"): r.label, teacher: 100 * r.teacher.test_accuracy,
                     distilled: 100 * d.mean, scratch: 100 * s.mean if s else None,
                     gain: 100 * (d.mean - s.mean) if s else None, N_("seeds"): len(r.distilled),
                     N_("ended"): t(r.reason), N_("this session"): mine, N_("saved"): bool(r.id)})
    return pd.DataFrame(rows).rename(columns=t)


def overlay(runs: list[tuple[RunRecord, bool]]) -> None:
    by_key = {key(r): r for r, _ in runs}
    chosen = st.multiselect(t("Overlay the test-accuracy curves of"), list(by_key), default=list(by_key)[:2],
                            format_func=lambda k: name(by_key[k]), key="runs.overlay")
    picked = [by_key[k] for k in chosen if k in by_key]
    if picked:
        fig = plots.overlay_curves([{"label": r.label, "distilled": r.distilled[0].curve,
                                     "scratch": r.scratch[0].curve if r.scratch else None} for r in picked])
        layout.chart(fig, key="overlay")
        st.caption(t("One colour per run (its first seed): solid the distilled student, dashed the scratch "
                     "student."))


def downloads(runs: list[tuple[RunRecord, bool]]) -> None:
    by_key = {key(r): r for r, _ in runs}
    chosen = st.selectbox(t("Download a run"), list(by_key), format_func=lambda k: name(by_key[k]), key="runs.download")
    run = by_key.get(chosen, runs[0][0])
    left, right = st.columns(2)
    slug = run.id or "unsaved"
    left.download_button(t("Config and results (JSON)"), json.dumps(run.to_json(), indent=1),
                         file_name=f"kdlab-run-{slug}.json", mime="application/json", key="dl_json",
                         on_click="ignore", width="stretch")
    if not run.id:
        right.caption(t("This run was not saved to disk, so its weights cannot be downloaded."))
        return
    try:  # read and verified here, so a damaged file is a message, never a download of error text
        weights = resources.run_store().weights_bytes(run.id)
    except KdlabError as exc:
        right.error(t("The student's weights cannot be downloaded: {error}", error=exc))
        return
    right.download_button(t("Student weights (safetensors)"), weights, file_name=f"kdlab-student-{slug}.safetensors",
                          mime="application/octet-stream", key="dl_weights", on_click="ignore", width="stretch")
