"""The lab's settings widgets, presets and the URL mirror.

``lab_settings_ui(fields)`` draws the chosen settings, returns them as a DistillConfig (plus the baseline
flag and the loaded dataset), and keeps the canonical copy in ``state.LAB`` so every page sees the same
set-up. Every widget is bounded; a bad choice yields a one-line message and ``ok=False``, never a raise.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import streamlit as st

from kdlab.base.config import DistillConfig, distill_from_dict
from kdlab.data import Dataset, dataset_names
from kdlab.runs.distill import validate
from kdlab.base.errors import KdlabError
from kdlab.training.losses import loss_names
from kdlab.training.models import model_names
from kdlab.ui import query, resources, state

MAX_PARAMS = 5_000_000  # per model; mlp:1200-1200 on MNIST has 2.4 M
ALL_FIELDS = state.FIELDS
KEY = state.WIDGET


@dataclass
class LabSettings:
    config: DistillConfig
    baseline: bool
    data: Dataset | None  # None when the dataset cannot be loaded
    error: str = ""  # non-empty: the settings cannot run as they are

    @property
    def ok(self) -> bool:
        return not self.error and self.data is not None


def lab_settings_ui(fields: tuple[str, ...] = ALL_FIELDS, *, mirror_url: bool = False,
                    title: str = "Lab settings") -> LabSettings:
    cfg, baseline = state.lab_config()
    if mirror_url:
        cfg, baseline = _read_url(cfg, baseline)
    _seed_widgets(cfg, baseline)
    box = st.sidebar
    box.header(title)
    values, note = _widgets(box, fields, cfg)
    data, error = _load(values.get("dataset", cfg.dataset))
    new_cfg, new_baseline = _build(cfg, baseline, values)
    if data is not None:
        error = error or _describe_models(note, new_cfg, data, fields)
    try:
        validate(new_cfg)
    except KdlabError as exc:
        error = error or str(exc)
    if error:
        box.error(error)
    else:
        state.set_lab(new_cfg, new_baseline, state.lab().get("preset"))
        if mirror_url:
            _write_url(new_cfg, new_baseline)
    return LabSettings(new_cfg, new_baseline, data, error)


def changed_fields(old: dict, new: DistillConfig, old_baseline: bool | None = None,
                   new_baseline: bool = True) -> list[str]:
    """Names of the settings that differ between a stored run's config dict and ``new``."""
    now = query.to_params(new, new_baseline)
    then = query.to_params(distill_from_dict(old), new_baseline if old_baseline is None else old_baseline)
    return [k for k in query.KEYS if now.get(k) != then.get(k)]


# -- internals -------------------------------------------------------------------------------------------------

def _read_url(cfg: DistillConfig, baseline: bool) -> tuple[DistillConfig, bool]:
    """Adopt the URL's settings when they differ from the session's (a shared link, or an edited URL)."""
    params = {k: st.query_params.get(k) for k in query.KEYS if k in st.query_params}
    if not params or params == query.to_params(cfg, baseline):
        return cfg, baseline
    cfg, baseline, notices = query.from_params(params, cfg, baseline)
    for notice in notices:
        st.warning(notice)
    state.set_lab(cfg, baseline, None)
    state.reset_widgets()
    return cfg, baseline


def _write_url(cfg: DistillConfig, baseline: bool) -> None:
    params = query.to_params(cfg, baseline)
    current = {k: st.query_params.get(k) for k in query.KEYS if k in st.query_params}
    if current != params:
        for key in set(current) - set(params):
            del st.query_params[key]
        st.query_params.update(params)


def _seed_widgets(cfg: DistillConfig, baseline: bool) -> None:
    seeds = {"dataset": cfg.dataset, "teacher": cfg.teacher, "student": cfg.student, "loss": cfg.loss,
             "T": float(cfg.temperature), "alpha": float(cfg.alpha), "epochs": cfg.train.epochs,
             "lr": min(query.LEARNING_RATES, key=lambda lr: abs(lr - cfg.train.lr)), "seed": cfg.train.seed,
             "baseline": baseline, "lam": float(cfg.loss_params.get("lam", 0.1)), "transfer": cfg.transfer_size or 0}
    for field, key in KEY.items():
        # Re-assigning a kept value is deliberate: widget ids include the page, so a widget state set on
        # another page would not reach this page's widget; a value set through session_state does.
        st.session_state[key] = st.session_state[key] if key in st.session_state else seeds[field]


