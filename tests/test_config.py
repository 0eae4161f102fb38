"""Tests for kdlab.base.config: numeric validation, choices, and the dict round trip a URL/JSON config relies on."""
from __future__ import annotations

import json
import math

import pytest

from kdlab.base.config import (
    DistillConfig,
    TeacherConfig,
    TrainConfig,
    distill_from_dict,
    teacher_from_dict,
    to_dict,
)
from kdlab.base.errors import ConfigError, KdlabError


pytestmark = pytest.mark.usefixtures("kdlab_cache", "torch_one_thread")


def test_defaults_are_valid():
    TrainConfig().validate()
    TeacherConfig().validate()
    DistillConfig().validate()


def test_config_error_is_a_kdlab_error_and_a_value_error():
    with pytest.raises(ConfigError) as exc:
        DistillConfig(temperature=0).validate()
    assert isinstance(exc.value, KdlabError) and isinstance(exc.value, ValueError)


@pytest.mark.parametrize("temperature", [0, 0.0, -1.0, float("nan"), float("inf"), -float("inf")])
def test_temperature_must_be_finite_and_positive(temperature):
    with pytest.raises(ConfigError, match="temperature"):
        DistillConfig(temperature=temperature).validate()


@pytest.mark.parametrize("temperature", [1e-3, 1.0, 4, 20.0])
def test_valid_temperatures(temperature):
    DistillConfig(temperature=temperature).validate()


@pytest.mark.parametrize("alpha", [-0.01, 1.0001, 1.5, float("nan"), float("inf")])
def test_alpha_outside_unit_interval(alpha):
    with pytest.raises(ConfigError, match="alpha"):
        DistillConfig(alpha=alpha).validate()


@pytest.mark.parametrize("alpha", [0, 0.0, 0.5, 1, 1.0])
def test_alpha_bounds_are_inclusive(alpha):
    DistillConfig(alpha=alpha).validate()


@pytest.mark.parametrize("value", ["4", None, [4.0]])
def test_non_numeric_temperature_and_alpha_are_config_errors(value):
    """A config read from a URL or JSON may carry strings: a ConfigError, never a TypeError."""
    with pytest.raises(ConfigError, match="temperature"):
        DistillConfig(temperature=value).validate()
    with pytest.raises(ConfigError, match="alpha"):
        DistillConfig(alpha=value).validate()


@pytest.mark.parametrize("epochs", [0, -1, 10_001, 2.5, "3", True])
def test_epochs(epochs):
    with pytest.raises(ConfigError, match="epochs"):
        TrainConfig(epochs=epochs).validate()


@pytest.mark.parametrize("field, value", [
    ("batch_size", 0), ("lr", 0.0), ("lr", -1e-3), ("lr", float("nan")), ("lr", 11.0),
    ("momentum", 1.0), ("momentum", -0.1), ("weight_decay", -1e-4), ("max_seconds", 0.0),
    ("max_seconds", float("inf")), ("seed", -1), ("seed", 2**31), ("seed", 1.0),
])
def test_numeric_train_fields(field, value):
    with pytest.raises(ConfigError, match=field):
        TrainConfig(**{field: value}).validate()


@pytest.mark.parametrize("field, value", [("optimizer", "rmsprop"), ("optimizer", "Adam"),
                                          ("schedule", "linear"), ("schedule", "")])
def test_bad_choices_list_the_valid_ones(field, value):
    with pytest.raises(ConfigError) as exc:
        TrainConfig(**{field: value}).validate()
    message = str(exc.value)
    assert repr(value) in message
    choices = ("adam", "sgd") if field == "optimizer" else ("constant", "cosine", "step")
    assert all(c in message for c in choices)


@pytest.mark.parametrize("device", ["gpu", "CPU", "cuda:", "cuda:x", "cuda0", "", None, 0])
def test_bad_device(device):
    with pytest.raises(ConfigError, match="device"):
        TrainConfig(device=device).validate()


@pytest.mark.parametrize("device", ["cpu", "cuda", "cuda:0", "cuda:12"])
def test_valid_device_strings(device):
    TrainConfig(device=device).validate()  # availability is the engine's business, not the config's


