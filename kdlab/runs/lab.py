"""The table of the lab's settings, and what is said of a Lab (kdlab.base.lab: a DistillConfig, whether the
scratch twin is trained, over how many seeds): its validation, its one-line label, what changed since a run.

``LAB_SETTINGS`` is the one table of its user-facing settings (``kdlab.base.settings``): the Distill sidebar,
the URL, the ``kdlab distill`` flags and the stale-results check are all built from it. A loss's own weights
get their rows from the loss registry, so a new weight of a new loss needs no edit here.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from kdlab.base.config import OPTIMIZERS, SCHEDULES
from kdlab.base.errors import ConfigError
from kdlab.base.lab import MAX_SEEDS, Lab
from kdlab.base.settings import Setting, changed, format_value, get
from kdlab.data import dataset_names, train_size
from kdlab.runs.distill import validate
from kdlab.training.losses import LOSSES, loss_info, loss_names
from kdlab.training.models import canonical_spec, model_names, validate_spec

LEARNING_RATES = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
BATCH_SIZES = (8, 16, 32, 64, 128, 256, 512)
MIN_SENSIBLE_STEPS = 200  # fewer optimizer steps leave a student visibly under-trained (the UI warns)


def validate_lab(lab: Lab) -> None:
    """Every check of a Lab that needs no data (one owner: ``kdlab.runs.distill.validate``)."""
    if isinstance(lab.seeds, bool) or not isinstance(lab.seeds, int) or not 1 <= lab.seeds <= MAX_SEEDS:
        raise ConfigError(f"seeds must be a whole number in [1, {MAX_SEEDS}], got {lab.seeds!r}")
    validate(lab.config)


def normalised(lab: Lab) -> Lab:
    """The loss's own weights only (a switch from `source` to `hinton` drops λ)."""
    params = loss_info(lab.config.loss).params if lab.config.loss in LOSSES else {}
    kept = {k: v for k, v in lab.config.loss_params.items() if k in params}
    return lab if kept == lab.config.loss_params else dataclasses.replace(lab, config=lab.config.replace(loss_params=kept))


def _spec(text: str) -> str:
    """The spec's one canonical form (mlp:0500 is mlp:500), shown and cached as such."""
    validate_spec(text)  # the grammar and the numbers; whether it fits the data is checked on loading
    return canonical_spec(text)


def _uses(fact: str):
    return lambda lab: lab.config.loss in LOSSES and getattr(loss_info(lab.config.loss), fact)


def _has_param(name: str):
    return lambda lab: lab.config.loss in LOSSES and name in loss_info(lab.config.loss).params


def _loss_param_rows() -> list[Setting]:
    rows, seen = [], set()
    for loss in loss_names():
        for name, p in loss_info(loss).params.items():
            if name not in seen:
                seen.add(name)
                rows.append(Setting(name, f"config.loss_params.{name}", p.label, p.help, "float", 0.0, p.high,
                                    p.step, digits=3, default=p.default, group="Loss", applies=_has_param(name)))
    return rows


def _teacher_train(name: str, label: str, kind: str, **kw: Any) -> Setting:
    return Setting(f"teacher_{name}", f"config.teacher_train.{name}", f"Teacher {label}", kind=kind, ui=False, **kw)


