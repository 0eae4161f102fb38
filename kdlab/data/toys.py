"""Toy 2-D sets: small enough to draw every point and its decision boundary."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from kdlab.data.dataset import DATASETS, Dataset, as_labels


TOY_SIZES = (2000, 1000)  # (train, test); each split drawn with its own fixed seed (0 and 1)


def _make_spirals(n: int, seed: int, arms: int = 3, turns: float = 1.0, noise: float = 0.2):
    """`arms` interleaved spirals (the CS231n toy set): point i lies on arm i % arms at radius r in
    (0, 1], angle 2*pi*(turns*r + arm/arms) plus Gaussian angle noise that grows with the radius."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % arms  # (n,) balanced classes
    r = rng.uniform(0.05, 1.0, n)  # (n,)
    angle = 2 * np.pi * (turns * r + y / arms) + rng.normal(0.0, noise, n) * r
    return np.stack([r * np.cos(angle), r * np.sin(angle)], axis=1), y  # (n, 2), (n,)


def _make_moons(n: int, seed: int):
    from sklearn.datasets import make_moons

    return make_moons(n, noise=0.2, random_state=seed)


def _make_circles(n: int, seed: int):
    from sklearn.datasets import make_circles

    return make_circles(n, noise=0.1, factor=0.5, random_state=seed)


def _toy_dataset(name: str, make: Callable, classes: Sequence[str]) -> Dataset:
    (x_tr, y_tr), (x_te, y_te) = make(TOY_SIZES[0], 0), make(TOY_SIZES[1], 1)
    # Per-feature z-score with the training split's statistics (the usual choice for tabular inputs).
    mean, std = x_tr.mean(axis=0), x_tr.std(axis=0)
    as_tensor = lambda x: torch.from_numpy(((x - mean) / std).astype(np.float32))  # noqa: E731  (N, 2)
    return Dataset(
        name=name, x_train=as_tensor(x_tr), y_train=as_labels(y_tr, len(classes), name),
        x_test=as_tensor(x_te), y_test=as_labels(y_te, len(classes), name),
        classes=tuple(classes), input_shape=(2,),
    )


@DATASETS.register("moons")
def _load_moons(data_dir: Path | None = None, download: bool = True) -> Dataset:
    return _toy_dataset("moons", _make_moons, ("upper moon", "lower moon"))


@DATASETS.register("circles")
def _load_circles(data_dir: Path | None = None, download: bool = True) -> Dataset:
    return _toy_dataset("circles", _make_circles, ("outer circle", "inner circle"))


@DATASETS.register("spirals")
def _load_spirals(data_dir: Path | None = None, download: bool = True) -> Dataset:
    return _toy_dataset("spirals", _make_spirals, ("arm 0", "arm 1", "arm 2"))
