"""Distill: train a student from the teacher's soft targets, live, beside the same student trained alone."""
import streamlit as st

from kdlab.ui import distill, layout, runner, settings, state
from kdlab.ui.i18n import t

layout.require_router()
layout.header(t("Distill"), t("Train a small student to imitate a big teacher, and the same student without one."))
lab = settings.lab_settings_ui(mirror_url=True)
distill.collect()

job = runner.current(distill.SLOT)
busy = job is not None and job.active
if distill.run_controls(lab, busy):
    with layout.errors_as_messages():
        distill.start(lab)
        st.rerun()
distill.show_error()
distill.watch()

record = state.latest_run()
if record is not None and not busy:
    distill.results(record, lab)
elif record is None and not busy:
    st.info(t("Choose the settings in the sidebar (or a preset on the Home page) and press **Run**."))

layout.explain(t("What happens when you press Run?"), "distill")
