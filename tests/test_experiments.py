"""Experiments (kdlab.experiments) on tiny digits configurations, and the transfer-set options they rely on."""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
import torch

from kdlab import experiments as ex
from kdlab.base.config import DistillConfig, TrainConfig
from kdlab.runs.distill import run_distill
from kdlab.base.errors import ConfigError, DataUnavailableError
from kdlab.runs.teacher import RunStopped

TEACHER = dict(teacher="mlp:64", teacher_epochs=5)  # trains in well under a second on digits
TINY = {  # one small configuration per experiment: the contract, not the science
    "small-transfer": dict(TEACHER, sizes=(60, 200), size=60, steps=40),
    "omitted-class": dict(TEACHER, student="mlp:64", epochs=3, bias_step=0.5),
    "temperature-size": dict(TEACHER, students=("mlp:10", "mlp:32"), temperatures=(1.0, 4.0), steps=40),
    "source-recipe": dict(TEACHER, temperatures=(1.0, 4.0), steps=40),
    "hinton-mnist": dict(teacher="mlp:64:dropout=0.5", teacher_epochs=5, student="mlp:64", epochs=3),
}
EXPECTED_ARMS = {
    "small-transfer": {"scratch", "distilled"},
    "omitted-class": {"scratch", "distilled"},
    "temperature-size": {"mlp:10 scratch", "mlp:10 T=1", "mlp:10 T=4", "mlp:32 scratch", "mlp:32 T=1", "mlp:32 T=4"},
    "source-recipe": {"scratch", "source", "hinton T=1", "hinton T=4"},
    "hinton-mnist": {"teacher", "scratch", "distilled"},
}


pytestmark = pytest.mark.usefixtures("kdlab_cache", "torch_one_thread")


def _run(name, data, **extra):
    return ex.run_experiment(name, dataset="digits", seeds=1, data=data, **{**TINY[name], **extra})


def test_every_experiment_has_a_tiny_configuration():
    assert set(TINY) == set(ex.experiment_names())


def test_experiments_are_listed_in_the_papers_story_order():  # the CLI and the page show them in this order
    assert ex.experiment_names() == ["small-transfer", "omitted-class", "temperature-size", "source-recipe",
                                     "hinton-mnist"]


@pytest.mark.parametrize("name", sorted(TINY))
def test_contract(name, digits):
    events = []
    out = _run(name, digits, on_progress=lambda role, ev: events.append((role, ev)))
    json.dumps(out, allow_nan=False)  # one strict JSON object
    assert out["experiment"] == name and out["dataset"] == "digits" and out["seeds"] == [0]
    assert set(out["arms"]) == EXPECTED_ARMS[name]
    for arm in out["arms"].values():
        assert 0.0 <= arm["mean"] <= 1.0 and arm["std"] == 0.0 and len(arm["per_seed"]) == 1
        assert arm["per_seed"][0] == arm["mean"] and arm["seconds"] >= 0 and isinstance(arm["config"], dict)
    assert out["paper"]["source"] and out["teacher"]["arch"] == TINY[name]["teacher"]
    assert 0.3 < out["teacher"]["test_accuracy"] <= 1.0  # a real, trained teacher
    exp_events = [ev for role, ev in events if role == "experiment"]
    steps = [ev.step for ev in exp_events]
    assert steps == sorted(steps) and steps[-1] == exp_events[-1].total_steps  # monotone, ends at 100 %


def test_small_transfer_curve(digits):
    out = _run("small-transfer", digits)
    assert [p["n"] for p in out["by_size"]] == [60, 200]
    first = out["by_size"][0]
    assert first["distilled"]["mean"] == out["arms"]["distilled"]["mean"]  # the headline N is the curve's point
    assert out["arms"]["distilled"]["config"]["transfer_size"] == 60
    assert out["arms"]["scratch"]["config"]["alpha"] == 0.0
    assert out["gain_pp"] == pytest.approx(100 * (first["distilled"]["mean"] - first["scratch"]["mean"]))
    # a fixed step budget: the smaller set trains for more epochs
    assert first["epochs"] > out["by_size"][1]["epochs"]


