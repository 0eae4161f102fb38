"""Runs: every finished run of this session and those kept on disk; overlays and downloads."""
import streamlit as st

from kdlab.ui import layout, runs
from kdlab.ui.i18n import t

layout.require_router()
layout.header(t("Runs"), t("Every finished run of this browser session, also those kept on the server's disk."))
runs.lecturer_login()
with layout.errors_as_messages():
    found = runs.all_runs()
    if not found:
        st.info(t("No runs yet: press Run on the Distill page."))
        st.stop()
    st.dataframe(runs.table(found), hide_index=True, key="runs_table",
                 column_config={t(c): st.column_config.NumberColumn(format="%.1f") for c in runs.PERCENT_COLUMNS})
    st.caption(t("{n} runs, newest first. Gain: distilled − scratch test accuracy.", n=len(found)))
    runs.overlay(found)
    runs.downloads(found)

layout.explain(t("Where are runs kept?"), "runs")
