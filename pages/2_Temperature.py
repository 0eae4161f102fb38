"""Temperature: how softmax(t/T) flattens as T rises, on the teacher's cached logits (no forward pass)."""
import streamlit as st

from kdlab.ui import draw, layout, settings, temperature
from kdlab.ui.i18n import t

layout.require_router()
layout.header(t("Temperature"), t("Soft targets: the teacher's probabilities softened by T. Move T and watch them "
                                  "flatten."))
lab = settings.lab_settings_ui(("dataset", "teacher"), title=t("Teacher"), mirror_url=True)
teacher = temperature.teacher_or_offer(lab) if lab.ok else None
if teacher is None:
    st.stop()


@st.fragment
def soft_targets_view(data, teacher) -> None:
    """Everything T changes, as a fragment: moving the slider reruns (and redraws) only this, not the sidebar."""
    view = temperature.view_ui(data)
    chosen = view.temperature  # the chosen T
    idx = temperature.examples_of(view, data, teacher)
    student = temperature.student_logits(teacher)
    temperature.examples(data, teacher, idx, chosen, student)
    if student is not None:
        st.caption(t("Faint bars: T = 1; solid: the chosen T, orange: the latest distilled student at T."))
    else:
        st.caption(t("Faint bars: T = 1; solid: the chosen T. Run a distillation to see the student beside it."))

    draw.draw_ui(data, teacher, chosen)

    layout.chart(temperature.entropy_curves(data, teacher, idx, chosen), key="entropy")
    st.caption(t("Entropy of each example's soft targets against T: from nearly certain towards uniform (log C)."))
    st.markdown(t("**Average soft targets at T = {T:g}**", T=chosen))
    layout.chart(temperature.class_similarity(data, teacher, chosen), key="similarity")
    st.caption(t("Which classes the teacher finds alike: the mass it gives wrong classes, averaged per true class "
                 "(diagonal hidden; the colour scale is fixed at 0 to 0.3, so raising T shows the mass grow)."))


soft_targets_view(lab.data, teacher)
layout.explain(t("Why soften the targets?"), "temperature")
