"""Experiments: Hinton 2015's set-ups where distillation shows, several seeds each, in one click."""
import streamlit as st

from kdlab.ui import experiments_ui as ui
from kdlab.ui import layout, runner
from kdlab.ui.i18n import t

layout.require_router()
layout.header(t("Experiments"), t("Where distillation shines: a tiny transfer set, a class the student never sees, "
                                  "temperature against student size. Measured here, beside the paper's numbers."))
ui.collect()
name, dataset, seeds = ui.pick_ui()
ui.describe(name, dataset, seeds)

job = runner.current(ui.SLOT)
busy = job is not None and job.active
if st.button(t("Run experiment"), type="primary", key="exp.run", disabled=busy,
             help=t("Trains every arm for every seed on the server's job pool; the teacher comes from the cache.")):
    with layout.errors_as_messages():
        ui.start(name, dataset, seeds)
        st.rerun()
ui.show_error()
ui.watch()

report = ui.result(name, dataset)
if report is not None and not busy:
    ui.show(report)
elif report is None and not busy:
    st.info(t("Pick an experiment and press **Run experiment**. On digits each takes seconds."))
