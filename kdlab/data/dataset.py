"""The dataset container, the dataset registry and the normalisation every loader shares.

Everything a loader returns is already normalised and held in memory as one tensor per split: the engine
slices shuffled index batches from it, which is ~8x faster on a small CPU than a per-item DataLoader
(docs/ARCHITECTURE.md, "Speed").
"""
from __future__ import annotations

import functools
import logging
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from kdlab.base.errors import ConfigError, DataUnavailableError, KdlabError
from kdlab.base.registry import Registry

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------------------
# The dataset container


@dataclass(frozen=True, eq=False)  # eq=False: comparing tensors elementwise is never what `==` should mean
class Dataset:
    name: str
    x_train: torch.Tensor  # (N, *input_shape) float32, normalised, contiguous, in memory
    y_train: torch.Tensor  # (N,) int64
    x_test: torch.Tensor  # (M, *input_shape) float32, same normalisation as the training split
    y_test: torch.Tensor  # (M,) int64
    classes: tuple[str, ...]  # human-readable class names; label i is classes[i]
    input_shape: tuple[int, ...]  # e.g. (1, 28, 28), (1, 8, 8), (2,)
    pixels: "PixelScale | None" = None  # images only: how a raw pixel became an input (a drawing needs it)

    def __post_init__(self) -> None:
        for split, x, y in (("train", self.x_train, self.y_train), ("test", self.x_test, self.y_test)):
            if len(x) != len(y) or tuple(x.shape[1:]) != tuple(self.input_shape):
                raise ValueError(
                    f"{self.name} {split}: x {tuple(x.shape)} and y {tuple(y.shape)} do not fit "
                    f"input_shape {self.input_shape}"
                )

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def subset(self, n: int | None = None, omit_classes: Sequence[int] = (), seed: int = 0) -> Dataset:
        """A transfer set as a Dataset: the training split restricted to ``transfer_indices``. The test
        split, classes and name stay as they are, so a student trained on it is still scored on every class
        (the omitted-class experiment needs that)."""
        keep = self.transfer_indices(n, omit_classes, seed)
        return replace(self, x_train=self.x_train[keep].contiguous(), y_train=self.y_train[keep])

    def transfer_indices(self, n: int | None = None, omit_classes: Sequence[int] = (), seed: int = 0) -> torch.Tensor:
        """(K,) training indices of a transfer set: without ``omit_classes``, then (if ``n``) a seeded random
        ``n`` of what is left, in their original order. Indices, so callers can slice cached teacher logits."""
        keep = self._indices_without(omit_classes)  # (K,) int64
        if n is not None:
            return _seeded_choice(keep, n, seed, what=f"{self.name} transfer set")
        if len(keep) == 0:
            raise ConfigError(f"omitting classes {list(omit_classes)} leaves no {self.name} training examples")
        return keep

    def _indices_without(self, omit_classes: Sequence[int]) -> torch.Tensor:
        omit = sorted({int(c) for c in omit_classes})
        bad = [c for c in omit if not 0 <= c < self.num_classes]
        if bad:
            raise ConfigError(f"{self.name} has classes 0..{self.num_classes - 1}; cannot omit {bad}")
        mask = ~torch.isin(self.y_train, torch.tensor(omit, dtype=torch.int64))  # (N,) bool
        return mask.nonzero().squeeze(1)

    def __repr__(self) -> str:  # the default repr would print the tensors
        return (
            f"Dataset({self.name!r}, train={len(self.y_train)}, test={len(self.y_test)}, "
            f"input_shape={self.input_shape}, classes={self.num_classes})"
        )


def _seeded_choice(indices: torch.Tensor, n: int, seed: int, what: str) -> torch.Tensor:
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= len(indices):
        raise ConfigError(f"{what}: n must be an integer between 1 and {len(indices)}, got {n!r}")
    gen = torch.Generator().manual_seed(seed)  # a private generator: never disturbs the global RNG
    pick = torch.randperm(len(indices), generator=gen)[:n]
    return indices[pick.sort().values]


# ---------------------------------------------------------------------------------------------------------
# Registry and public entry points

Loader = Callable[..., Dataset]  # (data_dir, download, **parameters) -> Dataset
DATASETS: Registry[Loader] = Registry("dataset")
# Datasets whose name may carry parameters, like model specs: ``spirals:noise=0.3:seed=2``. Each maps the raw
# ``key=value`` strings to typed values in its canonical order, defaults left out (kdlab.data.toys fills it).
PARAMETERS: dict[str, Callable[[dict[str, str]], dict[str, Any]]] = {}


def dataset_names() -> list[str]:
    return DATASETS.names()


@functools.lru_cache(maxsize=32)
def train_size(name: str) -> int | None:
    """How many training examples dataset ``name`` has (loaded once per process), None if it cannot load."""
    try:
        return len(load_dataset(name, download=False).y_train)
    except KdlabError:
        return None


