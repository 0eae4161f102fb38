"""Tests for kdlab.base.registry, and that every registry of the package is wired to it."""
from __future__ import annotations

import pytest

from kdlab.base.errors import ConfigError
from kdlab.base.registry import Registry


pytestmark = pytest.mark.usefixtures("kdlab_cache", "torch_one_thread")


def test_register_get_names_contains():
    reg: Registry[int] = Registry("widget")

    @reg.register("b")
    def b():
        return 2

    reg.register("a")(lambda: 1)
    assert reg.get("b") is b  # the decorator returns the object unchanged
    assert reg.get("a")() == 1
    assert reg.names() == ["b", "a"]  # registration order: dropdowns show them as written
    assert "a" in reg and "c" not in reg and 3 not in reg


def test_unknown_name_lists_the_valid_ones():
    reg: Registry[int] = Registry("loss")
    for name in ("hinton", "dkd"):
        reg.register(name)(0)
    with pytest.raises(ConfigError) as exc:
        reg.get("hintn")
    message = str(exc.value)
    assert "unknown loss 'hintn'" in message
    assert "hinton" in message and "dkd" in message
    assert exc.value.__cause__ is None and exc.value.__suppress_context__  # no chained KeyError in tracebacks


def test_unknown_name_on_an_empty_registry():
    with pytest.raises(ConfigError, match="unknown thing 'x'"):
        Registry("thing").get("x")


def test_duplicate_registration_is_refused_and_keeps_the_first():
    reg: Registry[str] = Registry("dataset")
    reg.register("digits")("first")
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("digits")("second")
    assert reg.get("digits") == "first"
    assert reg.names() == ["digits"]


def test_names_is_a_copy():
    reg: Registry[int] = Registry("x")
    reg.register("a")(1)
    reg.names().append("b")
    assert reg.names() == ["a"]


@pytest.mark.parametrize("module, attr, some_name", [
    ("kdlab.data.dataset", "DATASETS", "digits"),
    ("kdlab.training.losses", "LOSSES", "hinton"),
    ("kdlab.training.models", "ARCHITECTURES", "mlp"),
])
def test_package_registries(module, attr, some_name):
    import importlib

    reg = getattr(importlib.import_module(module), attr)
    assert isinstance(reg, Registry)
    assert some_name in reg.names()
    with pytest.raises(ConfigError) as exc:
        reg.get("no-such-name")
    assert some_name in str(exc.value)