LAB_SETTINGS: list[Setting] = [
    Setting("dataset", "config.dataset", "Dataset", "digits is built in and trains in seconds; the others may "
            "need files.", "choice", options=dataset_names, group="Data"),
    Setting("transfer_size", "config.transfer_size", "Transfer-set size (0 = every training image)",
            "The student learns from this many training images (with the teacher's soft targets on them); "
            "a few dozen show distillation best.", "int", 0, lambda lab: train_size(lab.config.dataset) or 100_000,
            10, none_as=0, group="Data"),
    Setting("teacher", "config.teacher", "Teacher architecture", "Pick one, or type a spec such as mlp:64-32.",
            "spec", options=model_names, check=_spec, group="Models"),
    Setting("student", "config.student", "Student architecture", "Pick one, or type a spec such as mlp:64-32.",
            "spec", options=model_names, check=_spec, group="Models"),
    Setting("loss", "config.loss", "Loss", "How the student learns from the teacher.", "choice",
            options=loss_names, group="Loss"),
    Setting("temperature", "config.temperature", "Temperature T", "Softens the teacher's outputs: "
            "softmax(logits / T).", "float", 0.5, 30.0, 0.1, digits=1, group="Loss", applies=_uses("uses_temperature"),
            flags=("-T",), aliases=("T",)),
    Setting("alpha", "config.alpha", "α (weight of the soft term)", "0: labels only; 1: the teacher only.",
            "float", 0.0, 1.0, 0.05, digits=2, group="Loss", applies=_uses("uses_alpha")),
    *_loss_param_rows(),
    Setting("steps", "config.train.steps", "Training steps (0 = count epochs)", "Optimizer steps of each "
            "student: the same budget whatever the transfer-set size.", "int", 0, 20_000, 100, none_as=0,
            group="Training"),
    Setting("epochs", "config.train.epochs", "Epochs", "Passes over the transfer set (used when steps is 0).",
            "int", 1, 1000, 1, group="Training", applies=lambda lab: lab.config.train.steps is None,
            implies=(("steps", 0),)),
    Setting("lr", "config.train.lr", "Learning rate", "Adam's step size (cosine-decayed to zero).", "ladder",
            options=LEARNING_RATES, group="Training"),
    Setting("batch_size", "config.train.batch_size", "Batch size", "Examples per optimizer step.", "int", 1,
            100_000, options=BATCH_SIZES, group="Training", more=True),
    Setting("seed", "config.train.seed", "Seed", "Fixes the initial weights, the batch order and the transfer "
            "subset.", "int", 0, 9999, 1, group="Training"),
    Setting("seeds", "seeds", "Seeds per run", "Seeds seed, seed + 1, …: the results show the mean and the "
            "spread.", "int", 1, MAX_SEEDS, 1, group="Training"),
    Setting("scratch", "scratch", "Also train the student from scratch", "The same network, seed, data and "
            "budget, on the labels alone: the fair comparison.", "bool", group="Training", aliases=("baseline",),
            flags=("--baseline",)),
    Setting("use_labels", "config.use_labels", "The student sees the labels", "Off: soft targets alone, as with "
            "an unlabelled transfer set.", "bool", group="Training", more=True, flags=("--no-labels",)),
    Setting("omit_classes", "config.omit_classes", "Classes left out of the transfer set", "Hinton 2015's "
            "omitted class: can the student learn a class it never sees?", "ints", 0, 9999, more=True,
            group="Data"),
    Setting("optimizer", "config.train.optimizer", "Optimizer", "", "choice", options=OPTIMIZERS, more=True,
            group="Training"),
    Setting("schedule", "config.train.schedule", "Learning-rate schedule", "", "choice", options=SCHEDULES,
            more=True, group="Training"),
    Setting("teacher_epochs", "config.teacher_train.epochs", "Teacher epochs", "A new value trains (and caches) "
            "a new teacher.", "int", 1, 200, 1, more=True, group="Models"),
    _teacher_train("lr", "learning rate", "float", low=1e-6, high=10.0),
    _teacher_train("batch_size", "batch size", "int", low=1, high=1_000_000),
    _teacher_train("optimizer", "optimizer", "choice", options=OPTIMIZERS),
    _teacher_train("schedule", "learning-rate schedule", "choice", options=SCHEDULES),
    _teacher_train("seed", "seed", "int", low=0, high=2**31 - 1),
    Setting("device", "config.train.device", "Device", "cpu, or cuda[:N] when a GPU is present", "spec", ui=False),
    Setting("max_seconds", "config.train.max_seconds", "Time bound of each training (seconds)", "", "float",
            1e-3, 86_400.0, ui=False),
]


def lab_setting(name: str) -> Setting:
    return next(s for s in LAB_SETTINGS if s.name == name)


def run_label(lab: Lab) -> str:
    """One line naming a run by the settings its loss uses, e.g.
    'digits · 50 images · mlp:500 → mlp:100 · hinton T=4 α=0.9 · 1000 steps · 3 seeds'."""
    c = lab.config
    loss = [c.loss] + [f"{_SYMBOLS.get(s.name, s.name)}={format_value(s, get(lab, s))}" for s in LAB_SETTINGS
                       if s.group == "Loss" and s.name != "loss" and s.applies_to(lab)]
    parts = [c.dataset]
    if c.transfer_size:
        parts.append(f"{c.transfer_size} images")
    parts += [f"{c.teacher} → {c.student}", " ".join(loss),
              f"{c.train.steps} steps" if c.train.steps is not None else f"{c.train.epochs} ep"]
    if lab.seeds > 1:
        parts.append(f"{lab.seeds} seeds")
    return " · ".join(parts)


_SYMBOLS = {"temperature": "T", "alpha": "α", "lam": "λ", "beta_tckd": "β_T", "beta_nckd": "β_N"}


def stale_settings(then: Lab, now: Lab, ignore: tuple[str, ...] = ()) -> list[str]:
    """Labels of the settings that changed since a run (its results no longer show what the sidebar says)."""
    names = set(changed(LAB_SETTINGS, normalised(then), normalised(now))) - set(ignore)
    return [s.label for s in LAB_SETTINGS if s.name in names]


# The settings of ``kdlab teacher``: the same rows, over a TeacherConfig.
TEACHER_SETTINGS: list[Setting] = [
    dataclasses.replace(lab_setting("dataset"), path="dataset"),
    Setting("arch", "arch", "Teacher architecture", lab_setting("teacher").help, "spec", options=model_names,
            check=_spec),
    *[dataclasses.replace(lab_setting(name), path=f"train.{name}", applies=None, implies=())
      for name in ("epochs", "lr", "batch_size", "optimizer", "schedule", "seed", "device", "max_seconds")],
]
