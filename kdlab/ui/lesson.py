"""The guided Lesson: distillation's story in six steps, each with what to look for and a real result of the
lab (a cached teacher's outputs, runs through the shared pool, measured sizes and speeds).

A step that trains something runs once per server: its result is kept process-wide (``_RESULTS``), so the
lecturer's rehearsal, or the first student to press Run, makes every later visit of that step instant.
Previous and Next answer a presenter's clicker (PageUp / PageDown); the step is in the URL (``?step=3``).
"""
from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd
import streamlit as st
import torch

from kdlab.base.settings import Setting
from kdlab.data import Dataset
from kdlab.experiments.core import bias_curve
from kdlab.plots import figures as plots
from kdlab.plots.bars import FAINT
from kdlab.plots import playground as pg_plots
from kdlab.runs.batch import Run, run_all
from kdlab.runs.playground import PlaygroundConfig, run_playground
from kdlab.runs.presets import DEFAULT_PRESET, get_preset
from kdlab.runs.records import build_record
from kdlab.runs.teacher import Teacher, get_teacher
from kdlab.serve.jobs import Job
from kdlab.training.losses import soft_targets
from kdlab.training.metrics import latency_per_example
from kdlab.training.models import build_model, count_params, macs_per_example
from kdlab.ui import distill, forms, layout, resources, runner, temperature
from kdlab.ui.i18n import N_, names, t

STEP = "kd.lesson.step"
SLOT = "lesson"
_RESULTS: dict[str, Any] = {}  # step name -> its result, shared by every session of the server
_LOCK = threading.Lock()
# The results' names, kept in English (they key _RESULTS for every session); a job shows its name translated.
TEACHER, FEW_LABELS, OMITTED, BOUNDARIES = N_("teacher"), N_("few labels"), N_("omitted class"), N_("boundaries")


@dataclass(frozen=True)
class Position:
    step: int = 1


STEP_SETTINGS = [Setting("step", "step", "Step", "", "int", 1, 6, widget="none")]


@dataclass(frozen=True)
class Step:
    title: str
    look_for: str
    draw: Callable[[], None]


def position_ui() -> int:
    pos = st.session_state.get(STEP, Position())
    if (linked := forms.read_url(STEP_SETTINGS, pos, Position())) is not None:
        pos = linked
    st.session_state[STEP] = pos
    forms.write_url(STEP_SETTINGS, pos)
    return pos.step


def go(delta: int) -> None:
    """Button callback: the previous or next step (the URL too, or the next run would read the old step back)."""
    pos = st.session_state.get(STEP, Position())
    st.session_state[STEP] = new = Position(min(len(STEPS), max(1, pos.step + delta)))
    forms.write_url(STEP_SETTINGS, new)


def controls(step: int, where: str) -> None:
    """Previous / Next; the top pair answers a clicker (PageUp / PageDown), the bottom pair is for the mouse."""
    left, mid, right = st.columns([2, 3, 2])
    keys = {"top": ("PageUp", "PageDown")}.get(where, (None, None))
    left.button(t("← Previous"), key=f"lesson.prev.{where}", on_click=go, args=(-1,), disabled=step == 1,
                shortcut=keys[0], width="stretch")
    mid.progress(step / len(STEPS), text=t("Step {step} of {steps}: {title}", step=step, steps=len(STEPS),
                                           title=t(STEPS[step - 1].title)))
    right.button(t("Next →"), key=f"lesson.next.{where}", on_click=go, args=(1,), disabled=step == len(STEPS),
                 shortcut=keys[1], width="stretch", type="primary")


def show(step: int) -> None:
    s = STEPS[step - 1]
    st.header(f"{step}. {t(s.title)}")
    st.info(t("**Look for:** {what}", what=t(s.look_for)))
    _collect()
    s.draw()


# -- shared pieces ---------------------------------------------------------------------------------------------

def _lab_data() -> Dataset:
    return resources.dataset(get_preset(DEFAULT_PRESET).config.dataset)


def _teacher() -> Teacher | None:
    """The presets' teacher (digits mlp:500): from the cache, else trained once through the pool."""
    cfg = get_preset(DEFAULT_PRESET).config
    if (teacher := resources.cached_teacher(cfg, _lab_data())) is not None:
        return teacher
    _run_button(TEACHER, t("Train the teacher (about 2 s)"), lambda job: get_teacher(
        cfg.teacher_config(), _lab_data(), should_stop=job.should_stop))
    return None


