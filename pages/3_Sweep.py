"""Sweep: a grid over temperature × alpha (× seeds) for the chosen teacher/student pair."""
import streamlit as st

from kdlab.ui import layout, runner, settings, state, sweep

layout.require_router()
layout.header("Sweep", "Distil the same pair at every T × α: where does the teacher help most?")
lab = settings.lab_settings_ui(sweep.PAIR, title="Teacher and student")
sweep.collect()
grid = sweep.grid_ui()
n = len(grid.temperatures) * len(grid.alphas) * grid.seeds
st.caption(f"{n} distillation runs, plus one scratch student per seed; {settings.budget_text(lab.lab)[1]} each. "
           "The sweep runs as one job on one worker.")

job = runner.current(sweep.SLOT)
busy = job is not None and job.active
if st.button("Run sweep", type="primary", key="run_sweep", disabled=busy or not lab.ok or n == 0):
    with layout.errors_as_messages():
        sweep.start(lab, grid)
        st.rerun()
sweep.watch()

if (last := st.session_state.get(state.SWEEP)) is not None and not busy:
    sweep.results(last, lab)

layout.explain("Reading the heatmaps", "sweep")
