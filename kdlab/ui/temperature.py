"""The Temperature page's pieces. Everything is computed from the teacher's cached test logits: moving T
costs a softmax over a few thousand rows, never a forward pass."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import streamlit as st
import torch

from kdlab.base.errors import KdlabError
from kdlab.base.settings import Setting
from kdlab.plots import figures as plots
from kdlab.data import Dataset
from kdlab.serve.jobs import Job
from kdlab.training.losses import entropy, soft_targets
from kdlab.runs.teacher import Teacher, get_teacher
from kdlab.ui import forms, layout, live, resources, runner, settings, state
from kdlab.ui.i18n import N_, names, t

SLOT = "teacher"
N_EXAMPLES = 3
MODES = (N_("by class"), N_("at random"), N_("where the teacher is least sure"))  # English in the URL
VIEW = "kd.temperature.view"  # the session's View
PREFIX = "temp"  # the view's widget keys: "temp.temperature", ...


@dataclass(frozen=True)
class View:
    """What the Temperature page shows; every field is in its URL."""

    temperature: float = 4.0
    mode: str = MODES[0]
    cls: int = 0  # the class whose examples are shown ("by class")
    sample: int = 0  # which random draw ("at random"): the New sample button counts up


VIEW_SETTINGS = [
    Setting("temperature", "temperature", N_("Temperature T"),
            N_("Softens the teacher's outputs: softmax(logits / T)."), "float", 0.5, 30.0, 0.1, digits=1, aliases=("T",)),
    Setting("mode", "mode", N_("Examples"), "", "choice", options=MODES, widget="radio"),
    Setting("cls", "cls", N_("Class"), "", "int", 0, 999, widget="select", applies=lambda v: v.mode == MODES[0]),
    Setting("sample", "sample", "Sample", "", "int", 0, 10**6, widget="none", applies=lambda v: v.mode == MODES[1]),
]
T_GRID = np.geomspace(VIEW_SETTINGS[0].low, VIEW_SETTINGS[0].high, 41).round(3).tolist()  # the entropy curve's T


def view_ui(data: Dataset) -> View:
    """The T slider and the example pickers, kept in step with the URL (a link reproduces the view)."""
    view = st.session_state.get(VIEW, View())
    if (linked := forms.read_url(VIEW_SETTINGS, view, View())) is not None:
        view = linked
        forms.reset(VIEW_SETTINGS, PREFIX)
    view = forms.draw(VIEW_SETTINGS[:1], view, PREFIX, st, names=["temperature"])
    left, right = st.columns([2, 1])
    view = forms.draw(VIEW_SETTINGS, view, PREFIX, left, names=["mode"], formats={"mode": t})
    if view.mode == MODES[0]:
        view = forms.draw(VIEW_SETTINGS, view, PREFIX, right, names=["cls"], options={"cls": list(range(data.num_classes))},
                          formats={"cls": lambda c: t(data.classes[c])})
    elif view.mode == MODES[1] and right.button(t("New sample"), key="temp.new"):
        view = dataclasses.replace(view, sample=view.sample + 1)
    st.session_state[VIEW] = view
    forms.write_url(VIEW_SETTINGS, view)
    return view


def teacher_or_offer(lab: settings.LabSettings) -> Teacher | None:
    """The cached teacher; else a button that trains it on the pool (with progress), and None."""
    if (job := runner.take_finished(SLOT)) is not None and job.error:
        st.error(job.error)
    teacher = resources.cached_teacher(lab.config, lab.data)
    if teacher is not None:
        return teacher
    if runner.current(SLOT) is None:
        st.info(t("The teacher {arch} on {dataset} is not trained yet. This page only reads cached teachers, so train "
                  "it once (or run a distillation).", arch=lab.config.teacher, dataset=lab.config.dataset))
        if st.button(t("Train the teacher"), type="primary", key="train_teacher"):
            with layout.errors_as_messages():
                runner.submit(SLOT, teacher_job(lab), label=t("teacher"))
                st.rerun()
    runner.watch(SLOT, _teacher_progress)
    return None


def teacher_job(lab: settings.LabSettings):
    tcfg, data = lab.config.teacher_config(), lab.data

    def fn(job: Job) -> None:
        get_teacher(tcfg, data, on_event=lambda ev: job.emit(("teacher", ev)), should_stop=job.should_stop)

    return fn


def _teacher_progress(job: Job) -> None:
    """The teacher learning, live: its progress and time left, and its loss and test accuracy so far."""
    events = live.teacher_events(job.events)
    ev = events[-1] if events else None
    st.progress(ev.step / max(1, ev.total_steps) if ev else 0.0, text=live.teacher_line(events, job.elapsed()))
    if ev is not None:
        layout.chart(live.teacher_figure(events), key="live_teacher")


def examples_of(view: View, data: Dataset, teacher: Teacher) -> list[int]:
    """The test examples the view shows."""
    if view.mode == MODES[0]:
        return (data.y_test == view.cls).nonzero().squeeze(1)[:N_EXAMPLES].tolist()
    if view.mode == MODES[1]:
        gen = torch.Generator().manual_seed(view.sample)
        return torch.randperm(len(data.y_test), generator=gen)[:N_EXAMPLES].tolist()
    uncertainty = entropy(soft_targets(teacher.test_logits, 1.0))  # (N_test,)
    return uncertainty.topk(N_EXAMPLES).indices.tolist()


def student_logits(teacher: Teacher) -> torch.Tensor | None:
    """The latest run's distilled-student test logits, if that run used this very teacher."""
    record = state.latest_run()
    if record is None or record.teacher.key != teacher.key:
        return None
    if (outputs := state.latest_outputs(record)) is not None and "distilled" in outputs:
        return torch.as_tensor(outputs["distilled"])
    try:
        return resources.run_store().outputs(record.id)["distilled"] if record.id else None
    except KdlabError:  # a pruned or damaged run: the page works without it
        return None