def _collect() -> None:
    """The session's finished lesson job, whatever step it was for (the teacher's too): its result kept for the
    server, its error shown until the next run; either way the slot is free again for the step's button."""
    runner.collect(SLOT, _keep)
    runner.show_error(SLOT)


def _keep(result: tuple[str, Any]) -> None:
    done, value = result  # (its name, its result): see _run_button
    with _LOCK:
        _RESULTS[done] = value


def _result(name: str) -> Any | None:
    """A step's result, from this server's memory."""
    with _LOCK:
        return _RESULTS.get(name)


def _run_button(name: str, label: str, work: Callable[[Job], Any]) -> None:
    """The button that computes a step's result on the pool (once per server), and its progress. The job returns
    the result's English name with it: its label (shown in the reader's language) cannot key the result."""
    if runner.current(SLOT) is None and st.button(label, type="primary", key=f"lesson.run.{name}"):
        with layout.errors_as_messages():
            runner.submit(SLOT, lambda job: (name, work(job)), label=t(name))
            st.rerun()
    runner.watch(SLOT, _progress)


def _progress(job: Job) -> None:
    """The job's real progress: its latest engine event (a run's step) or Playground snapshot."""
    events = list(job.events)
    last = events[-1] if events else None
    if last is None:
        fraction, text = 0.0, t("Starting…")
    elif hasattr(last, "total_steps") and hasattr(last, "arms"):  # a Playground snapshot
        fraction = last.step / last.total_steps
        text = t("Three students: step {step:,} of {steps:,}", step=last.step, steps=last.total_steps)
    else:
        k, role, ev = last
        fraction = (k + ev.step / max(1, ev.total_steps)) / (1 + max(k for k, _, _ in events))
        text = t(ROLE_STEPS.get(role, ROLE_STEPS["distilled"]), step=ev.step, steps=ev.total_steps)
    st.progress(min(1.0, fraction), text=t("{progress} (once for the whole class: then it is kept)", progress=text))


ROLE_STEPS = {"teacher": N_("The teacher: step {step:,} of {steps:,}"),
              "distilled": N_("The distilled student: step {step:,} of {steps:,}"),
              "scratch": N_("The scratch student: step {step:,} of {steps:,}")}


SURE = 0.8  # the example's teacher is this sure of the right answer: a clear answer, with a visible doubt


def _example(data: Dataset, teacher: Teacher) -> int:
    """A test image the teacher gets right and is sure of, with the most probability left on a wrong class."""
    p = soft_targets(teacher.test_logits, 1.0)  # (N, C)
    top = p.max(1)
    clear = (top.indices == data.y_test) & (top.values >= SURE)
    second = p.clone()
    second[torch.arange(len(p)), data.y_test] = 0
    return int(torch.where(clear, second.max(1).values, torch.zeros(())).argmax())


def _bars(data: Dataset, teacher: Teacher, i: int, temperatures: list[float]) -> None:
    logits = teacher.test_logits[i]
    weights = np.linspace(FAINT, 1.0, len(temperatures))  # light to dark as T rises, so the sets tell apart
    bars = [{"probs": soft_targets(logits, temp).tolist(), "role": "teacher", "temperature": temp, "weight": w}
            for temp, w in zip(temperatures, weights.tolist())]
    left, right = st.columns([1, 5])
    left.image(plots.display_image(data.x_test[i].numpy()), caption=t("test image #{i}", i=i), width=112)
    layout.bars(data.classes, bars, int(data.y_test[i]), where=right)


# -- the steps ------------------------------------------------------------------------------------------------

