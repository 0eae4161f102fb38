"""kdlab.runs.lab: the lab's one table of settings drives the sidebar, the URL, the CLI and the stale check."""
from __future__ import annotations

import dataclasses

import pytest

from kdlab.base.settings import Setting, from_params, to_params
from kdlab.runs import lab as lab_module
from kdlab.runs.lab import LAB_SETTINGS, normalised, run_label, stale_settings, validate_lab
from kdlab.runs.presets import DEFAULT_PRESET, get_preset, preset_names

DEFAULT = get_preset(DEFAULT_PRESET).lab


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_round_trips_through_the_url(name):
    lab = get_preset(name).lab
    back, notices = from_params(LAB_SETTINGS, to_params(LAB_SETTINGS, lab), DEFAULT, DEFAULT, validate_lab)
    assert notices == [] and stale_settings(lab, back) == []  # equal in every setting the loss uses


@pytest.mark.parametrize("key, raw", [
    ("temperature", "abc"), ("T", "-1"), ("temperature", "inf"), ("alpha", "2"), ("steps", "1e9"),
    ("steps", "2.5"), ("seed", "-3"), ("lr", "0"), ("dataset", "imagenet"), ("teacher", "mlp:x"),
    ("student", "x" * 500), ("loss", "nope"), ("scratch", "maybe"), ("transfer_size", "nan"), ("seeds", "9"),
])
def test_a_bad_link_value_falls_back_to_the_default_with_a_notice(key, raw):
    lab, notices = from_params(LAB_SETTINGS, {key: raw}, get_preset("Tiny student").lab, DEFAULT, validate_lab)
    assert len(notices) == 1 and "default" in notices[0]
    validate_lab(lab)


def test_a_loss_shows_and_links_only_the_settings_it_uses():
    source = dataclasses.replace(DEFAULT, config=DEFAULT.config.replace(loss="source", loss_params={"lam": 0.3}))
    params = to_params(LAB_SETTINGS, source)
    assert params["lam"] == "0.3" and "temperature" not in params and "alpha" not in params
    assert "source λ=0.3 ·" in run_label(source) and "T=" not in run_label(source)
    switched = normalised(dataclasses.replace(source, config=source.config.replace(loss="hinton")))
    assert switched.config.loss_params == {}  # λ belongs to the source loss alone
    assert [s.name for s in LAB_SETTINGS if s.group == "Loss" and s.applies_to(source)] == ["loss", "lam"]


def test_stale_compares_values_not_their_text():
    same = dataclasses.replace(DEFAULT, config=DEFAULT.config.replace(temperature=4.0000))
    assert stale_settings(DEFAULT, same) == []
    hotter = dataclasses.replace(DEFAULT, config=DEFAULT.config.replace(temperature=8.0))
    assert stale_settings(DEFAULT, hotter) == ["Temperature T"]


# --------------------------------------------------------------------------- one edit: a row in the table


@pytest.fixture
def throwaway(monkeypatch):
    """A setting that exists nowhere else (the student's weight decay): added to the table and nowhere else."""
    row = Setting("weight_decay", "config.train.weight_decay", "Weight decay (throwaway)", "A test's setting.",
                  "float", 0.0, 0.1, 0.01, digits=2, group="Training")
    monkeypatch.setattr(lab_module, "LAB_SETTINGS", [*LAB_SETTINGS, row])
    for module in ("kdlab.ui.settings", "kdlab.cli.commands.distill"):  # the names the front ends imported
        monkeypatch.setattr(f"{module}.LAB_SETTINGS", lab_module.LAB_SETTINGS, raising=True)
    return row


def test_a_row_added_to_the_table_reaches_url_cli_stale_and_sidebar(throwaway, app):
    lab = dataclasses.replace(DEFAULT, config=DEFAULT.config.replace(train=dataclasses.replace(
        DEFAULT.config.train, weight_decay=0.05)))
    assert to_params(lab_module.LAB_SETTINGS, lab)["weight_decay"] == "0.05"  # the URL
    assert from_params(lab_module.LAB_SETTINGS, {"weight_decay": "0.07"}, DEFAULT, DEFAULT)[0].config.train \
        .weight_decay == 0.07
    assert stale_settings(DEFAULT, lab) == ["Weight decay (throwaway)"]  # the stale check

    from kdlab.cli.commands.distill import lab_from_args
    from kdlab.cli.main import build_parser

    parsed = lab_from_args(build_parser().parse_args(["distill", "--weight-decay", "0.02"]))  # the CLI
    assert parsed.config.train.weight_decay == 0.02

    app.query_params.update({"weight_decay": "0.03"})
    app.switch_page("pages/1_Distill.py").run()  # the sidebar
    assert not app.exception
    assert app.slider(key="lab.weight_decay").value == 0.03
    assert app.session_state["kd.lab"]["lab"].config.train.weight_decay == 0.03


def test_a_typed_spec_is_kept_in_its_canonical_form(app):
    app.session_state["lab.student"] = "mlp:0100"  # as if typed into the picker
    app.switch_page("pages/1_Distill.py").run()
    assert not app.exception and app.session_state["kd.lab"]["lab"].config.student == "mlp:100"
    assert app.query_params["student"] == "mlp:100"