def examples(data: Dataset, teacher: Teacher, idx: list[int], temperature: float,
             student: torch.Tensor | None) -> None:
    """Each example: the input, then the teacher's distribution at T = 1 and at T (and the student's)."""
    logits = teacher.test_logits[idx]  # (K, C)
    p1, pt = soft_targets(logits, 1.0), soft_targets(logits, temperature)
    ps = soft_targets(student[idx], temperature) if student is not None else None
    classes = names(data.classes)
    h1, ht = entropy(p1), entropy(pt)
    for k, i in enumerate(idx):
        y = int(data.y_test[i])
        left, right = st.columns([1, 5])
        _show_input(left, data, i, y)
        bars = [{"probs": p1[k].tolist(), "role": "teacher", "temperature": 1.0, "faint": True},
                {"probs": pt[k].tolist(), "role": "teacher", "temperature": temperature}]
        if ps is not None:
            bars.append({"probs": ps[k].tolist(), "role": "distilled", "temperature": temperature})
        layout.bars(data.classes, bars, y, where=right)  # the bars translate the names
        right.caption(t("Hard label **{label}**; teacher predicts {predicted}. Entropy {h1:.2f} nats at T = 1 → "
                        "{ht:.2f} at T = {T:g} (uniform: {uniform:.2f}).", label=classes[y],
                        predicted=classes[int(p1[k].argmax())], h1=h1[k], ht=ht[k], T=temperature,
                        uniform=math.log(data.num_classes)))


def _show_input(col, data: Dataset, i: int, y: int) -> None:
    x, name = data.x_test[i].numpy(), t(data.classes[y])
    if x.ndim >= 2:
        col.image(plots.display_image(x), caption=t("test #{i}, class {name}", i=i, name=name), width=112)
    else:
        col.markdown(t("test #{i}, class **{name}**", i=i, name=name) + "  \n" + ", ".join(f"{v:.2f}" for v in x))


def entropy_curves(data: Dataset, teacher: Teacher, idx: list[int], temperature: float) -> Any:
    logits = teacher.test_logits[idx]  # (K, C)
    grid = torch.tensor(T_GRID)  # (G,)
    h = entropy(torch.softmax(logits[None] / grid[:, None, None], dim=-1))  # (G, K)
    curves = [{"label": f"#{i} ({t(data.classes[int(data.y_test[i])])})", "entropy": h[:, k].tolist(),
               "class": int(data.y_test[i])} for k, i in enumerate(idx)]
    return plots.entropy_curves(T_GRID, curves, temperature, data.num_classes)


def class_similarity(data: Dataset, teacher: Teacher, temperature: float) -> Any:
    """Row c: the teacher's soft targets at T averaged over the test examples of class c."""
    p = soft_targets(teacher.test_logits, temperature)  # (N, C)
    sums = torch.zeros(data.num_classes, data.num_classes).index_add_(0, data.y_test, p)
    counts = torch.bincount(data.y_test, minlength=data.num_classes).clamp(min=1)[:, None]
    return plots.similarity((sums / counts).tolist(), names(data.classes), temperature)
