"""IDX files, the MNIST format (http://yann.lecun.com/exdb/mnist/, "FILE FORMATS"): gzipped or plain."""
from __future__ import annotations

import functools
import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from kdlab.base.errors import DataUnavailableError


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