def _dark_knowledge() -> None:
    teacher = _teacher()
    if teacher is None:
        return
    data = _lab_data()
    i = _example(data, teacher)
    p = soft_targets(teacher.test_logits[i], 1.0)
    truth = int(data.y_test[i])
    rest = p.clone()
    rest[truth] = 0
    other = int(rest.argmax())
    classes = names(data.classes)
    st.markdown(t("The teacher (`{arch}`, {accuracy:.1f} % right on the test images) says this is a **{truth}** "
                  "({p_truth:.0f} %), and gives **{other}** {p_other:.1f} %: this {truth} looks a little like a "
                  "{other}. A label says only “{truth}”.", arch=teacher.config.arch,
                  accuracy=100 * teacher.test_accuracy, truth=classes[truth], p_truth=100 * p[truth],
                  other=classes[other], p_other=100 * p[other]))
    _bars(data, teacher, i, [1.0, 4.0])
    st.markdown(t("**What the teacher finds alike**: its soft targets at T = 4, averaged per true class (diagonal "
                  "hidden)"))
    layout.chart(temperature.class_similarity(data, teacher, 4.0), key="lesson.similarity")


def _temperature() -> None:
    teacher = _teacher()
    if teacher is None:
        return
    data = _lab_data()
    i = _example(data, teacher)
    _bars(data, teacher, i, [1.0, 3.0, 10.0])
    layout.chart(temperature.entropy_curves(data, teacher, [i], 3.0), key="lesson.entropy")  # the page's chart
    st.caption(t("Bars from light to dark: T = 1, 3 and 10. The curve: how spread out the soft targets are at "
                 "each T, from nearly certain to uniform (log C)."))


def _distil(preset: str, seeds: int) -> Callable[[Job], Any]:
    lab = dataclasses.replace(get_preset(preset).lab, seeds=seeds)

    def work(job: Job) -> Any:
        data = resources.dataset(lab.config.dataset)
        results = list(run_all([Run(k, c, lab.scratch) for k, c in enumerate(lab.seed_configs())], data,
                               on_progress=lambda k, role, ev: job.emit((k, role, ev)),
                               should_stop=job.should_stop).values())
        return build_record(lab, results), results[0].distilled.test_logits.numpy()

    return work


def _few_labels() -> None:
    found = _result(FEW_LABELS)
    if found is None:
        st.markdown(t("The student sees **50** of the 1 437 training digits, labelled; its scratch twin sees the "
                      "same 50. Three seeds each, 1 000 steps: a few seconds."))
        _run_button(FEW_LABELS, t("Run it"), _distil(DEFAULT_PRESET, seeds=3))
        return
    record, _ = found
    st.table(distill.results_table(record))
    distill.show_verdict(record)
    layout.chart(plots.training_curves({"distilled": record.distilled[0].curve, "scratch": record.scratch[0].curve},
                                       record.teacher.test_accuracy), key="lesson.curves")


def _omitted_class() -> None:
    found = _result(OMITTED)
    if found is None:
        st.markdown(t("No **3** is in the student's transfer set: the scratch student learns the labels of the "
                      "other digits; the distilled one learns only the teacher's soft targets on them."))
        _run_button(OMITTED, t("Run it"), _distil(N_("Omitted class"), seeds=1))  # the preset's name
        return
    record, logits = found
    d, s = record.distilled[0], record.scratch[0]
    st.markdown(t("Test 3s right: scratch **{scratch:.0f} %** (it never predicts a 3), distilled **{distilled:.0f} "
                  "%**, from other digits' soft targets alone.", scratch=100 * s.per_class_accuracy[3],
                  distilled=100 * d.per_class_accuracy[3]))
    delta = [None if a is None or b is None else a - b for a, b in zip(d.per_class_accuracy, s.per_class_accuracy)]
    layout.chart(plots.class_changes(delta, names(record.classes)), key="lesson.classes")
    data = _lab_data()
    bias = st.slider(t("Bias added to the 3's logit at test time"), 0.0, 6.0, 0.0, 0.1, key="lesson.bias")
    point = bias_curve(torch.as_tensor(logits), data.y_test, 3, [bias])[0]
    st.caption(t("With +{bias:g}: {right:.0f} % of the 3s right, {overall:.1f} % overall. The student's only problem "
                 "is a too-low bias for a class it never saw (Hinton et al. 2015, §3).", bias=bias,
                 right=100 * point["class_accuracy"], overall=100 * point["overall_accuracy"]))


