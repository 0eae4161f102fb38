"""Sweep: a grid over temperature × alpha (× seeds) for the chosen teacher/student pair."""
import streamlit as st

from kdlab.runs.sweep import MAX_CELLS
from kdlab.ui import layout, runner, settings, state, sweep
from kdlab.ui.i18n import t

layout.require_router()
layout.header(t("Sweep"), t("Distil the same pair at every T × α: where does the teacher help most?"))
lab = settings.lab_settings_ui(sweep.PAIR, title=t("Teacher and student"))
sweep.collect()
grid = sweep.grid_ui()
n = len(grid.temperatures) * len(grid.alphas) * grid.seeds
st.caption(t("{n} distillation runs, plus one scratch student per seed; {budget} each. The sweep runs as one job on "
             "one worker.", n=n, budget=settings.budget_text(lab.lab)[1]))

job = runner.current(sweep.SLOT)
busy = job is not None and job.active
too_many = n > MAX_CELLS  # run_sweep refuses them too (a forged widget value)
if too_many:
    st.warning(t("{total} runs is more than the {most} a sweep may have; drop some values", total=n,
                 most=MAX_CELLS))
if st.button(t("Run sweep"), type="primary", key="run_sweep", disabled=busy or not lab.ok or n == 0 or too_many):
    with layout.errors_as_messages():
        sweep.start(lab, grid)
        st.rerun()
sweep.watch()

if (last := st.session_state.get(state.SWEEP)) is not None and not busy:
    sweep.results(last, lab)

layout.explain(t("Reading the heatmaps"), "sweep")
