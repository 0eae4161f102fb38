"""Datasets as in-memory tensors: a registry of loaders, a small IDX reader, and the sources MNIST-style
files come from (local folder -> system folder -> download cache -> download).

Everything a loader returns is already normalised and held in memory as one tensor per split: the engine
slices shuffled index batches from it, which is ~8x faster on a small CPU than a per-item DataLoader
(DESIGN.md section 3).
"""
from __future__ import annotations

import functools
import gzip
import logging
import math
import os
import re
import struct
import time
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from kdlab.errors import ConfigError, DataUnavailableError
from kdlab.registry import Registry

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

Loader = Callable[[Path | None, bool], Dataset]  # (data_dir, download) -> Dataset
DATASETS: Registry[Loader] = Registry("dataset")


def dataset_names() -> list[str]:
    return DATASETS.names()


def load_dataset(name: str, data_dir: str | os.PathLike | None = None, *, download: bool = True) -> Dataset:
    """Load a registered dataset. `data_dir` (else env KDLAB_DATA_DIR) is searched first for file-based
    sets; `download=False` forbids the network. Raises ConfigError for an unknown name and
    DataUnavailableError when the files can be neither found nor downloaded."""
    loader = DATASETS.get(name)
    folder = Path(data_dir).expanduser() if data_dir else None
    start = time.perf_counter()
    ds = loader(folder, download)
    log.info("loaded %r in %.2f s", ds, time.perf_counter() - start)
    return ds


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


def _image_dataset(
    name: str, classes: Sequence[str], x_train: np.ndarray, y_train: np.ndarray,
    x_test: np.ndarray, y_test: np.ndarray,
) -> Dataset:
    """uint8 images (N, H, W) or (N, C, H, W) and integer labels -> a normalised Dataset; the statistics
    come from the training split only, so the test split never leaks into preprocessing."""
    if x_train.ndim == 3:  # (N, H, W) -> (N, 1, H, W): one grey channel
        x_train, x_test = x_train[:, None], x_test[:, None]
    mean, std = _pixel_stats(x_train)
    return Dataset(
        name=name,
        x_train=_standardise_pixels(x_train, mean, std),
        y_train=_labels(y_train, len(classes), name),
        x_test=_standardise_pixels(x_test, mean, std),
        y_test=_labels(y_test, len(classes), name),
        classes=tuple(classes),
        input_shape=tuple(x_train.shape[1:]),
    )


def _labels(y: np.ndarray, num_classes: int, name: str) -> torch.Tensor:
    y = torch.from_numpy(np.asarray(y, dtype=np.int64).copy())  # (N,) int64
    if len(y) and not (0 <= int(y.min()) and int(y.max()) < num_classes):
        raise DataUnavailableError(f"{name}: labels outside 0..{num_classes - 1}; are the files corrupt?")
    return y


# ---------------------------------------------------------------------------------------------------------
# digits (scikit-learn, offline)

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
    return _image_dataset("digits", DIGIT_CLASSES, x_tr, y_tr, x_te, y_te)


# ---------------------------------------------------------------------------------------------------------
# IDX files (the MNIST format: http://yann.lecun.com/exdb/mnist/, "FILE FORMATS")

