"""Tests for kdlab.training.models: every ready-made spec on every input shape, counts by hand, malformed specs,
the canonical form of a spec."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from kdlab.base.errors import ConfigError
from kdlab.training.models import (
    SPEC_FORMS,
    build_model,
    canonical_spec,
    count_params,
    macs_per_example,
    model_names,
    parse_spec,
    validate_spec,
)

SHAPES = [(1, 28, 28), (1, 8, 8), (2,)]


pytestmark = pytest.mark.usefixtures("kdlab_cache", "torch_one_thread")


def _valid(spec: str, shape: tuple[int, ...]) -> bool:
    return not (spec.startswith("cnn") and len(shape) != 3)  # a CNN needs an image


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("spec", model_names())
def test_every_named_model(spec, shape):
    if not _valid(spec, shape):
        with pytest.raises(ConfigError, match="image"):
            build_model(spec, shape, 10)
        with pytest.raises(ConfigError):
            validate_spec(spec, shape, 10)
        return
    validate_spec(spec, shape, 10)
    torch.manual_seed(0)
    model = build_model(spec, shape, num_classes=7)
    assert model.spec == spec
    x = torch.randn(5, *shape)
    model.eval()
    with torch.no_grad():
        out = model(x)
    assert out.shape == (5, 7) and out.dtype == torch.float32 and torch.isfinite(out).all()
    assert count_params(model) == sum(p.numel() for p in model.parameters()) > 0
    macs = macs_per_example(model, shape)
    # every parameter of a Linear/Conv layer takes part in at least one MAC; weights dominate the params
    weights = sum(m.weight.numel() for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d)))
    assert macs >= weights


@pytest.mark.parametrize("spec", model_names())
def test_dropout_only_where_asked(spec):
    model = build_model(spec, (1, 8, 8), 10)
    has_dropout = any(isinstance(m, nn.Dropout) for m in model.modules())
    assert has_dropout == ("dropout=" in spec)


def test_mlp_counts_by_hand():
    model = build_model("mlp:100", (1, 8, 8), 10)
    assert count_params(model) == (64 * 100 + 100) + (100 * 10 + 10)
    assert macs_per_example(model, (1, 8, 8)) == 64 * 100 + 100 * 10


def test_deep_mlp_counts_by_hand():
    model = build_model("mlp:1200-1200:dropout=0.2", (1, 28, 28), 10)
    assert count_params(model) == (784 * 1200 + 1200) + (1200 * 1200 + 1200) + (1200 * 10 + 10)
    assert macs_per_example(model, (1, 28, 28)) == 784 * 1200 + 1200 * 1200 + 1200 * 10
    dropouts = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    assert len(dropouts) == 2 and all(d.p == 0.2 for d in dropouts)


def test_linear_counts_by_hand():
    model = build_model("linear", (2,), 3)
    assert count_params(model) == 2 * 3 + 3
    assert macs_per_example(model, (2,)) == 6


def test_cnn_small_macs_by_hand():
    """LeNet-5 with 'same' padding on 28x28: conv 1->6 (5x5) at 28x28, pool, conv 6->16 at 14x14, pool, FCs."""
    model = build_model("cnn:small", (1, 28, 28), 10)
    conv1 = 6 * 28 * 28 * (1 * 5 * 5)
    conv2 = 16 * 14 * 14 * (6 * 5 * 5)
    fcs = 16 * 7 * 7 * 120 + 120 * 84 + 84 * 10
    assert macs_per_example(model, (1, 28, 28)) == conv1 + conv2 + fcs
    params = (6 * 25 + 6) + (16 * 6 * 25 + 16) + (16 * 49 * 120 + 120) + (120 * 84 + 84) + (84 * 10 + 10)
    assert count_params(model) == params


def test_macs_leave_the_model_unhooked_and_in_its_mode():
    model = build_model("mlp:30", (1, 8, 8), 10)
    model.train()
    macs_per_example(model, (1, 8, 8))
    assert model.training
    assert all(not m._forward_hooks for m in model.modules())


def test_parse_spec():
    assert parse_spec("mlp:1200-1200:dropout=0.2") == parse_spec(" mlp:1200-1200:dropout=0.2 ")
    spec = parse_spec("mlp:1200-1200:dropout=0.2")
    assert (spec.family, spec.arg, spec.dropout) == ("mlp", "1200-1200", 0.2)
    assert (parse_spec("linear").family, parse_spec("linear").arg) == ("linear", "")
    assert parse_spec("cnn:small").arg == "small"


@pytest.mark.parametrize("spec", [
    "mlp", "mlp:a", "mlp:0", "mlp:100-", "mlp:-100", "mlp:99999", "mlp:1-1-1-1-1-1-1-1-1",
    "cnn:big", "cnn", "foo", "foo:100", "", "  ", "linear:5", "mlp:100:dropout=2", "mlp:100:dropout=x",
    "mlp:100:dropout=-0.1", "mlp:100:dropout=nan", "mlp:100:200", "mlp:100:dropout=0.1:extra", "MLP:100",
])
def test_malformed_specs_list_the_valid_forms(spec):
    with pytest.raises(ConfigError) as exc:
        build_model(spec, (1, 28, 28), 10)
    assert SPEC_FORMS in str(exc.value)
    with pytest.raises(ConfigError):
        validate_spec(spec)


@pytest.mark.parametrize("spec", [None, 100])
def test_non_string_spec(spec):
    with pytest.raises(ConfigError):
        parse_spec(spec)


@pytest.mark.parametrize("spec", ["cnn:small", "cnn:medium"])
@pytest.mark.parametrize("shape", [(2,), (1, 4, 4), (64,)])
def test_cnn_needs_an_image_of_at_least_8x8(spec, shape):
    with pytest.raises(ConfigError, match="8x8"):
        build_model(spec, shape, 2)


def test_validate_spec_allocates_nothing():
    """The largest allowed MLP would be ~2 GB of float32 weights; validating it must be instant."""
    import time

    t0 = time.perf_counter()
    validate_spec("mlp:8192-8192-8192-8192-8192-8192-8192-8192")
    assert time.perf_counter() - t0 < 1.0


def test_seeded_builds_are_identical():
    torch.manual_seed(3)
    a = build_model("mlp:30", (1, 8, 8), 10)
    torch.manual_seed(3)
    b = build_model("mlp:30", (1, 8, 8), 10)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


# ------------------------------------------------------------------------------------------ canonical form
# Issue 10, failures 2 and 4: 'mlp:0500', 'mlp:000500' and 'mlp:١٠٠' each made a new teacher; a 5 000-digit
# width raised ValueError from int().


@pytest.mark.parametrize("spec, canonical", [
    ("mlp:500", "mlp:500"), ("mlp:0500", "mlp:500"), ("mlp:000500", "mlp:500"), ("  mlp:500\t\n", "mlp:500"),
    ("mlp:0100-01200", "mlp:100-1200"), ("mlp:500:dropout=0.20", "mlp:500:dropout=0.2"),
    ("mlp:500:dropout=.2", "mlp:500:dropout=0.2"), ("mlp:500:dropout=2e-1", "mlp:500:dropout=0.2"),
    ("mlp:500:dropout=0", "mlp:500"), ("mlp:500:dropout=0.000", "mlp:500"), ("linear", "linear"),
    ("linear:", "linear"), ("cnn:small:dropout=0.50", "cnn:small:dropout=0.5"), ("mlp:8:dropout=1e-05", "mlp:8:dropout=1e-05"),
    ("mlp:" + "0" * 100 + "8", "mlp:8"),
])
def test_canonical_spec(spec, canonical):
    assert canonical_spec(spec) == canonical
    assert canonical_spec(canonical) == canonical  # idempotent
    model = build_model(spec, (1, 8, 8), 10)
    assert model.spec == canonical  # reports and the cache see one spelling
    twin = build_model(canonical, (1, 8, 8), 10)
    assert [p.shape for p in model.parameters()] == [p.shape for p in twin.parameters()]
    assert str(model) == str(twin)  # the same layers, dropout included


def test_every_named_model_is_canonical():
    assert [canonical_spec(s) for s in model_names()] == model_names()


@pytest.mark.parametrize("spec", [
    "mlp:١٠٠",  # Arabic-Indic digits: int() reads 100
    "mlp:１００",  # full-width digits
    "mlp:100:dropout=٠.٥",
    "mlp:100-২০০",
    "ｍｌｐ:100",
    "mlp:100\u200b",  # a zero-width space
])
def test_non_ascii_specs_are_refused(spec):
    with pytest.raises(ConfigError, match="only a-z, 0-9"):
        canonical_spec(spec)
    with pytest.raises(ConfigError):
        build_model(spec, (1, 8, 8), 10)


@pytest.mark.parametrize("spec", ["mlp:" + "1" * 5000, "mlp:" + "1" * 100, "mlp:100-" + "9" * 60,
                                  "mlp:100:dropout=0." + "1" * 5000])
def test_huge_numbers_in_a_spec_are_a_config_error(spec):
    for check in (canonical_spec, validate_spec, lambda s: build_model(s, (1, 8, 8), 10)):
        with pytest.raises(ConfigError) as exc:
            check(spec)
        assert len(str(exc.value)) < 400  # one readable line, not the 5 000 digits back


@pytest.mark.parametrize("spec", [None, 100, ["mlp:100"], b"mlp:100"])
def test_canonical_spec_of_a_non_string_is_a_config_error(spec):
    with pytest.raises(ConfigError):
        canonical_spec(spec)


def test_upper_case_is_refused_with_the_lower_case_spelling():
    with pytest.raises(ConfigError, match="lower case: 'mlp:100'"):
        canonical_spec("MLP:100")
