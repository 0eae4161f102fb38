"""kdlab.runs.presets: every preset is a valid, quick set-up and says what it is."""
import re

import pytest

from kdlab.runs.distill import validate
from kdlab.base.errors import ConfigError
from kdlab.training.models import parse_spec
from kdlab.runs.presets import DEFAULT_PRESET, get_preset, preset_names


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_validates_and_runs_offline(name):
    preset = get_preset(name)
    validate(preset.config)
    assert preset.config.dataset == "digits"  # offline, seconds
    assert preset.summary and preset.name == name


def test_the_required_presets_exist_and_the_default_is_quick():
    assert {"Source recipe", "Hinton 2015", "Small transfer set", "Tiny student", DEFAULT_PRESET} <= set(preset_names())
    d = get_preset(DEFAULT_PRESET).config
    assert (d.teacher, d.student, d.loss) == ("mlp:500", "mlp:100", "hinton") and d.train.epochs <= 20


def test_presets_match_the_spec():
    src = get_preset("Source recipe").config
    assert (src.teacher, src.student, src.loss, src.loss_params) == ("mlp:500", "mlp:100", "source", {"lam": 0.1})
    hinton = get_preset("Hinton 2015").config
    assert (hinton.teacher, hinton.student, hinton.temperature) == ("mlp:1200-1200", "mlp:800-800", 20.0)
    assert 100 <= get_preset("Small transfer set").config.transfer_size <= 1000
    tiny = get_preset("Tiny student").config
    width = int(re.fullmatch(r"(\d+)", parse_spec(tiny.student).arg).group(1))
    assert 20 <= width <= 40 and 2.5 <= tiny.temperature <= 4


def test_unknown_preset_lists_the_valid_names():
    with pytest.raises(ConfigError, match="Tiny student"):
        get_preset("nope")