_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read a gzipped or plain IDX file into a read-only array (shape from its header). Parsed arrays are
    cached per (resolved path, mtime, size), so reloading a dataset in one process costs no I/O."""
    path = Path(path).resolve()
    try:
        st = path.stat()
    except OSError as e:
        raise DataUnavailableError(f"cannot read IDX file {path}: {e.strerror or e}") from None
    return _read_idx_cached(str(path), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=16)  # 4 files x the file-based datasets, with room for a few test files
def _read_idx_cached(path: str, mtime_ns: int, size: int) -> np.ndarray:
    try:
        raw = Path(path).read_bytes()
        if raw[:2] == b"\x1f\x8b":  # the gzip magic: decide by content, not by file name
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError; a cut-off gzip is EOFError
        raise DataUnavailableError(f"cannot read IDX file {path}: {e}") from None
    return _parse_idx(raw, path)


def _parse_idx(raw: bytes, path: str) -> np.ndarray:
    """Header: two zero bytes, a type byte, a dims byte, then one big-endian uint32 per dimension."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataUnavailableError(
            f"{path} is not an IDX file (bad magic number 0x{raw[:4].hex()}); is it corrupt or misnamed?"
        )
    ndim, dtype = raw[3], np.dtype(_IDX_DTYPES[raw[2]])
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataUnavailableError(f"IDX file {path} is truncated inside its header")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    count = math.prod(dims)
    if len(raw) != header + count * dtype.itemsize:
        raise DataUnavailableError(
            f"IDX file {path} has {len(raw) - header} data bytes, its header {dims} needs "
            f"{count * dtype.itemsize}; is it truncated?"
        )
    arr = np.frombuffer(raw, dtype=dtype, count=count, offset=header)  # zero-copy for bytes
    arr = arr.astype(dtype.newbyteorder("="), copy=False).reshape(dims)  # native order: a no-op for bytes
    arr.flags.writeable = False  # the array is shared through the cache: nobody may change it
    return arr


# ---------------------------------------------------------------------------------------------------------
# Where MNIST-style files come from. Module-level so tests (and users) can point them elsewhere.

IDX_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
SYSTEM_DATA_ROOT = Path("/usr/share/datasets")  # where Debian's dataset-* packages put their files
APT_PACKAGES = {"fashion-mnist": "dataset-fashion-mnist"}  # Debian ships no MNIST package
MIRRORS = {  # overridable per dataset by env KDLAB_<NAME>_MIRROR, e.g. KDLAB_FASHION_MNIST_MIRROR
    "mnist": "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "fashion-mnist": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
}
SHA256 = {
    # MNIST: the sums TensorFlow Datasets and others pin for the original archives (not downloaded here).
    "mnist": {
        "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
    # Fashion-MNIST: computed from Debian's dataset-fashion-mnist, byte-identical to the upstream mirror.
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
        "train-labels-idx1-ubyte.gz": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
        "t10k-images-idx3-ubyte.gz": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
        "t10k-labels-idx1-ubyte.gz": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
    },
}
DOWNLOAD_TIMEOUT = (5.0, 30.0)  # (connect, read) seconds: offline fails fast, a slow link still works


def cache_dir(name: str) -> Path:
    """The download cache of one dataset: <KDLAB_CACHE_DIR or ~/.cache/kdlab>/data/<name>/."""
    root = os.environ.get("KDLAB_CACHE_DIR") or Path.home() / ".cache" / "kdlab"
    return Path(root).expanduser() / "data" / name


def mirror_url(name: str) -> str:
    env = f"KDLAB_{name.upper().replace('-', '_')}_MIRROR"
    return os.environ.get(env) or MIRRORS[name]


def local_folders(name: str, data_dir: Path | None) -> list[Path]:
    """Where to look, in order (a pure decision, kept apart from the I/O): the user's folder (argument,
    else env KDLAB_DATA_DIR) directly and its <name> subfolder, the system folder, the download cache."""
    env = os.environ.get("KDLAB_DATA_DIR")
    user = data_dir or (Path(env).expanduser() if env else None)
    folders = [user, user / name] if user else []
    return folders + [SYSTEM_DATA_ROOT / name, cache_dir(name)]


def _find_in(folder: Path) -> list[Path] | None:
    """The four files in `folder` (each gzipped or already unpacked), or None if any is missing."""
    found = []
    for fname in IDX_FILES:
        options = [folder / fname, folder / fname.removesuffix(".gz")]
        match = next((p for p in options if p.is_file()), None)
        if match is None:
            return None
        found.append(match)
    return found


