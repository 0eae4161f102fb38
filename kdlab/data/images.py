"""The image datasets: scikit-learn's 8x8 digits (offline), MNIST and Fashion-MNIST (IDX files)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from kdlab.base.errors import DataUnavailableError
from kdlab.data.dataset import DATASETS, Dataset, image_dataset
from kdlab.data.idx import read_idx
from kdlab.data.sources import idx_paths


DIGIT_CLASSES = tuple(str(d) for d in range(10))


@DATASETS.register("digits")
def _load_digits(data_dir: Path | None = None, download: bool = True) -> Dataset:
    """1,797 8x8 digits shipped with scikit-learn: always available, trains in seconds."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = bunch.images.astype(np.uint8)  # (1797, 8, 8), grey levels 0..16 stored as float64
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, bunch.target, test_size=0.2, random_state=0, stratify=bunch.target
    )  # stratified: every class keeps its share in the 360-image test split
    return image_dataset("digits", DIGIT_CLASSES, x_tr, y_tr, x_te, y_te, ink=16.0)


def _idx_dataset(name: str, classes: Sequence[str], data_dir: Path | None, download: bool) -> Dataset:
    x_tr, y_tr, x_te, y_te = (read_idx(p) for p in idx_paths(name, data_dir, download))
    if len(x_tr) != len(y_tr) or len(x_te) != len(y_te):
        raise DataUnavailableError(f"{name}: image and label files disagree on the number of examples")
    return image_dataset(name, classes, x_tr, y_tr, x_te, y_te)


FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)


@DATASETS.register("mnist")
def _load_mnist(data_dir: Path | None = None, download: bool = True) -> Dataset:
    return _idx_dataset("mnist", DIGIT_CLASSES, data_dir, download)


@DATASETS.register("fashion-mnist")
def _load_fashion_mnist(data_dir: Path | None = None, download: bool = True) -> Dataset:
    return _idx_dataset("fashion-mnist", FASHION_CLASSES, data_dir, download)


