"""Temperature: how softmax(t/T) flattens as T rises, on the teacher's cached logits (no forward pass)."""
import streamlit as st

from kdlab.ui import draw, layout, settings, temperature

layout.require_router()
layout.header("Temperature", "Soft targets: the teacher's probabilities softened by T. Move T and watch them flatten.")
lab = settings.lab_settings_ui(("dataset", "teacher"), title="Teacher", mirror_url=True)
teacher = temperature.teacher_or_offer(lab) if lab.ok else None
if teacher is None:
    st.stop()

data = lab.data
view = temperature.view_ui(data)
t = view.temperature
idx = temperature.examples_of(view, data, teacher)
student = temperature.student_logits(teacher)
temperature.examples(data, teacher, idx, t, student)
student_note = ", orange: the latest distilled student at T." if student is not None else \
    ". Run a distillation to see the student beside it."
st.caption("Faint bars: T = 1; solid: the chosen T" + student_note)

draw.draw_ui(data, teacher, t)

layout.chart(temperature.entropy_curves(data, teacher, idx, t), key="entropy")
st.caption("Entropy of each example's soft targets against T: from nearly certain towards uniform (log C).")
st.markdown(f"**Average soft targets at T = {t:g}**")
layout.chart(temperature.class_similarity(data, teacher, t), key="similarity")
st.caption("Which classes the teacher finds alike: the mass it gives wrong classes, averaged per true class "
           "(diagonal hidden; the colour scale is fixed at 0 to 0.3, so raising T shows the mass grow).")

layout.explain("Why soften the targets?", "temperature")