def parse_dataset_name(name: str) -> tuple[str, dict[str, Any]]:
    """``"spirals:seed=2:noise=0.3"`` -> ``("spirals", {"noise": 0.3, "seed": 2})``: the registered name and
    its parameters, checked and in canonical order; ConfigError for an unknown name or a bad parameter."""
    if not isinstance(name, str):
        raise ConfigError(f"a dataset name must be a string, got {name!r}")
    base, *pairs = (part.strip() for part in name.split(":"))
    DATASETS.get(base)  # ConfigError listing the valid names
    raw: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = (part.strip() for part in pair.partition("="))
        if not sep or not key or key in raw:
            raise ConfigError(f"malformed dataset name {name!r}; write it as {base}:key=value[:key=value...]")
        raw[key] = value
    if raw and base not in PARAMETERS:
        raise ConfigError(f"dataset {base!r} takes no parameters; write it as {base!r}")
    return base, PARAMETERS[base](raw) if base in PARAMETERS else {}


def canonical_dataset_name(name: str) -> str:
    """The one spelling of a dataset (parameters in canonical order, defaults left out), so that a cache keyed
    by the name keys one dataset once: ``spirals:seed=0:noise=0.2`` -> ``spirals``."""
    base, params = parse_dataset_name(name)
    return ":".join([base, *(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())])


def load_dataset(name: str, data_dir: str | os.PathLike | None = None, *, download: bool = True) -> Dataset:
    """Load a registered dataset, with parameters where it takes them (``spirals:noise=0.3:seed=2``).
    `data_dir` (else env KDLAB_DATA_DIR) is searched first for file-based sets; `download=False` forbids
    the network. Raises ConfigError for an unknown name or a data folder that does not exist (a typo must not
    silently fall back to another copy or a download), and
    DataUnavailableError when the files can be neither found nor downloaded."""
    base, params = parse_dataset_name(name)  # "spirals:noise=0.3" -> ("spirals", {"noise": 0.3})
    loader = DATASETS.get(base)
    folder = Path(data_dir).expanduser() if data_dir else None
    _check_folder(folder, "--data-dir (data_dir)")
    env = os.environ.get("KDLAB_DATA_DIR")
    if folder is None and env:
        _check_folder(Path(env).expanduser(), "KDLAB_DATA_DIR")
    start = time.perf_counter()
    ds = loader(folder, download, **params)
    log.info("loaded %r in %.2f s", ds, time.perf_counter() - start)
    return ds


def _check_folder(folder: Path | None, what: str) -> None:
    if folder is not None and not folder.is_dir():
        state = "is not a folder" if folder.exists() else "does not exist"
        raise ConfigError(f"the data folder {str(folder)!r} given by {what} {state}; fix the path, or leave it "
                          f"unset to use the system folder, the download cache or a download")


# ---------------------------------------------------------------------------------------------------------
# Normalisation and tensor helpers


def _pixel_stats(x: np.ndarray) -> tuple[float, float]:
    """Exact mean and (population) std of a uint8 array from its 256-bin histogram: ~10x faster than a
    float64 pass over Fashion-MNIST's 47M pixels. (torch.bincount: numpy's casts to int64 first.)"""
    counts = torch.bincount(torch.from_numpy(x.reshape(-1).copy()), minlength=256).double()  # (256,)
    values = torch.arange(256, dtype=torch.float64)
    mean = (counts @ values) / counts.sum()
    var = (counts @ (values - mean) ** 2) / counts.sum()
    return float(mean), float(var.sqrt())


def _standardise_pixels(x: np.ndarray, mean: float, std: float) -> torch.Tensor:
    # Scaling pixels to [0, 1] first and then standardising with the [0, 1] statistics gives exactly
    # (x - mean) / std in raw units, so the /255 (or /16) step is folded away.
    out = torch.from_numpy(x.astype(np.float32))  # a fresh, writable, contiguous copy
    return out.sub_(mean).div_(max(std, 1e-12))


@dataclass(frozen=True)
class PixelScale:
    """Raw pixels of an image dataset: 0 (background) to ``ink`` (full ink: 16 for digits, 255 for MNIST), and the
    training split's mean and std that standardise them."""

    ink: float
    mean: float
    std: float

    def standardise(self, raw: np.ndarray) -> torch.Tensor:
        return _standardise_pixels(np.asarray(raw, dtype=np.float32), self.mean, self.std)


def image_dataset(
    name: str, classes: Sequence[str], x_train: np.ndarray, y_train: np.ndarray,
    x_test: np.ndarray, y_test: np.ndarray, ink: float = 255.0,
) -> Dataset:
    """uint8 images (N, H, W) or (N, C, H, W) and integer labels -> a normalised Dataset; the statistics
    come from the training split only, so the test split never leaks into preprocessing."""
    if x_train.ndim == 3:  # (N, H, W) -> (N, 1, H, W): one grey channel
        x_train, x_test = x_train[:, None], x_test[:, None]
    mean, std = _pixel_stats(x_train)
    return Dataset(
        name=name,
        x_train=_standardise_pixels(x_train, mean, std),
        y_train=as_labels(y_train, len(classes), name),
        x_test=_standardise_pixels(x_test, mean, std),
        y_test=as_labels(y_test, len(classes), name),
        classes=tuple(classes),
        input_shape=tuple(x_train.shape[1:]),
        pixels=PixelScale(ink, mean, std),
    )


def as_labels(y: np.ndarray, num_classes: int, name: str) -> torch.Tensor:
    y = torch.from_numpy(np.asarray(y, dtype=np.int64).copy())  # (N,) int64
    if len(y) and not (0 <= int(y.min()) and int(y.max()) < num_classes):
        raise DataUnavailableError(f"{name}: labels outside 0..{num_classes - 1}; are the files corrupt?")
    return y

