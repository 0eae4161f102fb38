"""kdlab.runs.prepare and ``kdlab prepare``: the teachers come from the lab's own modules (a new preset or
experiment needs no edit), each once; after ``prepare`` every preset's run gets its teacher from the cache; a
dataset that cannot be loaded is reported, not a crash."""
import dataclasses
import json

import pytest

import kdlab.experiments  # noqa: F401  (registers the experiments' teacher source)
from kdlab.base.config import TrainConfig
from kdlab.base.errors import ConfigError
from kdlab.cli.main import main
from kdlab.data.toys import TOYS
from kdlab.experiments import EXPERIMENTS
from kdlab.runs.playground import PlaygroundConfig
from kdlab.runs.prepare import TEACHER_SOURCES, prepare_teachers, summary, teachers_to_prepare
from kdlab.runs.presets import DEFAULT_PRESET, PRESETS, Preset, get_preset, preset_names
from kdlab.runs.teacher import MEMORY
from kdlab.stores.teacher_cache import TeacherStore, teacher_key


def _keys(wanted) -> dict[str, tuple[str, ...]]:
    return {w.key: w.why for w in wanted}


def test_every_source_of_the_lab_is_registered():
    assert TEACHER_SOURCES.names() == ["presets", "app", "playground", "experiments"]


def test_the_digits_list_holds_every_teacher_the_presets_and_the_experiments_runs_ask_for(digits):
    wanted = teachers_to_prepare(["digits"])
    keys = _keys(wanted)
    assert len(keys) == len(wanted) and {w.dataset for w in wanted} == {"digits"}  # one per cache key
    for name in preset_names():
        assert f"preset “{name}”" in keys[teacher_key(get_preset(name).config.teacher_config())]
    for name in EXPERIMENTS.names():  # the real plans on the real data: what run_experiment would train
        exp = EXPERIMENTS.get(name)
        for run in exp.plan(exp.settings_for("digits"), digits, [0, 1]):
            assert f"experiment {name}" in keys[teacher_key(run.config.teacher_config())], (name, run.key)
    # the presets, the app's start and four of the five experiments share one teacher: it is trained once
    assert len(wanted) == 2


def test_every_dataset_gets_the_apps_default_and_every_toy_the_playgrounds_teacher():
    keys = _keys(teachers_to_prepare())
    start = get_preset(DEFAULT_PRESET).config
    for dataset in ("digits", "mnist", "fashion-mnist", *TOYS):
        assert "the app's default set-up" in keys[teacher_key(start.replace(dataset=dataset).teacher_config())]
    for toy in TOYS:
        assert "the Playground's default run" in keys[teacher_key(PlaygroundConfig(dataset=toy).teacher_config())]
    fashion = {w.config.arch for w in teachers_to_prepare(["fashion-mnist"], ["experiments"])}
    assert fashion == {"mlp:1200-1200", "mlp:500", "mlp:1200-1200:dropout=0.5"}


def test_a_new_preset_or_experiment_is_prepared_with_no_other_edit(monkeypatch):
    slower = get_preset(DEFAULT_PRESET).config.replace(teacher_train=TrainConfig(epochs=7))
    monkeypatch.setitem(PRESETS._items, "Seven epochs", Preset("Seven epochs", slower, "", "gain"))
    exp = EXPERIMENTS.get("small-transfer")
    wider = {"digits": dataclasses.replace(exp.settings["digits"], teacher="mlp:700")}
    monkeypatch.setitem(EXPERIMENTS._items, "wider", dataclasses.replace(exp, name="wider", settings=wider))
    keys = _keys(teachers_to_prepare(["digits"]))
    assert keys[teacher_key(slower.teacher_config())] == ("preset “Seven epochs”",)
    assert [w for w in teachers_to_prepare(["digits"]) if w.config.arch == "mlp:700"][0].why == ("experiment wider",)


def test_an_unknown_dataset_or_source_is_a_config_error():
    with pytest.raises(ConfigError, match="digits"):
        teachers_to_prepare(["digitz"])
    with pytest.raises(ConfigError, match="presets, app, playground, experiments"):
        teachers_to_prepare(None, ["lesson?"])


def _cli(capsys, *argv) -> dict:
    assert main([*argv, "--json", "--quiet"]) == 0
    return json.loads(capsys.readouterr().out)


def test_prepare_then_every_preset_gets_its_teacher_from_the_cache(kdlab_cache, capsys, torch_one_thread):
    listed = _cli(capsys, "prepare", "--dataset", "digits", "--only", "presets", "--list")
    assert [t["status"] for t in listed["teachers"]] == ["missing"] and listed["cache"]["entries"] == 0

    out = _cli(capsys, "prepare", "--dataset", "digits", "--only", "presets")
    assert [t["status"] for t in out["teachers"]] == ["trained"] and out["ready"] == out["total"] == 1
    assert out["teachers"][0]["test_accuracy"] > 0.9 and out["prepared_bytes"] == out["cache"]["size_bytes"] > 0
    entries = TeacherStore().entries()

    MEMORY.clear()  # as in a fresh process: the disk cache must serve every preset
    for name in preset_names():
        run = _cli(capsys, "distill", "--preset", name, "--steps", "20")
        assert run["teacher"]["source"] == "cache", name
    assert TeacherStore().entries() == entries  # nothing was trained or rewritten
    again = _cli(capsys, "prepare", "--dataset", "digits", "--only", "presets")
    assert [t["status"] for t in again["teachers"]] == ["cached"]


@pytest.fixture
def no_mnist(tmp_path, monkeypatch):
    """MNIST nowhere on this machine, and its download refused at once by a closed port on 127.0.0.1."""
    from kdlab.data import sources

    monkeypatch.setattr(sources, "SYSTEM_DATA_ROOT", tmp_path / "system")
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("KDLAB_DATA_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("KDLAB_MNIST_MIRROR", "http://127.0.0.1:9/")


def test_a_dataset_that_cannot_be_loaded_is_reported_and_the_rest_prepared(kdlab_cache, no_mnist, capsys):
    wanted = teachers_to_prepare(["mnist", "moons"], ["app"])
    prepared = prepare_teachers(wanted)
    assert [(p.wanted.dataset, p.status) for p in prepared] == [("mnist", "unavailable"), ("moons", "trained")]
    report = summary(prepared)
    assert "mnist" in report["unavailable"]["mnist"] and report["ready"] == 1

    assert main(["prepare", "--dataset", "mnist", "--only", "app", "--quiet"]) == 0  # a report, exit 0
    text = capsys.readouterr().out
    assert "NO DATA" in text and "not prepared: mnist is not available" in text and "0 of 1 teachers" in text


def test_bad_flags_exit_2_with_one_line(capsys):
    assert main(["prepare", "--only", "lesson"]) == 2
    assert "unknown teacher source 'lesson'" in capsys.readouterr().err
    assert main(["prepare", "--threads", "0", "--list"]) == 2
