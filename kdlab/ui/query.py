"""The Distill settings as URL query parameters, so a link reproduces a set-up.

Pure functions (no Streamlit calls): ``to_params`` writes, ``from_params`` reads. Reading never fails: a
value that is missing keeps the base setting, a value that is invalid falls back to the default preset's
and adds a one-line notice.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Mapping

from kdlab.base.config import DistillConfig
from kdlab.data import dataset_names
from kdlab.base.errors import ConfigError, KdlabError
from kdlab.training.losses import loss_names, validate_loss_params
from kdlab.training.models import validate_spec
from kdlab.runs.presets import DEFAULT_PRESET, get_preset

# Widget bounds, shared with kdlab.ui.settings so a URL cannot ask for more than a widget allows.
T_RANGE = (0.5, 30.0)
ALPHA_RANGE = (0.0, 1.0)
LAM_RANGE = (0.0, 10.0)
EPOCHS_RANGE = (1, 100)
SEED_RANGE = (0, 9999)
TRANSFER_RANGE = (0, 100_000)  # 0: the whole training split
LEARNING_RATES = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
MAX_VALUE_CHARS = 64
KEYS = ("dataset", "teacher", "student", "loss", "T", "alpha", "lam", "epochs", "lr", "seed", "transfer", "baseline")


def to_params(cfg: DistillConfig, baseline: bool) -> dict[str, str]:
    p = {"dataset": cfg.dataset, "teacher": cfg.teacher, "student": cfg.student, "loss": cfg.loss,
         "T": f"{cfg.temperature:g}", "alpha": f"{cfg.alpha:g}", "epochs": str(cfg.train.epochs),
         "lr": f"{cfg.train.lr:g}", "seed": str(cfg.train.seed), "baseline": "1" if baseline else "0"}
    if "lam" in cfg.loss_params:
        p["lam"] = f"{cfg.loss_params['lam']:g}"
    if cfg.transfer_size is not None:
        p["transfer"] = str(cfg.transfer_size)
    return p


def from_params(params: Mapping[str, Any], base: DistillConfig, base_baseline: bool
                ) -> tuple[DistillConfig, bool, list[str]]:
    """(config, baseline, notices) from ``params``; unknown keys are ignored."""
    default = get_preset(DEFAULT_PRESET)
    fallbacks = _parsed(default.config, default.scratch)
    values: dict[str, Any] = {}
    notices: list[str] = []
    for key, parse in PARSERS.items():
        if key not in params:
            continue
        raw = params[key]
        raw = raw[-1] if isinstance(raw, (list, tuple)) and raw else raw  # a repeated key: the last one wins
        try:
            values[key] = parse(str(raw).strip()[:MAX_VALUE_CHARS + 1])
        except (ValueError, KdlabError) as exc:
            values[key] = fallbacks[key]
            notices.append(f"The link's {key}={str(raw)[:MAX_VALUE_CHARS]!r} was ignored ({exc}); "
                           f"using the default, {fallbacks[key]}.")
    cfg, baseline = _apply(values, base, base_baseline)
    try:
        validate_loss_params(cfg.loss, cfg.temperature, cfg.alpha, **cfg.loss_params)
        cfg.validate()
    except ConfigError as exc:
        notices.append(f"The link's settings do not fit together ({exc}); using the defaults.")
        return default.config, default.scratch, notices
    return cfg, baseline, notices


def _parsed(cfg: DistillConfig, baseline: bool) -> dict[str, Any]:
    """The parsed value of every key for ``cfg`` (what ``from_params`` would read from ``to_params``)."""
    return {"dataset": cfg.dataset, "teacher": cfg.teacher, "student": cfg.student, "loss": cfg.loss,
            "T": cfg.temperature, "alpha": cfg.alpha, "lam": cfg.loss_params.get("lam", 0.1),
            "epochs": cfg.train.epochs, "lr": cfg.train.lr, "seed": cfg.train.seed,
            "transfer": cfg.transfer_size or 0, "baseline": baseline}


def _apply(values: dict[str, Any], base: DistillConfig, baseline: bool) -> tuple[DistillConfig, bool]:
    train = {k: values[q] for q, k in (("epochs", "epochs"), ("lr", "lr"), ("seed", "seed")) if q in values}
    top = {k: values[q] for q, k in (("dataset", "dataset"), ("teacher", "teacher"), ("student", "student"),
                                     ("loss", "loss"), ("T", "temperature"), ("alpha", "alpha")) if q in values}
    if "transfer" in values:
        top["transfer_size"] = values["transfer"] or None
    loss = top.get("loss", base.loss)
    lam = values.get("lam", base.loss_params.get("lam", 0.1))
    top["loss_params"] = {"lam": lam} if loss == "source" else {}
    cfg = dataclasses.replace(base, train=dataclasses.replace(base.train, **train), **top)
    return cfg, values.get("baseline", baseline)


def _choice(options: Callable[[], list[str]]) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw not in options():
            raise ValueError(f"choose one of {', '.join(options())}")
        return raw
    return parse


def _spec(raw: str) -> str:
    if len(raw) > MAX_VALUE_CHARS:
        raise ValueError("too long")
    validate_spec(raw, (1, 28, 28), 10)  # ConfigError for a malformed spec; the dataset's shape is checked at Run
    return raw


def _number(low: float, high: float, integer: bool = False) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        kind = "a whole number" if integer else "a number"
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or not low <= value <= high or (integer and value != int(value)):
            raise ValueError(f"must be {kind} in [{low:g}, {high:g}]")
        return int(value) if integer else value
    return parse


def _learning_rate(raw: str) -> float:
    value = _number(1e-5, 1.0)(raw)
    return min(LEARNING_RATES, key=lambda lr: abs(math.log(lr / value)))  # snap to the slider's stops


def _flag(raw: str) -> bool:
    low = raw.lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be 1 or 0")


PARSERS: dict[str, Callable[[str], Any]] = {
    "dataset": _choice(dataset_names), "teacher": _spec, "student": _spec, "loss": _choice(loss_names),
    "T": lambda raw: round(_number(*T_RANGE)(raw), 1), "alpha": lambda raw: round(_number(*ALPHA_RANGE)(raw), 2),
    "lam": _number(*LAM_RANGE),
    "epochs": _number(*EPOCHS_RANGE, integer=True), "lr": _learning_rate, "seed": _number(*SEED_RANGE, integer=True),
    "transfer": _number(*TRANSFER_RANGE, integer=True), "baseline": _flag,
}