def idx_paths(name: str, data_dir: Path | None = None, download: bool = True) -> list[Path]:
    """Paths of the four IDX files of `name` (in IDX_FILES order), downloading them if allowed."""
    folders = local_folders(name, data_dir)
    for folder in folders:
        if (found := _find_in(folder)) is not None:
            log.info("%s: using the files in %s", name, folder)
            return found
    if not download:
        raise _unavailable(name, folders, "not found locally and download=False")
    try:
        return _download(name)
    except (OSError, ValueError) as e:  # requests' errors are OSErrors; pooch's hash mismatch a ValueError
        raise _unavailable(name, folders, _short_cause(e, mirror_url(name))) from None


def _download(name: str) -> list[Path]:
    import pooch  # lazy: only the download path needs it (and its requests import is slow)

    pooch.get_logger().setLevel(logging.WARNING)  # its "Downloading data from" lines would break one-line errors
    target, base = cache_dir(name), mirror_url(name).rstrip("/")
    downloader = pooch.HTTPDownloader(timeout=DOWNLOAD_TIMEOUT, progressbar=False)
    paths = []
    for fname in IDX_FILES:
        log.info("%s: downloading %s/%s into %s", name, base, fname, target)
        # pooch streams into a temporary file beside the target and moves it in only if the SHA-256
        # matches, so a failed or tampered download never leaves a file in the cache.
        paths.append(Path(pooch.retrieve(
            f"{base}/{fname}", known_hash=f"sha256:{SHA256[name][fname]}", fname=fname, path=target,
            downloader=downloader, progressbar=False,
        )))
    return paths


def _short_cause(e: Exception, mirror: str) -> str:
    """One clause instead of requests' nested repr: '... (Caused by NewConnectionError(...[Errno 111] ...'."""
    text = str(e).strip() or type(e).__name__
    if isinstance(e, ValueError) and "hash" in text.lower():
        return f"download from {mirror} rejected, hash mismatch: {text.splitlines()[0]}"
    errno = re.search(r"\[Errno -?\d+\] ([^'\"()\]]+)", text)  # e.g. "Connection refused"
    reason = errno.group(1).strip() if errno else text.splitlines()[0][:200]
    return f"download from {mirror} failed: {type(e).__name__}: {reason}"


def _unavailable(name: str, folders: Sequence[Path], cause: str) -> DataUnavailableError:
    """One user-facing line: what is missing, why, and the three ways to provide the files."""
    apt = APT_PACKAGES.get(name)
    system = SYSTEM_DATA_ROOT / name
    way2 = f"`apt-get install {apt}` (puts them in {system}/)" if apt else f"copy them into {system}/"
    return DataUnavailableError(
        f"dataset {name!r} is not available ({cause}); searched {', '.join(map(str, folders))}. "
        f"Provide the four files ({', '.join(IDX_FILES)}) in one of three ways: "
        f"(1) set KDLAB_DATA_DIR or --data-dir to a folder holding them (or a '{name}' subfolder of it); "
        f"(2) {way2}; (3) go online so kdlab can download them into {cache_dir(name)}/."
    )


def _idx_dataset(name: str, classes: Sequence[str], data_dir: Path | None, download: bool) -> Dataset:
    x_tr, y_tr, x_te, y_te = (read_idx(p) for p in idx_paths(name, data_dir, download))
    if len(x_tr) != len(y_tr) or len(x_te) != len(y_te):
        raise DataUnavailableError(f"{name}: image and label files disagree on the number of examples")
    return _image_dataset(name, classes, x_tr, y_tr, x_te, y_te)


FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)


@DATASETS.register("mnist")
def _load_mnist(data_dir: Path | None = None, download: bool = True) -> Dataset:
    return _idx_dataset("mnist", DIGIT_CLASSES, data_dir, download)


@DATASETS.register("fashion-mnist")
def _load_fashion_mnist(data_dir: Path | None = None, download: bool = True) -> Dataset:
    return _idx_dataset("fashion-mnist", FASHION_CLASSES, data_dir, download)


# ---------------------------------------------------------------------------------------------------------
# Toy 2-D sets: small enough to draw every point and its decision boundary

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
        name=name, x_train=as_tensor(x_tr), y_train=_labels(y_tr, len(classes), name),
        x_test=as_tensor(x_te), y_test=_labels(y_te, len(classes), name),
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
