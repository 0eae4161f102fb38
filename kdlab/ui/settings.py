"""The lab's settings in the sidebar, from the lab's table (kdlab.runs.lab.LAB_SETTINGS), and the URL mirror.

``lab_settings_ui(names)`` draws the chosen settings (all of the table's by default), returns them as
LabSettings (the Lab, the loaded dataset, an error), and keeps the canonical copy in ``state.LAB`` so every
page sees the same set-up. Every widget is bounded; a bad choice yields a one-line message and ``ok=False``,
never a raise.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import streamlit as st
import torch

from kdlab.base.errors import KdlabError
from kdlab.base.lab import Lab
from kdlab.data import Dataset
from kdlab.runs.lab import LAB_SETTINGS, MIN_SENSIBLE_STEPS, normalised, validate_lab
from kdlab.runs.presets import DEFAULT_PRESET, get_preset
from kdlab.training.engine import planned_steps
from kdlab.training.losses import loss_info
from kdlab.ui import forms, resources, state
from kdlab.ui.i18n import t

MAX_PARAMS = 5_000_000  # per model; mlp:1200-1200 on MNIST has 2.4 M


@dataclass
class LabSettings:
    lab: Lab
    data: Dataset | None  # None when the dataset cannot be loaded
    error: str = ""  # non-empty: the settings cannot run as they are

    @property
    def config(self):
        return self.lab.config

    @property
    def ok(self) -> bool:
        return not self.error and self.data is not None


def lab_settings_ui(names: Sequence[str] | None = None, *, mirror_url: bool = False,
                    title: str | None = None) -> LabSettings:
    """``title``: the sidebar's heading (translated by the caller), 'Lab settings' by default."""
    table = LAB_SETTINGS if names is None else [s for s in LAB_SETTINGS if s.name in names]
    lab = state.lab()
    if mirror_url and (linked := forms.read_url(table, lab, get_preset(DEFAULT_PRESET).lab, validate_lab)):
        lab = normalised(linked)
        state.set_lab(lab, None)
        state.reset_widgets()
    box = st.sidebar
    box.header(title or t("Lab settings"))
    notes = {"Models": _describe_models, "Loss": _describe_soft_targets, "Training": _describe_budget}
    new = normalised(forms.draw(LAB_SETTINGS, lab, state.LAB_PREFIX, box, names=names, notes=notes,
                                options=_class_options(lab)))
    data, error = _load(new.config.dataset)
    error = error or _check(new, data)
    if error:
        box.error(error)
    else:
        state.set_lab(new, state.preset_name() if new == lab else None)
        if mirror_url:
            forms.write_url(table, new)
    return LabSettings(new, data, error)


def uses_alpha(loss: str) -> bool:
    try:
        return loss_info(loss).uses_alpha
    except KdlabError:
        return False


def _class_options(lab: Lab) -> dict[str, list]:
    try:
        return {"omit_classes": list(range(resources.dataset(lab.config.dataset).num_classes))}
    except KdlabError:
        return {"omit_classes": []}


def _load(name: str) -> tuple[Dataset | None, str]:
    try:
        return resources.dataset(name), ""
    except KdlabError as exc:
        return None, str(exc)


def _check(lab: Lab, data: Dataset | None) -> str:
    """The one validation of the set-up (kdlab.runs.lab.validate_lab), plus the sizes only data can tell."""
    try:
        validate_lab(lab)
        if data is not None:
            for role in ("teacher", "student"):
                spec = getattr(lab.config, role)
                count = resources.param_count(spec, data.input_shape, data.num_classes)
                if count > MAX_PARAMS:  # a shared CPU server: one huge model would starve (or exhaust) everyone
                    return too_large(role, spec, count)
    except KdlabError as exc:
        return str(exc)
    return ""


def too_large(role: str, spec: str, count: int) -> str:
    values = dict(spec=spec, count=count, limit=MAX_PARAMS)
    if role == "teacher":
        return t("the teacher {spec} has {count:,} parameters; the lab allows at most {limit:,}", **values)
    return t("the student {spec} has {count:,} parameters; the lab allows at most {limit:,}", **values)


def _describe_models(where, lab: Lab) -> None:
    """Parameter counts and the compression ratio under the architecture pickers."""
    try:
        data = resources.dataset(lab.config.dataset)
        n_t, n_s = (resources.param_count(spec, data.input_shape, data.num_classes)
                for spec in (lab.config.teacher, lab.config.student))
    except KdlabError:
        return  # the error is shown once, at the end of the sidebar and beside Run
    where.caption(t("Teacher {teacher:,} parameters · student {student:,} · compression {ratio:.1f}×", teacher=n_t,
                    student=n_s, ratio=n_t / n_s))


LOW_T = 1.5  # at or below it, a confident teacher's soft targets are nearly its one-hot answers


def _describe_soft_targets(where, lab: Lab) -> None:
    """Why α changes little at T ≈ 1: measured on the cached teacher's training logits (no forward pass)."""
    cfg = lab.config
    if cfg.temperature > LOW_T or not uses_alpha(cfg.loss):
        return
    try:
        data = resources.dataset(cfg.dataset)
        teacher = resources.cached_teacher(cfg, data)
    except KdlabError:
        return
    if teacher is None:
        return
    top = torch.softmax(teacher.train_logits / cfg.temperature, 1).max(1)  # (N_train,) per training image
    agree = (top.indices == data.y_train).float().mean().item()
    if top.values.mean().item() < 0.9:
        return
    where.info(t("At T = {temperature:g} this teacher gives its training images a mean top probability of "
                 "{top:.2f}, and its answer is the label for {agree:.1f} % of them: its soft targets say little "
                 "more than the labels, so α changes little. Raise T to let the small probabilities of the other "
                 "classes count.", temperature=cfg.temperature, top=top.values.mean().item(), agree=100 * agree))


def _describe_budget(where, lab: Lab) -> None:
    """How many optimizer steps each student takes, in epochs of the transfer set; a warning when too few."""
    steps, text = budget_text(lab)
    where.caption(text)
    if steps < MIN_SENSIBLE_STEPS:
        where.warning(t("{steps} optimizer steps are too few to train a student: use {least} or more.", steps=steps,
                        least=MIN_SENSIBLE_STEPS))


def budget_text(lab: Lab) -> tuple[int, str]:
    cfg = lab.config
    n = cfg.transfer_size or _train_size(cfg.dataset)
    per_epoch, total, epochs = planned_steps(n, cfg.train)
    values = dict(total=total, epochs=epochs, per_epoch=per_epoch, n=n, batch=cfg.train.batch_size)
    if epochs == 1:
        return total, t("{total:,} steps per student = {epochs:,} epoch of {per_epoch} steps ({n:,} images, batch "
                        "{batch})", **values)
    return total, t("{total:,} steps per student = {epochs:,} epochs of {per_epoch} steps ({n:,} images, batch "
                    "{batch})", **values)


def _train_size(name: str) -> int:
    try:
        return len(resources.dataset(name).y_train)
    except KdlabError:
        return 1
