"""Toy 2-D sets: small enough to draw every point and its decision boundary.

Each toy takes three parameters in its name, like a model spec: ``n`` (training points, default 2 000),
``noise`` (its own scale, see each generator; default per toy) and ``seed`` (default 0), e.g.
``spirals:noise=0.3:seed=2``. The training split is drawn with seed ``2*seed`` and the 1 000-point test split
with ``2*seed + 1``, so the plain names (seed 0: draws 0 and 1) keep the data they always had, and with it
their cached teachers. ``canonical_dataset_name`` gives each dataset one spelling (parameters in the order
n, noise, seed; defaults left out), which is what a teacher's cache key should carry.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from kdlab.base.errors import ConfigError
from kdlab.data.dataset import DATASETS, PARAMETERS, Dataset, as_labels, canonical_dataset_name

TOY_SIZES = (2000, 1000)  # (train, test) by default; `n` changes the training split only
POINTS_RANGE = (100, 20_000)  # training points: enough to draw a boundary, few enough to train in seconds
NOISE_RANGE = (0.0, 1.0)  # beyond 1 every toy is mostly noise
NOISE_DECIMALS = 3  # noise is rounded to this on parsing: one canonical name per drawn dataset
MAX_SEED = 2**31 - 1  # the test split's seed 2*seed + 1 must stay below 2**32 (scikit-learn's limit)

Maker = Callable[[int, int, float], tuple[np.ndarray, np.ndarray]]  # (n, seed, noise) -> x (n, 2), y (n,)


def _make_spirals(n: int, seed: int, noise: float = 0.2, arms: int = 3, turns: float = 1.0):
    """`arms` interleaved spirals (the CS231n toy set): point i lies on arm i % arms at radius r in
    (0, 1], angle 2*pi*(turns*r + arm/arms) plus Gaussian angle noise (std `noise` radians at r = 1) that
    grows with the radius."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % arms  # (n,) balanced classes
    r = rng.uniform(0.05, 1.0, n)  # (n,)
    angle = 2 * np.pi * (turns * r + y / arms) + rng.normal(0.0, noise, n) * r
    return np.stack([r * np.cos(angle), r * np.sin(angle)], axis=1), y  # (n, 2), (n,)


def _make_moons(n: int, seed: int, noise: float = 0.2):
    """scikit-learn's two moons (radius 1); `noise` is the std of the Gaussian added to both coordinates."""
    from sklearn.datasets import make_moons

    return make_moons(n, noise=noise, random_state=seed)


def _make_circles(n: int, seed: int, noise: float = 0.1):
    """scikit-learn's two circles (radii 1 and 0.5); `noise` as for the moons."""
    from sklearn.datasets import make_circles

    return make_circles(n, noise=noise, factor=0.5, random_state=seed)


def _make_xor(n: int, seed: int, noise: float = 0.1):
    """TensorFlow Playground's exclusive-or: uniform points in [-1, 1]^2 kept 0.1 off the axes, class 1 where
    x*y > 0 (quadrants 1 and 3), then Gaussian noise of std `noise` on both coordinates (points pushed
    across an axis keep their class: label noise near the boundary, as in any real data set)."""
    rng = np.random.default_rng(seed)
    u = rng.uniform(-1.0, 1.0, (n, 2))  # (n, 2)
    x = np.sign(u) * (0.1 + 0.9 * np.abs(u))  # (n, 2) no point within 0.1 of an axis
    y = (x[:, 0] * x[:, 1] > 0).astype(np.int64)  # (n,)
    return x + rng.normal(0.0, noise, (n, 2)), y


