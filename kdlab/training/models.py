"""The model zoo, built from short specs that a CLI flag or a dropdown can carry.

Spec grammar: ``FAMILY[:ARG][:dropout=P]``

* ``linear``                 - softmax regression
* ``mlp:W1-W2-...``           - ReLU MLP with the given hidden widths, e.g. ``mlp:1200-1200``, ``mlp:100``
* ``cnn:small`` / ``cnn:medium`` - LeNet-like CNNs for image inputs (any HxW >= 8)

``:dropout=P`` adds dropout after every hidden layer (Hinton 2015's teacher used it).

Every spec has one canonical spelling (``canonical_spec``): ``mlp:0500`` and `` mlp:500 `` are ``mlp:500``,
``:dropout=0.20`` is ``:dropout=0.2`` and ``:dropout=0`` is dropped. Cache keys and reports use it, so two
spellings of one network share one cached teacher. Specs are ASCII and lower case: Python's ``int()`` reads
``'١٠٠'`` as 100 and a 5 000-digit width raises ValueError, so both are refused with a ConfigError first.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from kdlab.base.errors import ConfigError
from kdlab.base.registry import Registry

SPEC_FORMS = "linear, mlp:<width>[-<width>...] (e.g. mlp:1200-1200), cnn:small, cnn:medium; optional :dropout=<0..0.9>"
MAX_WIDTH = 8192  # bounds memory for specs typed into a UI or URL
MAX_LAYERS = 8
MAX_SPEC_CHARS = 120  # the longest valid canonical spec is ~60 characters; leading zeros get some slack
_SPEC_CHARS = re.compile(r"[a-z0-9:=.+-]+")  # ASCII only: str.isdigit and int() also take other scripts' digits
_DROPOUT = re.compile(r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:e[-+]?[0-9]+)?")  # float() would also take '١', ' 1', '1_0'


@dataclass(frozen=True)
class ModelSpec:
    family: str
    arg: str  # canonical: "1200-1200" for mlp, "small" for cnn, "" for linear
    dropout: float = 0.0

    def __str__(self) -> str:
        """The canonical spec: ``mlp:1200-1200:dropout=0.2``."""
        return (self.family + (f":{self.arg}" if self.arg else "")
                + (f":dropout={self.dropout!r}" if self.dropout else ""))


Builder = Callable[[ModelSpec, tuple[int, ...], int], nn.Module]
ARCHITECTURES: Registry[Builder] = Registry("architecture family")
# family -> (arg, spec) -> the arg's canonical form, ConfigError if invalid. Checked while parsing, so a spec
# is fully validated (except for fitting the data) before any model is built.
ARG_FORMS: dict[str, Callable[[str, str], str]] = {}


def parse_spec(spec: str) -> ModelSpec:
    """The parts of a spec, in canonical form; ConfigError for anything malformed."""
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"empty model spec; valid forms: {SPEC_FORMS}")
    text = spec.strip()
    if len(text) > MAX_SPEC_CHARS:
        raise ConfigError(f"model spec {_shown(text)} is too long ({len(text)} characters, at most "
                          f"{MAX_SPEC_CHARS}); valid forms: {SPEC_FORMS}")
    if not _SPEC_CHARS.fullmatch(text):
        bad = next((c for c in text if not _SPEC_CHARS.fullmatch(c)), "")
        hint = f" (specs are lower case: {_shown(text.lower())}?)" if text.isascii() and text.lower() != text else ""
        raise ConfigError(f"model spec {_shown(text)} has the character {bad!r}: only a-z, 0-9 and ':=.+-' "
                          f"are allowed{hint}; valid forms: {SPEC_FORMS}")
    family, *rest = text.split(":")
    dropout = 0.0
    if rest and rest[-1].startswith("dropout="):
        dropout = _parse_dropout(rest.pop()[len("dropout="):], text)
    if family not in ARCHITECTURES or len(rest) > 1:
        raise ConfigError(f"malformed model spec {_shown(text)}; valid forms: {SPEC_FORMS}")
    arg = rest[0] if rest else ""
    form = ARG_FORMS.get(family)
    return ModelSpec(family, form(arg, text) if form else arg, dropout)


def canonical_spec(spec: str) -> str:
    """The one spelling of ``spec``: ``canonical_spec(" mlp:0500:dropout=0.20")`` is ``"mlp:500:dropout=0.2"``.
    ConfigError for a malformed spec. Idempotent: a canonical spec is its own canonical form."""
    return _canonical(spec) if isinstance(spec, str) else str(parse_spec(spec))  # a list is not hashable


@functools.lru_cache(maxsize=1024)  # pure, and asked on every cache lookup (each page view of a teacher)
def _canonical(spec: str) -> str:
    return str(parse_spec(spec))


def build_model(spec: str, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """A fresh, randomly initialised model (seed torch beforehand for reproducibility)."""
    parsed = parse_spec(spec)
    model = ARCHITECTURES.get(parsed.family)(parsed, tuple(input_shape), num_classes)
    model.spec = str(parsed)  # type: ignore[attr-defined]  # canonical, for reports and the cache
    return model


def validate_spec(spec: str, input_shape: tuple[int, ...] = (1, 28, 28), num_classes: int = 10) -> None:
    """Raises ConfigError for an unknown or malformed spec, without allocating the weights."""
    if isinstance(spec, str):
        _valid_spec(spec, tuple(input_shape), int(num_classes))
    else:
        build_model(spec, input_shape, num_classes)  # raises the ConfigError


@functools.lru_cache(maxsize=512)  # a valid answer is remembered: even a meta-device build costs 2-6 ms, and a
def _valid_spec(spec: str, input_shape: tuple[int, ...], num_classes: int) -> None:  # sweep checks each spec ~100x
    with torch.device("meta"):
        build_model(spec, input_shape, num_classes)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def macs_per_example(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one forward pass for one example (Linear and Conv2d layers)."""
    total = 0

    def hook(module: nn.Module, _inp: tuple, out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Linear):
            total += module.in_features * module.out_features
        elif isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            total += out[0].numel() * (module.in_channels // module.groups) * kh * kw

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    try:
        with torch.no_grad():
            model(torch.zeros(1, *input_shape, device=_device_of(model)))
    finally:
        for h in handles:
            h.remove()
    return total


def _device_of(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def _parse_dropout(text: str, spec: str) -> float:
    p = float(text) if _DROPOUT.fullmatch(text) else -1.0  # the pattern bounds the text: float() cannot fail
    if not 0.0 <= p <= 0.9:
        raise ConfigError(f"dropout in {_shown(spec)} must be a number in [0, 0.9]; valid forms: {SPEC_FORMS}")
    return p


def _shown(spec: str) -> str:
    """A spec for a one-line message: a 5 000-character one would swamp it."""
    return repr(spec if len(spec) <= 40 else spec[:40] + "…")


def _flat_dim(input_shape: tuple[int, ...]) -> int:
    n = 1
    for d in input_shape:
        n *= d
    return n


def _linear_arg(arg: str, spec: str) -> str:
    if arg:
        raise ConfigError(f"'linear' takes no argument; valid forms: {SPEC_FORMS}")
    return ""


@ARCHITECTURES.register("linear")
def _linear(spec: ModelSpec, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(_flat_dim(input_shape), num_classes))


def _mlp_widths(arg: str, spec: str) -> str:
    """'0500-1200' -> '500-1200'. Widths are compared as digit strings before int(): int() of a 5 000-digit
    string raises ValueError (Python's int_max_str_digits), and there is no point converting one anyway."""
    if not re.fullmatch(r"[0-9]+(-[0-9]+)*", arg):
        raise ConfigError(f"mlp needs hidden widths like mlp:100 or mlp:1200-1200; valid forms: {SPEC_FORMS}")
    digits = [w.lstrip("0") or "0" for w in arg.split("-")]
    if len(digits) > MAX_LAYERS or not all(len(w) <= len(str(MAX_WIDTH)) and 1 <= int(w) <= MAX_WIDTH
                                           for w in digits):
        raise ConfigError(f"mlp widths must be 1..{MAX_WIDTH}, at most {MAX_LAYERS} layers; got {_shown(arg)}; "
                          f"valid forms: {SPEC_FORMS}")
    return "-".join(digits)


@ARCHITECTURES.register("mlp")
def _mlp(spec: ModelSpec, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    widths = [int(w) for w in _mlp_widths(spec.arg, spec.arg).split("-")]  # a ModelSpec may be built by hand
    layers: list[nn.Module] = [nn.Flatten()]
    fan_in = _flat_dim(input_shape)
    for w in widths:
        layers += [nn.Linear(fan_in, w), nn.ReLU()]
        if spec.dropout:
            layers.append(nn.Dropout(spec.dropout))
        fan_in = w
    layers.append(nn.Linear(fan_in, num_classes))
    return nn.Sequential(*layers)


CNN_CHANNELS = {"small": (6, 16, 120, 84), "medium": (32, 64, 256, 128)}  # LeNet-5 and a wider sibling


def _cnn_size(arg: str, spec: str) -> str:
    if arg not in CNN_CHANNELS:
        raise ConfigError(f"unknown cnn size {_shown(arg)}; valid forms: {SPEC_FORMS}")
    return arg


@ARCHITECTURES.register("cnn")
def _cnn(spec: ModelSpec, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    _cnn_size(spec.arg, spec.arg)
    if len(input_shape) != 3 or min(input_shape[1:]) < 8:
        raise ConfigError(f"cnn:{spec.arg} needs image inputs of at least 8x8, got shape {input_shape}")
    c1, c2, f1, f2 = CNN_CHANNELS[spec.arg]
    h, w = input_shape[1] // 4, input_shape[2] // 4  # two 2x2 poolings, 'same' padding
    drop = [nn.Dropout(spec.dropout)] if spec.dropout else []
    return nn.Sequential(
        nn.Conv2d(input_shape[0], c1, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),  # (B, c1, H/2, W/2)
        nn.Conv2d(c1, c2, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),  # (B, c2, H/4, W/4)
        nn.Flatten(),
        nn.Linear(c2 * h * w, f1), nn.ReLU(), *drop,
        nn.Linear(f1, f2), nn.ReLU(), *drop,
        nn.Linear(f2, num_classes),
    )


ARG_FORMS.update(linear=_linear_arg, mlp=_mlp_widths, cnn=_cnn_size)


def model_names() -> list[str]:
    """Ready-made specs for dropdowns (any valid spec is accepted too)."""
    return ["linear", "mlp:30", "mlp:100", "mlp:300", "mlp:500", "mlp:800-800", "mlp:1200-1200",
            "mlp:1200-1200:dropout=0.2", "cnn:small", "cnn:medium"]
