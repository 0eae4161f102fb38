"""Where MNIST-style files come from, in order: the user's folder, the system folder (Debian's dataset-*
packages), the download cache, then a SHA-256-pinned download. Module-level tables, so tests (and users)
can point them elsewhere."""
from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Sequence

from kdlab.base.errors import DataUnavailableError

log = logging.getLogger(__name__)


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


