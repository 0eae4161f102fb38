"""kdlab.ui.query: the Distill settings in the URL; a bad value falls back with a notice, never a raise."""
import pytest

from kdlab.runs.presets import DEFAULT_PRESET, get_preset, preset_names
from kdlab.ui.query import from_params, to_params

DEFAULT = get_preset(DEFAULT_PRESET)


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_round_trips_through_the_url(name):
    p = get_preset(name)
    cfg, baseline, notices = from_params(to_params(p.config, p.scratch), DEFAULT.config, True)
    assert not notices and to_params(cfg, baseline) == to_params(p.config, p.scratch)


def test_partial_params_keep_the_rest_of_the_base():
    cfg, baseline, notices = from_params({"T": "8", "baseline": "0"}, get_preset("Tiny student").config, True)
    assert (cfg.temperature, baseline, cfg.student, notices) == (8.0, False, "mlp:30", [])


@pytest.mark.parametrize("key, raw", [
    ("T", "abc"), ("T", "-1"), ("T", "inf"), ("alpha", "2"), ("epochs", "1e9"), ("epochs", "2.5"),
    ("seed", "-3"), ("lr", "0"), ("dataset", "imagenet"), ("teacher", "mlp:x"), ("student", "x" * 500),
    ("loss", "nope"), ("baseline", "maybe"), ("transfer", "nan"), ("lam", "-1"),
])
def test_a_bad_value_falls_back_to_the_default_with_a_notice(key, raw):
    params = to_params(DEFAULT.config, True) | {key: raw, "loss": "source"} if key == "lam" else {key: raw}
    cfg, _, notices = from_params(params, get_preset("Hinton 2015").config, True)
    assert len(notices) == 1 and key in notices[0] and "default" in notices[0]
    expected = {"lam": "0.1"}.get(key, to_params(DEFAULT.config, True).get(key))  # the source loss's default λ
    assert to_params(cfg, True).get(key) == expected
    cfg.validate()


def test_learning_rates_snap_to_the_slider_and_repeated_keys_take_the_last():
    cfg, _, notices = from_params({"lr": "0.0011", "seed": ["1", "7"]}, DEFAULT.config, True)
    assert (cfg.train.lr, cfg.train.seed, notices) == (1e-3, 7, [])