def _boundaries() -> None:
    found = _result(BOUNDARIES)
    cfg = PlaygroundConfig(dataset="spirals", labelled=10)
    if found is None:
        st.markdown(t("Spirals: **10** labelled points. Three students of one size: on the labels alone, on the "
                      "teacher's hard answers for 2 000 unlabelled points, and on its soft targets for them."))
        _run_button(BOUNDARIES, t("Run it"), lambda job: run_playground(cfg, on_snapshot=job.emit,
                                                                        should_stop=job.should_stop))
        return
    setup, final = found.setup, found.final
    points = setup.points()
    for col, arm in zip(st.columns(3), ("scratch", "hard", "soft")):
        frame = final.arms[arm]
        fig = pg_plots.boundary_figure(setup.grid.xs, setup.grid.ys, frame.probs.astype(np.float32),
                                       names(setup.data.classes), pg_plots.arm_title(arm, frame.test_accuracy),
                                       **points)
        layout.chart(fig, key=f"lesson.arm.{arm}", where=col)
    st.caption(t("Shading: the class a student predicts there, darker where it is sure; big marks: the 10 labels; "
                 "grey dots: the unlabelled points the teacher labels."))


def _gained() -> None:
    data = _lab_data()
    cfg = get_preset(DEFAULT_PRESET).config
    sizes = {role: _size(spec, data) for role, spec in ((TEACHER, cfg.teacher), (N_("student"), cfg.student))}
    model = t("model")
    st.table(pd.DataFrame([{model: f"{t(role)} ({spec})", t("parameters"): f"{n:,}",
                            t("multiply-adds per image"): f"{m:,}",
                            t("µs per image (measured now)"): f"{1e6 * sec:.2f}"}
                           for (role, (n, m, sec)), spec in zip(sizes.items(), (cfg.teacher, cfg.student))])
             .set_index(model))
    (tn, tm, ts), (sn, sm, ss) = sizes["teacher"], sizes["student"]
    found = _result(FEW_LABELS)
    smaller = dict(params=tn / sn, macs=tm / sm, speed=ts / ss)
    if found:
        st.markdown(t("The student has **{params:.1f}×** fewer parameters, needs **{macs:.1f}×** fewer multiply-adds "
                      "and runs **{speed:.1f}×** faster on this CPU, and from 50 labels it is {accuracy:.1f} % right "
                      "against the teacher's {teacher:.1f} % (step 3).", **smaller,
                      accuracy=100 * found[0].stats("distilled").mean, teacher=100 * found[0].teacher.test_accuracy))
    else:
        st.markdown(t("The student has **{params:.1f}×** fewer parameters, needs **{macs:.1f}×** fewer multiply-adds "
                      "and runs **{speed:.1f}×** faster on this CPU.", **smaller))
    fractions = {t("parameters"): sn / tn, t("multiply-adds"): sm / tm, t("time per image"): ss / ts}
    if found:
        fractions[t("accuracy (50 labels)")] = found[0].stats("distilled").mean / found[0].teacher.test_accuracy
    layout.chart(plots.fraction_bars(fractions, t("The student, as a share of its teacher (dashed: the teacher)")),
                 key="lesson.gained")


def _size(spec: str, data: Dataset) -> tuple[int, int, float]:
    """(parameters, multiply-adds per image, seconds per image measured now) of a fresh ``spec``."""
    model = build_model(spec, data.input_shape, data.num_classes)
    return count_params(model), macs_per_example(model, data.input_shape), latency_per_example(model, data.input_shape)


STEPS = [
    Step(N_("What a teacher knows"), N_("besides the right answer, the teacher's probabilities on the wrong classes: "
                                        "which ones it finds alike. That is what a label cannot carry."),
         _dark_knowledge),
    Step(N_("What the temperature does"), N_("as T rises the bars flatten: the small probabilities grow, so the "
                                             "student can learn from them; too high a T and everything looks alike."),
         _temperature),
    Step(N_("Learning from few labels"), N_("the distilled student against its scratch twin, on the same 50 images, "
                                            "over three seeds: the gap is the teacher's soft targets."), _few_labels),
    Step(N_("The class it never saw"), N_("a student that never saw a 3 recognising most 3s, and what one number (a "
                                          "bias) adds."), _omitted_class),
    Step(N_("Boundaries you can see"), N_("the shape each student learnt: from 10 labels alone, from the teacher's "
                                          "hard answers, from its soft targets."), _boundaries),
    Step(N_("What was gained"), N_("how much smaller and faster the student is than its teacher, for how much "
                                   "accuracy."), _gained),
]