def test_omitted_class_report_and_bias_curve(digits):
    out = _run("omitted-class", digits)
    c = out["omitted_class_index"]
    assert out["omitted_class"] == "3" and out["omitted_class_in_transfer_set"] == 0
    assert out["arms"]["distilled"]["config"]["use_labels"] is False
    assert out["arms"]["distilled"]["config"]["omit_classes"] == [3]
    assert out["omitted_class_accuracy"]["scratch"] <= 0.05  # hard labels: it (almost) never predicts a 3
    assert out["omitted_class_accuracy"]["distilled"] == out["arms"]["distilled"]["omitted_class_per_seed"][0]
    curve = out["bias_curve"]
    assert [p["bias"] for p in curve] == [0.5 * i for i in range(17)]  # 0..8 in steps of 0.5
    assert curve[0]["class_accuracy"] == pytest.approx(out["omitted_class_accuracy"]["distilled"])
    assert curve[0]["overall_accuracy"] == pytest.approx(out["arms"]["distilled"]["mean"])
    class_acc = [p["class_accuracy"] for p in curve]
    assert class_acc == sorted(class_acc)  # raising a class's logit can only win it more examples
    assert all(len(p["per_class_accuracy"]) == 10 and p["per_class_accuracy"][c] == p["class_accuracy"] for p in curve)
    assert len(out["per_class_accuracy"]["distilled"]) == 10


def test_temperature_size_curves(digits):
    out = _run("temperature-size", digits)
    assert [c["student"] for c in out["curves"]] == ["mlp:10", "mlp:32"]
    for c in out["curves"]:
        assert [p["temperature"] for p in c["points"]] == [1.0, 4.0]
        assert c["best_temperature"] in (1.0, 4.0) and c["params"] > 0
    assert out["arms"]["mlp:10 T=4"]["config"]["temperature"] == 4.0


def test_hinton_mnist_falls_back_when_mnist_is_missing(digits, monkeypatch):
    def fake_load(name, data_dir=None):
        if name == "mnist":
            raise DataUnavailableError("dataset 'mnist' is not available (test)")
        assert name == "fashion-mnist"
        return digits  # stands in for fashion-mnist: this test is about the fallback, not the data

    monkeypatch.setattr(ex.core, "load_dataset", fake_load)
    out = ex.run_experiment("hinton-mnist", dataset="mnist", seeds=1, **TINY["hinton-mnist"])
    assert any("mnist is not available" in n and "fashion-mnist" in n for n in out["notes"])
    assert out["paper"]["test_errors"] == {"teacher": 67, "scratch": 146, "distilled": 74}
    assert set(out["test_errors"]) == {"teacher", "scratch", "distilled"}


def test_other_experiments_do_not_fall_back(monkeypatch):
    def missing(name, data_dir=None):
        raise DataUnavailableError("nope")

    monkeypatch.setattr(ex.core, "load_dataset", missing)
    with pytest.raises(DataUnavailableError):
        ex.run_experiment("small-transfer", dataset="mnist", seeds=1)


@pytest.mark.parametrize("kwargs, match", [
    (dict(name="no-such"), "unknown experiment"),
    (dict(name="small-transfer", seeds=0), "seeds"),
    (dict(name="small-transfer", bogus=1), "unknown setting"),
    (dict(name="small-transfer", dataset="moons"), "settings for"),
    (dict(name="small-transfer", student="mlp:abc"), "mlp"),
    (dict(name="omitted-class", omitted_class=10), "omitted_class"),
])
def test_bad_requests_fail_before_training(kwargs, match, digits):
    kwargs = {"dataset": "digits", "data": digits, **kwargs}
    with pytest.raises(ConfigError, match=match):
        ex.run_experiment(kwargs.pop("name"), **kwargs)


def test_stop_raises(digits):
    with pytest.raises(RunStopped):
        _run("small-transfer", digits, should_stop=lambda: True)


def test_cli_reports_an_unknown_experiment(capsys):
    from kdlab.cli.main import main

    assert main(["experiment", "no-such", "--json", "--quiet"]) == 2
    assert "unknown experiment" in capsys.readouterr().err


def test_core_does_not_import_streamlit():
    assert "streamlit" not in sys.modules or not hasattr(ex, "st")
    for path in Path(ex.__file__).parent.glob("*.py"):
        assert "import streamlit" not in path.read_text(), path.name


# -- the transfer-set options of the engine (DistillConfig / run_distill / Dataset.transfer_indices) --------

