"""Runs: every finished run of this session and those kept on disk; overlays and downloads."""
import streamlit as st

from kdlab.ui import layout, runs

layout.require_router()
layout.header("Runs", "Every finished run of this browser session, also those kept on the server's disk.")
runs.lecturer_login()
with layout.errors_as_messages():
    found = runs.all_runs()
    if not found:
        st.info("No runs yet: press Run on the Distill page.")
        st.stop()
    st.dataframe(runs.table(found), hide_index=True, key="runs_table",
                 column_config={c: st.column_config.NumberColumn(format="%.1f")
                                for c in ("teacher %", "distilled %", "scratch %", "gain (points)")})
    st.caption(f"{len(found)} runs, newest first. Gain: distilled − scratch test accuracy.")
    runs.overlay(found)
    runs.downloads(found)

layout.explain("Where are runs kept?", "runs")
