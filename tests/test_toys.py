"""kdlab.data.toys: the 2-D sets, their parameterised names (n, noise, seed) and the canonical spelling."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from kdlab.base.config import TeacherConfig
from kdlab.base.errors import ConfigError
from kdlab.data import load_dataset
from kdlab.data.dataset import canonical_dataset_name, parse_dataset_name
from kdlab.data.toys import TOYS, toy_name
from kdlab.stores.teacher_cache import teacher_key

# SHA-256 (first 16 hex digits) of x_train, y_train, x_test, y_test as the plain names drew them before names
# took parameters. Cached teachers are keyed by the name, not the data: a change here would pair old teachers
# with new data without any error.
PLAIN_DATA = {"moons": "60bb9d0d7d922778", "circles": "2bb12e5fd8669e7c", "spirals": "65a11c2d53970b38"}


def digest(ds) -> str:
    h = hashlib.sha256()
    for t in (ds.x_train, ds.y_train, ds.x_test, ds.y_test):
        h.update(t.numpy().tobytes())
    return h.hexdigest()[:16]


@pytest.mark.parametrize("name", sorted(PLAIN_DATA))
def test_plain_names_keep_their_data(name):
    ds = load_dataset(name)
    assert digest(ds) == PLAIN_DATA[name] and ds.name == name
    spelled_out = load_dataset(f"{name}:seed=0:noise={TOYS[name].noise}:n=2000")  # every default, any order
    assert spelled_out.name == name and digest(spelled_out) == PLAIN_DATA[name]


@pytest.mark.parametrize("name,classes", [("xor", 2), ("blobs", 3)])
def test_new_toy_sets(name, classes):
    ds = load_dataset(name)
    assert ds.x_train.shape == (2000, 2) and ds.x_test.shape == (1000, 2) and ds.num_classes == classes
    assert torch.allclose(ds.x_train.mean(0), torch.zeros(2), atol=1e-4)
    assert torch.bincount(ds.y_train).min() > 2000 / classes * 0.9  # balanced enough to draw every class
    assert digest(load_dataset(name)) == digest(ds)  # deterministic


def test_xor_and_blobs_geometry_without_noise():
    x, y = TOYS["xor"].make(500, 3, 0.0)
    assert np.array_equal(y, (x[:, 0] * x[:, 1] > 0).astype(int)) and np.abs(x).min() >= 0.1 - 1e-12
    x, y = TOYS["blobs"].make(300, 3, 0.0)
    assert len({tuple(np.round(p, 6)) for p in x}) == 3  # three centres
    assert np.allclose(np.linalg.norm(x, axis=1), 1.0)  # on the unit circle


@pytest.mark.parametrize("raw,canonical", [
    ("spirals", "spirals"),
    ("spirals:noise=0.2", "spirals"),  # the default is left out
    ("spirals:seed=2:noise=0.30", "spirals:noise=0.3:seed=2"),  # canonical order n, noise, seed
    (" moons : n = 3000 ", "moons:n=3000"),
    ("blobs:noise=0.12345", "blobs:noise=0.123"),  # rounded to 3 decimals: one name per drawn set
    ("xor:noise=0", "xor:noise=0"),
    ("digits", "digits"),
])
def test_canonical_names(raw, canonical):
    assert canonical_dataset_name(raw) == canonical
    if raw != "digits":  # a toy's Dataset carries the canonical name
        assert load_dataset(raw).name == canonical


def test_parameters_change_the_data_and_the_teacher_key():
    base = load_dataset("spirals")
    noisy, other_seed, bigger = (load_dataset(n) for n in ("spirals:noise=0.5", "spirals:seed=1", "spirals:n=3000"))
    assert not torch.equal(noisy.x_train, base.x_train) and torch.equal(noisy.y_train, base.y_train)
    assert not torch.equal(other_seed.x_train, base.x_train)
    assert not torch.equal(other_seed.x_train[:1000], base.x_test)  # seed s draws 2s and 2s+1: no overlap with s-1
    assert bigger.x_train.shape == (3000, 2) and bigger.x_test.shape == (1000, 2)
    keys = {teacher_key(TeacherConfig(dataset=n, arch="mlp:64-64"))
            for n in ("spirals", "spirals:noise=0.5", "spirals:seed=1", "spirals:n=3000")}
    assert len(keys) == 4
    same = {teacher_key(TeacherConfig(dataset=canonical_dataset_name(n), arch="mlp:64-64"))
            for n in ("spirals:seed=1:noise=0.5", "spirals:noise=0.500:seed=1")}
    assert len(same) == 1


def test_toy_name_builds_the_canonical_name():
    assert toy_name("spirals") == "spirals"
    assert toy_name("spirals", n=2000, noise=0.2, seed=0) == "spirals"
    assert toy_name("moons", noise=np.float64(0.35), seed=4) == "moons:noise=0.35:seed=4"
    with pytest.raises(ConfigError, match="2-D dataset"):
        toy_name("digits")


def test_parse_returns_typed_values():
    assert parse_dataset_name("circles:seed=7:noise=0.25:n=500") == ("circles", {"n": 500, "noise": 0.25, "seed": 7})


@pytest.mark.parametrize("name,message", [
    ("spirals:foo=1", "takes the parameters n, noise and seed"),
    ("spirals:noise=x", "noise must be a number in [0, 1]"),
    ("spirals:noise=1.5", "noise must be a number in [0, 1]"),
    ("spirals:noise=nan", "noise must be a number"),
    ("spirals:n=1.5", "n must be a whole number in [100, 20000]"),
    ("spirals:n=50", "n must be a whole number"),
    ("spirals:seed=-1", "seed must be a whole number"),
    ("spirals:seed", "malformed dataset name"),
    ("spirals:seed=1:seed=2", "malformed dataset name"),
    ("spirals:", "malformed dataset name"),
    ("digits:seed=1", "takes no parameters"),
    ("cifar:seed=1", "unknown dataset 'cifar'"),
])
def test_bad_names_are_config_errors(name, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_dataset(name)