def _cfg(**changes):
    return DistillConfig(teacher="mlp:64", student="mlp:32", teacher_train=TrainConfig(epochs=5),
                         train=TrainConfig(epochs=2), **changes)


def test_transfer_indices_subset_and_omission(digits):
    idx = digits.transfer_indices(100, (3,), seed=1)
    assert len(idx) == 100 and len(set(idx.tolist())) == 100 and not (digits.y_train[idx] == 3).any()
    assert torch.equal(idx, digits.transfer_indices(100, (3,), seed=1))  # seeded
    assert not torch.equal(idx, digits.transfer_indices(100, (3,), seed=2))
    full = digits.transfer_indices(None, (3, 5))
    assert len(full) == int(((digits.y_train != 3) & (digits.y_train != 5)).sum())


def test_run_distill_trains_on_the_transfer_subset(digits):
    totals = {}
    run_distill(_cfg(transfer_size=100), data=digits,
                on_progress=lambda role, ev: totals.setdefault(role, ev.total_steps))
    assert totals["distilled"] == totals["scratch"] == 2 * math.ceil(100 / 128)  # 2 epochs of 100 images


def test_run_distill_without_labels_uses_soft_targets_only(digits):
    r = run_distill(_cfg(use_labels=False, omit_classes=(3,)), data=digits)
    assert "train_accuracy" not in r.distilled.history[-1]  # no labels were seen
    assert r.distilled.history[-1]["hard"] == 0.0 and r.distilled.history[-1]["soft"] > 0
    assert "train_accuracy" in r.scratch.history[-1]  # the baseline always learns the labels


def test_eval_bias_shifts_predictions(digits):
    plain = run_distill(_cfg(), data=digits, scratch=False)
    biased = run_distill(_cfg(eval_bias=((3, 100.0),)), data=digits, scratch=False)
    assert torch.equal(biased.distilled.test_logits[:, 3], plain.distilled.test_logits[:, 3] + 100.0)
    assert (biased.distilled.test_logits.argmax(1) == 3).all()
    assert biased.distilled.per_class_accuracy[3] == 1.0
    assert biased.distilled.test_accuracy == pytest.approx(float((digits.y_test == 3).float().mean()))


def test_bias_curve_on_known_logits():
    logits = torch.tensor([[2.0, 0.0], [2.0, 1.5], [0.0, 1.0], [3.0, 0.0]])  # (4, 2)
    y = torch.tensor([0, 1, 1, 1])
    curve = ex.bias_curve(logits, y, 1, [0.0, 1.0, 5.0])
    assert [p["class_accuracy"] for p in curve] == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert [p["overall_accuracy"] for p in curve] == pytest.approx([0.5, 0.75, 0.75])
    assert [p["errors"] for p in curve] == [2, 1, 1]


def test_progress_sums_the_runs_that_train_at_once():
    """On a Ray cluster (or stacked) several runs report at the same time: the experiment's one progress stream
    adds up each run's own fraction, so it only moves forward and ends at 100 %."""
    from kdlab.experiments.core import PROGRESS_UNITS, _Progress
    from kdlab.runs.batch import Run
    from kdlab.training.engine import Event

    plan = [Run("a", _cfg(), scratch=False), Run("b", _cfg(), scratch=True)]  # three trainings
    seen = []
    progress = _Progress(plan, lambda role, ev: seen.append(ev))
    interleaved = [("a", "distilled", 5), ("b", "distilled", 2), ("a", "distilled", 10), ("b", "distilled", 10),
                   ("b", "scratch", 5), ("a", "distilled", "done"), ("b", "distilled", "done"),
                   ("b", "scratch", 10), ("b", "scratch", "done")]
    for key, role, step in interleaved:
        done = step == "done"
        progress(key, role, Event("done" if done else "step", 1, 10 if done else step, 10))
    steps = [ev.step for ev in seen]
    assert steps == [500, 700, 1200, 2000, 2500, 2500, 2500, 3000, 3000]  # 1000 units a training, summed
    assert steps[-1] == seen[-1].total_steps == 3 * PROGRESS_UNITS
    assert [ev.metrics["run"] for ev in seen][-4:] == [2, 3, 3, 3] and seen[-1].metrics["runs"] == 3