def _widgets(box, fields: tuple[str, ...], cfg: DistillConfig) -> tuple[dict, Any]:
    """The widget values by field, and a placeholder under the architecture pickers for their sizes."""
    v = {}
    if "dataset" in fields:
        v["dataset"] = box.selectbox("Dataset", dataset_names(), key=KEY["dataset"],
                                     help="digits is built in and trains in seconds; the others may need files.")
    for role in ("teacher", "student"):
        if role in fields:
            options = _with(model_names(), st.session_state[KEY[role]])
            v[role] = box.selectbox(f"{role.capitalize()} architecture", options, key=KEY[role],
                                    accept_new_options=True, help="Pick one, or type a spec such as mlp:64-32.")
    note = box.empty()
    if "loss" in fields:
        v["loss"] = box.selectbox("Loss", loss_names(), key=KEY["loss"], help="hinton: α·T²·KL + (1−α)·CE")
    if "T" in fields:
        v["T"] = box.slider("Temperature T", *query.T_RANGE, step=0.1, key=KEY["T"], format="%.1f")
    if "alpha" in fields:
        v["alpha"] = box.slider("α (weight of the soft term)", *query.ALPHA_RANGE, step=0.05, key=KEY["alpha"])
    if "epochs" in fields:
        v["epochs"] = box.number_input("Epochs", *query.EPOCHS_RANGE, step=1, key=KEY["epochs"])
    if "lr" in fields:
        v["lr"] = box.select_slider("Learning rate", query.LEARNING_RATES, key=KEY["lr"],
                                    format_func=lambda x: f"{x:g}")
    if "seed" in fields:
        v["seed"] = box.number_input("Seed", *query.SEED_RANGE, step=1, key=KEY["seed"])
    if "baseline" in fields:
        v["baseline"] = box.toggle("Also train the student from scratch", key=KEY["baseline"])
    if "lam" in fields or "transfer" in fields:
        with box.expander("More settings"):
            if "lam" in fields and (v.get("loss") or cfg.loss) == "source":
                v["lam"] = st.number_input("λ of the source loss", *query.LAM_RANGE, step=0.05, key=KEY["lam"])
            if "transfer" in fields:
                v["transfer"] = st.number_input("Transfer set size (0 = every training image)", *query.TRANSFER_RANGE,
                                                step=100, key=KEY["transfer"])
    return v, note


def _with(options: list[str], current: str) -> list[str]:
    return options if current in options else [*options, current]


def _build(cfg: DistillConfig, baseline: bool, v: dict) -> tuple[DistillConfig, bool]:
    train = dataclasses.replace(cfg.train, epochs=int(v.get("epochs", cfg.train.epochs)),
                                lr=float(v.get("lr", cfg.train.lr)), seed=int(v.get("seed", cfg.train.seed)))
    loss = v.get("loss", cfg.loss)
    lam = float(v.get("lam", cfg.loss_params.get("lam", 0.1)))
    transfer = int(v["transfer"]) if "transfer" in v else (cfg.transfer_size or 0)
    new = dataclasses.replace(
        cfg, dataset=v.get("dataset", cfg.dataset), teacher=str(v.get("teacher", cfg.teacher)).strip(),
        student=str(v.get("student", cfg.student)).strip(), loss=loss,
        temperature=round(float(v.get("T", cfg.temperature)), 1), alpha=round(float(v.get("alpha", cfg.alpha)), 2),
        loss_params={"lam": lam} if loss == "source" else {}, train=train, transfer_size=transfer or None)
    return new, bool(v.get("baseline", baseline))


def _load(name: str) -> tuple[Dataset | None, str]:
    try:
        return resources.dataset(name), ""
    except KdlabError as exc:
        return None, str(exc)


def _describe_models(note, cfg: DistillConfig, data: Dataset, fields: tuple[str, ...]) -> str:
    """Parameter counts and the compression ratio under the architecture pickers; an error message if any."""
    specs = {"teacher": cfg.teacher, "student": cfg.student} if "student" in fields else {"teacher": cfg.teacher}
    counts = {}
    for role, spec in specs.items():
        if len(spec) > query.MAX_VALUE_CHARS:
            return f"the {role} spec is longer than {query.MAX_VALUE_CHARS} characters"
        try:
            counts[role] = resources.param_count(spec, data.input_shape, data.num_classes)
        except KdlabError as exc:
            return str(exc)
        if counts[role] > MAX_PARAMS:  # a shared CPU server: one huge model would starve (or exhaust) everyone
            return f"the {role} {spec} has {counts[role]:,} parameters; the lab allows at most {MAX_PARAMS:,}"
    if "student" not in counts:
        note.caption(f"Teacher: {counts['teacher']:,} parameters.")
    else:
        t, s = counts["teacher"], counts["student"]
        note.caption(f"Teacher {t:,} parameters · student {s:,} · compression {t / s:.1f}×")
    return ""
