"""Lesson: distillation's story in six steps, each with what to look for and a real result of the lab."""
from kdlab.ui import layout, lesson
from kdlab.ui.i18n import t

layout.require_router()
layout.header(t("Lesson"), t("Knowledge distillation in six steps. In presenter mode a clicker (PageDown / PageUp) "
                             "moves between them."))
step = lesson.position_ui()
lesson.controls(step, "top")
lesson.show(step)
lesson.controls(step, "bottom")
layout.explain(t("How to use the lesson in class"), "lesson")
