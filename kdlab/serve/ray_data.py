"""How kdlab's big or stateful objects travel to Ray workers: a Dataset as a reference into Ray's object store
(put there once per dataset object), a RunStore as its folder.

Registered as Ray serializers on the driver (``register_serializers``, called once connected), so every task,
and every app job's closure, that carries a Dataset ships ~100 bytes, and every worker on a node maps the same
shared-memory copy of the tensors. A worker keeps the few datasets it rebuilt, by reference, so its next task
on the same data builds nothing.
"""
from __future__ import annotations

import dataclasses
import threading
import warnings
import weakref
from collections import OrderedDict
from typing import Any

from kdlab.data import Dataset
from kdlab.stores.run_store import RunStore

TENSORS = ("x_train", "y_train", "x_test", "y_test")
LOCAL_CAPACITY = 4  # datasets a worker keeps (a class switching between a few datasets)

_SHARED: "weakref.WeakKeyDictionary[Dataset, Any]" = weakref.WeakKeyDictionary()  # driver: dataset -> its ref
_LOCAL: OrderedDict[str, Dataset] = OrderedDict()  # a worker: ref id -> the Dataset built from it
_lock = threading.Lock()


def register_serializers() -> None:
    from ray.util import register_serializer

    register_serializer(Dataset, serializer=_dataset_ref, deserializer=_dataset_from_ref)
    # a RunStore holds a lock and a cache of parsed records: it travels as its folder and size limits
    register_serializer(RunStore, serializer=lambda s: (str(s.root), s.max_runs, s.max_bytes),
                        deserializer=_run_store_from)


def shared() -> list[Dataset]:
    """The datasets this driver has put into the object store (and holds there)."""
    with _lock:
        return list(_SHARED.keys())


def forget() -> None:
    """Drop every reference (the cluster that held the objects is shutting down)."""
    with _lock:
        _SHARED.clear()
        _LOCAL.clear()


def _dataset_ref(data: Dataset):
    """The object-store reference of ``data``, putting it there on first use (once per dataset object)."""
    import ray

    with _lock:
        ref = _SHARED.get(data)
        if ref is None:
            fields = {f.name: getattr(data, f.name) for f in dataclasses.fields(data)}
            for name in TENSORS:
                fields[name] = fields[name].numpy()  # numpy: read zero-copy from shared memory by workers
            ref = ray.put(fields)
            _SHARED[data] = ref  # released (and freed in the store) when the dataset object goes
        return ref


def _dataset_from_ref(ref) -> Dataset:
    import ray
    import torch

    key = ref.hex()
    with _lock:
        if key in _LOCAL:
            _LOCAL.move_to_end(key)
            return _LOCAL[key]
    fields = dict(ray.get(ref))
    with warnings.catch_warnings():  # the arrays are read-only views of shared memory; kdlab never writes them
        warnings.simplefilter("ignore", UserWarning)
        for name in TENSORS:
            fields[name] = torch.from_numpy(fields[name])
    data = Dataset(**fields)
    with _lock:
        _LOCAL[key] = data
        while len(_LOCAL) > LOCAL_CAPACITY:
            _LOCAL.popitem(last=False)
    return data


def _run_store_from(state: tuple[str, int, int]) -> RunStore:
    return RunStore(*state)
