"""Playground: a teacher and three students on 2-D data, trained live. What do soft targets add?"""
import streamlit as st

from kdlab.ui import layout, runner
from kdlab.ui import playground as pg
from kdlab.ui.i18n import t

layout.require_router()
layout.header(t("Playground"), t("Distillation you can see: three students learn from a few labels, with or without "
                                  "a teacher."))
knobs = st.columns([2, 2, 3, 2], vertical_alignment="bottom")
cfg = pg.settings_ui(knobs[:3])
notice = st.container()
pg.collect()
runner.show_error(pg.SLOT)
running = pg.busy()

pg.panels_css()
teacher_col, students_col = st.columns([1, 3])
with teacher_col:
    pg.teacher_panel()  # a fragment: moving T redraws the teacher's field alone
cfg = pg.config()  # with the teacher panel's T
if pg.run_button(knobs[3], notice, cfg, running):
    with layout.errors_as_messages():
        pg.start(cfg)
        st.rerun()

with students_col:
    pg.watch()  # while a run trains: its newest snapshot, about twice a second
    result = st.session_state.get(pg.RESULT)
    if result is not None and not running:
        pg.results(result, cfg)
    elif not running:
        st.info(t("Press **Run**: three students of one architecture train side by side, live: from the labels "
                  "alone, from the teacher's answers, and from its soft targets. (The teacher learns every label "
                  "first, once; then it is cached.)"))
    st.caption(pg.describe_points())

layout.explain(t("What the Playground shows, and what to try"), "playground")