def test_nested_train_configs_are_validated():
    with pytest.raises(ConfigError, match="epochs"):
        DistillConfig(train=TrainConfig(epochs=0)).validate()
    with pytest.raises(ConfigError, match="epochs"):
        DistillConfig(teacher_train=TrainConfig(epochs=0)).validate()
    with pytest.raises(ConfigError, match="optimizer"):
        TeacherConfig(train=TrainConfig(optimizer="lbfgs")).validate()


@pytest.mark.parametrize("changes", [{"transfer_size": 0}, {"transfer_size": -5}, {"omit_classes": (-1,)},
                                     {"omit_classes": (1.5,)}])
def test_transfer_set_fields(changes):
    with pytest.raises(ConfigError):
        DistillConfig(**changes).validate()


def _rich_config() -> DistillConfig:
    return DistillConfig(
        dataset="mnist", teacher="mlp:1200-1200:dropout=0.2", student="mlp:30", loss="source", temperature=2.5,
        alpha=0.25, loss_params={"lam": 0.3},
        train=TrainConfig(epochs=3, batch_size=64, lr=0.05, optimizer="sgd", momentum=0.8, weight_decay=1e-4,
                          schedule="step", seed=7, max_seconds=30.0, device="cpu"),
        teacher_train=TrainConfig(epochs=11, seed=3), transfer_size=500, omit_classes=(3, 5),
        use_labels=False, eval_bias=((3, 2.5), (5, -1.0)),
    )


def test_distill_round_trip_through_json():
    cfg = _rich_config()
    d = json.loads(json.dumps(to_dict(cfg)))  # lists instead of tuples, as a URL or a file would give
    assert d["omit_classes"] == [3, 5] and d["eval_bias"] == [[3, 2.5], [5, -1.0]]
    back = distill_from_dict(d)
    assert back == cfg
    assert isinstance(back.train, TrainConfig) and isinstance(back.omit_classes, tuple)
    assert back.eval_bias == ((3, 2.5), (5, -1.0))
    back.validate()


def test_teacher_round_trip():
    cfg = TeacherConfig(dataset="fashion-mnist", arch="cnn:small", train=TrainConfig(epochs=4, seed=9))
    assert teacher_from_dict(json.loads(json.dumps(to_dict(cfg)))) == cfg


def test_from_dict_missing_keys_take_defaults():
    assert distill_from_dict({}) == DistillConfig()
    assert distill_from_dict({"train": {"epochs": 2}}).train == TrainConfig(epochs=2)
    assert teacher_from_dict({"arch": "linear"}) == TeacherConfig(arch="linear")


@pytest.mark.parametrize("bad", [
    {"temprature": 4.0},
    {"train": {"epoch": 3}},
    {"teacher_train": {"lr": 1e-3, "nesterov": True}},
])
def test_from_dict_unknown_fields_are_named(bad):
    with pytest.raises(ConfigError) as exc:
        distill_from_dict(bad)
    unknown = next(k for k in _leaf_keys(bad) if k not in ("train", "teacher_train", "lr"))
    assert unknown in str(exc.value)


def test_teacher_from_dict_unknown_field():
    with pytest.raises(ConfigError, match="student"):
        teacher_from_dict({"student": "mlp:100"})


def _leaf_keys(d):
    for k, v in d.items():
        yield k
        if isinstance(v, dict):
            yield from _leaf_keys(v)


def test_teacher_config_of_a_distill_config():
    cfg = _rich_config()
    t = cfg.teacher_config()
    assert (t.dataset, t.arch, t.train) == ("mnist", "mlp:1200-1200:dropout=0.2", cfg.teacher_train)


def test_replace_returns_a_new_config():
    cfg = DistillConfig()
    hot = cfg.replace(temperature=10.0)
    assert hot.temperature == 10.0 and cfg.temperature == 4.0
    assert math.isclose(hot.alpha, cfg.alpha)


def test_configs_are_frozen():
    with pytest.raises(Exception):
        DistillConfig().temperature = 2.0  # type: ignore[misc]