def _make_blobs(n: int, seed: int, noise: float = 0.4, blobs: int = 3):
    """`blobs` round Gaussian blobs (std `noise`) centred on the unit circle, evenly spaced: nearly linearly
    separable, the case where a teacher has little to teach."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % blobs  # (n,) balanced classes
    angle = np.pi / 2 + 2 * np.pi * y / blobs  # (n,)
    centres = np.stack([np.cos(angle), np.sin(angle)], axis=1)  # (n, 2)
    return centres + rng.normal(0.0, noise, (n, 2)), y


@dataclass(frozen=True)
class Toy:
    make: Maker
    classes: tuple[str, ...]
    noise: float  # the default noise, the one the plain name has always meant

    def defaults(self) -> dict[str, Any]:
        return {"n": TOY_SIZES[0], "noise": self.noise, "seed": 0}


TOYS: dict[str, Toy] = {  # registered in this order (the order of dataset_names() and dropdowns)
    "moons": Toy(_make_moons, ("upper moon", "lower moon"), 0.2),
    "circles": Toy(_make_circles, ("outer circle", "inner circle"), 0.1),
    "spirals": Toy(_make_spirals, ("arm 0", "arm 1", "arm 2"), 0.2),
    "xor": Toy(_make_xor, ("quadrants 2 & 4", "quadrants 1 & 3"), 0.1),
    "blobs": Toy(_make_blobs, ("blob 0", "blob 1", "blob 2"), 0.4),
}


def toy_name(base: str, n: int | None = None, noise: float | None = None, seed: int = 0) -> str:
    """The canonical name of a toy dataset with these parameters (None: the default)."""
    if base not in TOYS:
        raise ConfigError(f"unknown 2-D dataset {base!r}; choose one of: {', '.join(TOYS)}")
    raw = {"n": n, "noise": noise, "seed": seed}
    return canonical_dataset_name(":".join([base, *(f"{k}={v}" for k, v in raw.items() if v is not None)]))


def _parse(name: str, raw: dict[str, str]) -> dict[str, Any]:
    """Raw ``key=value`` strings -> {n, noise, seed} as typed values, in that order, defaults left out."""
    unknown = sorted(set(raw) - {"n", "noise", "seed"})
    if unknown:
        raise ConfigError(f"dataset {name!r} takes the parameters n, noise and seed, not {', '.join(unknown)} "
                          f"(e.g. {name}:n=2000:noise=0.3:seed=1)")
    values = {"n": _number(name, "n", raw.get("n"), int, *POINTS_RANGE),
              "noise": _number(name, "noise", raw.get("noise"), float, *NOISE_RANGE),
              "seed": _number(name, "seed", raw.get("seed"), int, 0, MAX_SEED)}
    defaults = TOYS[name].defaults()
    return {k: v for k, v in values.items() if v is not None and v != defaults[k]}


def _number(name: str, key: str, text: str | None, kind: type, low: float, high: float) -> int | float | None:
    if text is None:
        return None
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value) or not low <= value <= high:
        what = "a whole number" if kind is int else "a number"
        raise ConfigError(f"dataset {name!r}: {key} must be {what} in [{low:g}, {high:g}], got {text!r}")
    return round(value, NOISE_DECIMALS) if kind is float else value


def _toy_dataset(name: str, n: int | None = None, noise: float | None = None, seed: int = 0) -> Dataset:
    toy = TOYS[name]
    level = toy.noise if noise is None else noise
    (x_tr, y_tr) = toy.make(n or TOY_SIZES[0], 2 * seed, level)  # (n, 2), (n,)
    (x_te, y_te) = toy.make(TOY_SIZES[1], 2 * seed + 1, level)  # (1000, 2), (1000,)
    # Per-feature z-score with the training split's statistics (the usual choice for tabular inputs).
    mean, std = x_tr.mean(axis=0), x_tr.std(axis=0)
    as_tensor = lambda x: torch.from_numpy(((x - mean) / std).astype(np.float32))  # noqa: E731  (N, 2)
    label = toy_name(name, n, noise, seed)
    return Dataset(
        name=label, x_train=as_tensor(x_tr), y_train=as_labels(y_tr, len(toy.classes), label),
        x_test=as_tensor(x_te), y_test=as_labels(y_te, len(toy.classes), label),
        classes=toy.classes, input_shape=(2,),
    )


def _register(name: str) -> None:
    def load(data_dir: Path | None = None, download: bool = True, **params: Any) -> Dataset:
        return _toy_dataset(name, **params)

    load.__name__ = f"_load_{name}"
    DATASETS.register(name)(load)
    PARAMETERS[name] = partial(_parse, name)


for _name in TOYS:
    _register(_name)
