"""Draw your own input (the Temperature page): a canvas, or an uploaded picture, prepared like the dataset's
images (kdlab.data.drawing); the teacher's soft targets at T for it, and the latest distilled student's."""
from __future__ import annotations

import numpy as np
import streamlit as st
import torch
from PIL import Image, UnidentifiedImageError

from kdlab.base.errors import KdlabError
from kdlab.data import Dataset
from kdlab.data.drawing import BLANK, STYLES, DrawingError, to_input
from kdlab.plots import figures as plots
from kdlab.runs.teacher import Teacher
from kdlab.training.losses import soft_targets
from kdlab.ui import layout, resources, state
from kdlab.ui.i18n import N_, names, t

CANVAS = 224  # pixels: large enough for a finger or a mouse, a multiple of 8 and 28
UNSURE = 0.6  # the teacher's top probability at T = 1 below which a guess is not presented as its answer
WHAT = {"digits": N_("a digit"), "mnist": N_("a digit"),
        "fashion-mnist": N_("a garment's outline (a shirt, a shoe, a bag…)")}


def draw_ui(data: Dataset, teacher: Teacher, temperature: float) -> None:
    if data.name not in STYLES:
        return
    what = t(WHAT[data.name])
    st.markdown(t("#### Draw your own: {what}", what=what))
    st.caption(t("White ink on black. The buttons over the square undo, redo and clear it."))  # room for them, too
    left, right = st.columns([1, 3])
    image = _input(left)
    if image is None:
        right.info(t("Draw {what} in the black square (white ink), or upload a picture; the teacher's soft targets "
                     "for it appear here.", what=what))
        return
    try:
        x, raw = to_input(image, data)
    except DrawingError as exc:
        right.info(t("The canvas is blank: draw something first.") if str(exc) == BLANK
                   else f"{str(exc)[0].upper()}{str(exc)[1:]}.")  # the data layer's other messages: English
        return
    _predictions(right, data, teacher, x, raw, temperature)


def _input(where) -> np.ndarray | None:
    from streamlit_drawable_canvas import st_canvas  # a custom component: loaded with the page that shows it

    with where:
        result = st_canvas(stroke_width=18, stroke_color="#FFFFFF", background_color="#000000", width=CANVAS,
                           height=CANVAS, return_image_data=True, key="draw.canvas")
        upload = st.file_uploader(t("…or upload a picture"), type=["png", "jpg", "jpeg"], key="draw.upload")
    if upload is not None:
        try:
            return np.asarray(Image.open(upload).convert("L"))
        except (UnidentifiedImageError, OSError):
            where.error(t("That file is not a picture kdlab can read (PNG or JPEG)."))
            return None
    return result.image_data


def _predictions(where, data: Dataset, teacher: Teacher, x: torch.Tensor, raw: np.ndarray,
                 temperature: float) -> None:
    with torch.inference_mode():
        logits = teacher.model(x)[0]  # (C,) one forward pass of one image
    p1, pt = soft_targets(logits, 1.0), soft_targets(logits, temperature)
    bars = [{"probs": p1.tolist(), "role": "teacher", "temperature": 1.0, "faint": True},
            {"probs": pt.tolist(), "role": "teacher", "temperature": temperature}]
    if (student := _student(teacher, data)) is not None:
        with torch.inference_mode():
            bars.append({"probs": soft_targets(student(x)[0], temperature).tolist(), "role": "distilled",
                         "temperature": temperature})
    picture, chart = where.columns([1, 4])
    picture.image(plots.display_image(raw), caption=t("as the model sees it"), width=112)
    classes = names(data.classes)
    layout.bars(data.classes, bars, where=chart)  # the bars translate the names
    best = int(p1.argmax())
    guess, sure = classes[best], 100 * p1[best]
    if p1[best] < UNSURE:
        where.warning(t("The teacher is not sure what this is: its best guess, “{guess}”, gets {sure:.0f} % at T = 1. "
                        "It has only seen images like the dataset's, and this one is unlike them; read the bars as "
                        "its uncertainty, not as an answer.", guess=guess, sure=sure))
    elif student is not None:
        where.caption(t("The teacher reads “{guess}” ({sure:.0f} % at T = 1), the orange bars are the latest "
                        "distilled student's.", guess=guess, sure=sure))
    else:
        where.caption(t("The teacher reads “{guess}” ({sure:.0f} % at T = 1).", guess=guess, sure=sure))


def _student(teacher: Teacher, data: Dataset):
    """The latest saved run's distilled student, if it learnt from this very teacher; else None."""
    record = state.latest_run()
    if record is None or not record.id or record.teacher.key != teacher.key:
        return None
    try:
        return resources.student_model(record.id, record.config.student, data.input_shape, data.num_classes)
    except KdlabError:  # pruned or damaged: the page works without it
        return None
