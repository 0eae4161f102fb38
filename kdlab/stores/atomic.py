"""Folders of files that appear all at once or not at all, vouched for by a JSON manifest.

Used by the teacher cache and the run store: the files are written and fsynced into a hidden temporary
folder, the manifest (holding each file's size and SHA-256) last, then the folder is renamed into place.
A process killed mid-write leaves only a hidden ``.tmp-*`` folder, which readers never look at.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any


def write_folder(parent: Path, name: str, blobs: dict[str, bytes], manifest_name: str,
                 manifest: dict[str, Any], replace: bool = False) -> Path:
    """Atomically create ``parent/name`` holding ``blobs`` and ``manifest_name`` (``manifest`` plus a
    "files" checksum table). With ``replace``, an existing folder of that name is swapped out."""
    manifest = {**manifest, "files": {n: {"size": len(b), "sha256": hashlib.sha256(b).hexdigest()}
                                      for n, b in blobs.items()}}
    parent.mkdir(parents=True, exist_ok=True)
    tmp = parent / f".tmp-{name}-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        for file_name, blob in blobs.items():
            write_synced(tmp / file_name, blob)
        write_synced(tmp / manifest_name, json.dumps(manifest, indent=1).encode())  # last: it vouches for the rest
        final = parent / name
        if replace and final.exists():  # rename() won't replace a folder: move the old one aside first
            trash = parent / f".tmp-trash-{uuid.uuid4().hex}"
            final.rename(trash)
            shutil.rmtree(trash, ignore_errors=True)
        tmp.rename(final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return parent / name


def verified_bytes(path: Path, expected: dict[str, Any]) -> bytes:
    """The file's bytes if they match the manifest's size and SHA-256; ValueError otherwise."""
    blob = path.read_bytes()
    if len(blob) != expected["size"]:
        raise ValueError(f"{path.name} has {len(blob)} bytes, expected {expected['size']} (truncated?)")
    if hashlib.sha256(blob).hexdigest() != expected["sha256"]:
        raise ValueError(f"{path.name} does not match its SHA-256 checksum (corrupt or tampered)")
    return blob


def write_synced(path: Path, blob: bytes) -> None:
    with open(path, "wb") as f:
        f.write(blob)
        f.flush()
        os.fsync(f.fileno())
