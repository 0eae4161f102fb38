"""Folders of files that appear all at once or not at all, vouched for by a JSON manifest.

Used by the teacher cache and the run store: the files are written and fsynced into a hidden temporary
folder, the manifest (holding each file's size and SHA-256) last, then the folder is renamed into place.
A process killed mid-write leaves only a hidden ``.tmp-*`` folder, which readers never look at and
``sweep_temporary`` removes once it is old enough to belong to no live writer.

Reading never trusts the folder's contents: a file is read only if ``lstat`` says it is a regular file of the
expected size, and it is opened with O_NOFOLLOW | O_NONBLOCK, so a planted symlink (to /dev/zero, to a file
outside the store) is refused rather than followed and a planted FIFO cannot block the reader.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import time
import uuid
from pathlib import Path
from typing import Any

TMP_PREFIX = ".tmp-"
# A writer creates its temporary folder after the work is done and renames it seconds later (fsync of at most a
# few hundred MB); one that old has lost its writer. Short enough that a killed writer's bytes go the same day.
STALE_TMP_SECONDS = 600


def write_folder(parent: Path, name: str, blobs: dict[str, bytes], manifest_name: str,
                 manifest: dict[str, Any], replace: bool = False) -> Path:
    """Atomically create ``parent/name`` holding ``blobs`` and ``manifest_name`` (``manifest`` plus a
    "files" checksum table). With ``replace``, an existing folder of that name is swapped out."""
    manifest = {**manifest, "files": {n: {"size": len(b), "sha256": hashlib.sha256(b).hexdigest()}
                                      for n, b in blobs.items()}}
    parent.mkdir(parents=True, exist_ok=True)
    tmp = parent / f"{TMP_PREFIX}{name}-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        for file_name, blob in blobs.items():
            write_synced(tmp / file_name, blob)
        write_synced(tmp / manifest_name, json.dumps(manifest, indent=1).encode())  # last: it vouches for the rest
        final = parent / name
        if replace and os.path.lexists(final):  # rename() won't replace a folder: move the old one aside first
            trash = parent / f"{TMP_PREFIX}trash-{uuid.uuid4().hex}"
            final.rename(trash)  # renames a planted symlink itself, never its target
            remove_tree(trash)
        tmp.rename(final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return parent / name


def verified_bytes(path: Path, expected: dict[str, Any]) -> bytes:
    """The file's bytes if it is a regular file matching the manifest's size and SHA-256; ValueError otherwise."""
    if not isinstance(expected, dict):
        raise ValueError(f"the manifest's entry for {path.name} is not an object")
    size = expected.get("size")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ValueError(f"the manifest gives {path.name} the size {size!r}")
    blob = read_regular(path, size)
    if len(blob) != size:
        raise ValueError(f"{path.name} has {len(blob)} bytes, expected {size} (truncated?)")
    if hashlib.sha256(blob).hexdigest() != expected.get("sha256"):
        raise ValueError(f"{path.name} does not match its SHA-256 checksum (corrupt or tampered)")
    return blob


def read_regular(path: Path, max_bytes: int) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``max_bytes``; ValueError for anything else
    (symlink, FIFO, device, folder, too big), OSError if it cannot be opened. Type and size are checked
    before a byte is read."""
    info = os.lstat(path)
    _check_regular(path, info, max_bytes)
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)  # the file opened may not be the one lstat saw (swapped in between)
        _check_regular(path, info, max_bytes)
        chunks, left = [], info.st_size + 1  # one byte more: a file growing while we read is refused below
        while left > 0 and (chunk := os.read(fd, min(left, 1 << 24))):
            chunks.append(chunk)
            left -= len(chunk)
    finally:
        os.close(fd)
    blob = b"".join(chunks)
    if len(blob) > max_bytes:
        raise ValueError(f"{path.name} grew to more than {max_bytes} bytes while it was read")
    return blob


def _check_regular(path: Path, info: os.stat_result, max_bytes: int) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"{path.name} is {file_kind(info.st_mode)}, not a regular file; it was not read")
    if info.st_size > max_bytes:
        raise ValueError(f"{path.name} has {info.st_size} bytes, expected at most {max_bytes}")


def file_kind(mode: int) -> str:
    kinds = ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISDIR, "a folder"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def folder_bytes(folder: Path) -> int:
    """Bytes of the regular files directly in ``folder`` (lstat: a symlink counts as nothing, not its target)."""
    total = 0
    try:
        with os.scandir(folder) as it:
            for item in it:
                info = item.stat(follow_symlinks=False)
                total += info.st_size if stat.S_ISREG(info.st_mode) else 0
    except OSError:
        pass
    return total


def remove_tree(path: Path) -> str:
    """Delete a folder, file or symlink (a symlink itself, never what it points to); "" once it is gone, else
    why not."""
    errors: list[str] = []
    try:
        if os.path.islink(path) or not os.path.isdir(path):
            os.unlink(path)
        else:
            shutil.rmtree(path, onerror=lambda fn, p, exc: errors.append(f"{type(exc[1]).__name__}: {exc[1]}"))
    except FileNotFoundError:
        pass
    except OSError as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
    if not os.path.lexists(path):
        return ""
    return errors[0] if errors else "it is still there"


def sweep_temporary(parent: Path, older_than: float = STALE_TMP_SECONDS) -> list[str]:
    """Remove the ``.tmp-*`` folders in ``parent`` older than ``older_than`` seconds (killed writers', or
    trash a writer could not delete); returns their names. A younger one may belong to a live writer."""
    swept = []
    try:
        with os.scandir(parent) as it:
            candidates = [item for item in it if item.name.startswith(TMP_PREFIX)]
    except OSError:
        return swept
    now = time.time()
    for item in candidates:
        try:
            age = now - item.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        if age > older_than and not remove_tree(Path(item.path)):
            swept.append(item.name)
    return swept


def write_synced(path: Path, blob: bytes) -> None:
    with open(path, "wb") as f:
        f.write(blob)
        f.flush()
        os.fsync(f.fileno())
