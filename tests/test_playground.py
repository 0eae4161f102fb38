"""kdlab.runs.playground: three students on 2-D data, their snapshots on a grid, the cached teacher."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from kdlab.base.errors import ConfigError
from kdlab.runs import playground as pg
from kdlab.runs.playground import ARMS, UNLABELLED, PlaygroundConfig
from kdlab.runs.teacher import MEMORY, RunStopped
from kdlab.stores.teacher_cache import TeacherStore
from kdlab.training.engine import MAX_STEP_EVENTS
from kdlab.training.losses import make_loss
from kdlab.training.metrics import predict_logits

FAST = PlaygroundConfig(steps=200, grid=24, frames=5)  # the default teacher (shared by the session's cache)


@pytest.fixture(scope="module")
def setup(_kdlab_session_cache):
    """The default spirals set-up (10 labels, all 2 000 points as transfer points). Read-only. Its teacher goes
    to the session's cache folder (a module fixture runs before the autouse fixture that points
    KDLAB_CACHE_DIR there), where the other tests of the module find it."""
    return pg.prepare(FAST, store=TeacherStore(_kdlab_session_cache))


# --- configuration ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("changes,message", [
    ({"dataset": "digits"}, "2-D data"),
    ({"noise": 1.5}, "noise must be a number in [0, 1]"),
    ({"noise": float("nan")}, "noise must be a number"),
    ({"seed": -1}, "seed must be a whole number"),
    ({"labelled": 4}, "labelled must be a whole number in [5, 200]"),
    ({"labelled": 201}, "labelled must be a whole number in [5, 200]"),
    ({"labelled": True}, "labelled must be a whole number"),
    ({"points": 150, "labelled": 160}, "labelled must be a whole number in [5, 150]"),
    ({"transfer": -1}, "transfer must be a whole number in [0, 2000]"),
    ({"transfer": 2001}, "transfer must be a whole number in [0, 2000]"),
    ({"points": 50}, "points must be a whole number in [100, 20000]"),
    ({"student": "cnn:small"}, "image inputs"),
    ({"student": "mlp:1024"}, "small networks"),
    ({"teacher": "mlp:8-8-8-8-8"}, "small networks"),
    ({"student": "mlp:"}, "mlp needs hidden widths"),
    ({"temperature": 0}, "temperature"),
    ({"alpha": 1.5}, "alpha must be a number in [0, 1]"),
    ({"steps": 5}, "steps must be a whole number in [10, 10000]"),
    ({"lr": 0.0}, "lr must be a number"),
    ({"grid": 5}, "grid must be a whole number"),
    ({"frames": 0}, "frames must be a whole number"),
])
def test_bad_configs_are_config_errors(changes, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        pg.validate(PlaygroundConfig(**changes))


def test_the_dataset_name_is_canonical_and_keys_the_teacher():
    assert PlaygroundConfig().dataset_name == "spirals"  # the plain set: its data and cached teachers as before
    cfg = PlaygroundConfig(dataset="moons", noise=0.3, seed=2, points=3000)
    assert cfg.dataset_name == "moons:n=3000:noise=0.3:seed=2" == cfg.teacher_config().dataset
    assert cfg.teacher_config().train.seed == 2 and cfg.student_train().schedule == "constant"


# --- the points each student sees --------------------------------------------------------------------------


def test_labelled_points_are_stratified_and_seeded(setup):
    y = setup.data.y_train
    for n in (5, 10, 50):
        idx = pg.labelled_indices(y, n, 3, seed=0)
        counts = torch.bincount(y[idx], minlength=3).tolist()
        assert len(idx) == len(set(idx.tolist())) == n and max(counts) - min(counts) <= 1
        assert torch.equal(idx, pg.labelled_indices(y, n, 3, seed=0))
    assert not torch.equal(pg.labelled_indices(y, 10, 3, seed=0), pg.labelled_indices(y, 10, 3, seed=1))


def test_arm_splits(setup):
    splits, data, teacher = pg.arm_splits(setup), setup.data, setup.teacher
    lab = setup.labelled
    assert torch.equal(splits["scratch"].x, data.x_train[lab]) and torch.equal(splits["scratch"].y, data.y_train[lab])
    assert splits["scratch"].teacher_logits is None
    hard, soft = splits["hard"], splits["soft"]
    assert len(hard.x) == len(soft.x) == 2000  # every training point is a transfer point by default
    labelled_rows = torch.isin(torch.arange(2000), lab)
    assert torch.equal(hard.y[labelled_rows], data.y_train[lab])  # true labels where labelled
    teacher_says = teacher.train_logits.argmax(1)
    assert torch.equal(hard.y[~labelled_rows], teacher_says[~labelled_rows])  # the teacher's argmax elsewhere
    assert torch.equal(soft.y[labelled_rows], data.y_train[lab]) and bool((soft.y[~labelled_rows] == UNLABELLED).all())
    expected = torch.log_softmax(teacher.train_logits / FAST.temperature, 1)
    assert torch.allclose(soft.teacher_logits, expected, atol=1e-5)  # log soft targets at T, computed once


def test_fewer_transfer_points_than_the_training_split():
    setup = pg.prepare(FAST.replace(transfer=100))
    splits = pg.arm_splits(setup)
    expected = len(torch.unique(torch.cat([setup.labelled, setup.transfer])))
    assert len(setup.transfer) == 100 and len(splits["hard"].x) == len(splits["soft"].x) == expected
    assert len(setup.points()["transfer_xy"]) == expected - FAST.labelled
    no_transfer = pg.arm_splits(pg.prepare(FAST.replace(transfer=0)))
    assert torch.equal(no_transfer["hard"].x, no_transfer["scratch"].x)  # the labels alone


# --- the soft arm's loss -----------------------------------------------------------------------------------


def test_soft_loss_is_hinton_when_every_point_is_labelled():
    torch.manual_seed(0)
    s, t, y = torch.randn(16, 3), torch.randn(16, 3), torch.randint(0, 3, (16,))
    ours = pg.soft_loss(4.0, 0.7)(s, pg.teacher_log_targets(t, 4.0), y)
    theirs = make_loss("hinton", temperature=4.0, alpha=0.7)(s, t, y)
    assert torch.allclose(ours.total, theirs.total, atol=1e-5)
    assert torch.allclose(ours.parts["soft"], theirs.parts["soft"], atol=1e-5)


def test_soft_loss_masks_the_ce_to_the_labelled_points():
    torch.manual_seed(0)
    s, t = torch.randn(8, 3, requires_grad=True), torch.randn(8, 3)
    y = torch.full((8,), UNLABELLED)
    none = pg.soft_loss(2.0, 0.9)(s, pg.teacher_log_targets(t, 2.0), y)
    assert none.parts["hard"].item() == 0.0 and math.isfinite(none.total.item())  # no label: no CE, no NaN
    y[[1, 5]] = torch.tensor([2, 0])
    two = pg.soft_loss(2.0, 0.0)(s, pg.teacher_log_targets(t, 2.0), y)  # alpha = 0: CE on the labelled alone
    expected = torch.nn.functional.cross_entropy(s[[1, 5]], y[[1, 5]])
    assert torch.allclose(two.total, expected)
    two.total.backward()
    assert s.grad[[0, 2, 3, 4, 6, 7]].abs().max() == 0 and s.grad[[1, 5]].abs().max() > 0


# --- snapshots ---------------------------------------------------------------------------------------------


def test_frame_steps():
    steps = pg.frame_steps(2000, 50)
    assert steps[0] == 0 and steps[-1] == 2000 and len(steps) == 51
    assert all(s % 10 == 0 for s in steps)  # the engine's step-event interval at 2 000 steps
    assert pg.frame_steps(123, 500) == list(range(0, 123)) + [123]
    assert pg.frame_steps(10, 1) == [0, 10]


def test_snapshots_come_while_the_students_train_and_cover_the_grid(setup):
    stream = pg.train_arms(setup)
    first = next(stream)  # before any training step
    assert first.step == 0 and not first.final and set(first.arms) == set(ARMS)
    probs = {arm: f.probs for arm, f in first.arms.items()}
    assert all(np.array_equal(probs["scratch"], p) for p in probs.values())  # same initial weights
    rest = list(stream)
    steps = [s.step for s in rest]
    assert steps == sorted(steps) and steps[-1] == FAST.steps and rest[-1].final and rest[-1].reason == "completed"
    assert len(rest) >= FAST.frames and not any(s.final for s in rest[:-1])
    g = FAST.grid
    for snap in [first, *rest]:
        for f in snap.arms.values():
            assert f.probs.shape == (g, g, 3) and f.probs.dtype == np.float16
            assert np.allclose(f.probs.astype(np.float32).sum(-1), 1.0, atol=2e-2)
            assert 0.0 <= f.test_accuracy <= 1.0
    assert first.arms["soft"].train_loss is None and rest[-1].arms["soft"].train_loss > 0
    final = rest[-1].arms["scratch"]
    student_says = final.probs.astype(np.float32).reshape(-1, 3).argmax(1)
    assert len(set(student_says.tolist())) > 1  # a boundary on the grid, not one colour


def test_a_slow_stretch_still_yields_live_snapshots(setup, monkeypatch):
    planned = list(pg.train_arms(setup))
    monkeypatch.setattr(pg, "LIVE_INTERVAL", 0.0)  # as if every pause of the lockstep came too late
    snaps = list(pg.train_arms(setup))
    grain = max(1, FAST.steps // MAX_STEP_EVENTS)
    assert len(snaps) > len(planned) and [s.step for s in snaps] == list(range(0, FAST.steps + 1, grain))
    for arm in ARMS:  # looking at the students more often does not change what they learn
        a, b = planned[-1].arms[arm], snaps[-1].arms[arm]
        assert (a.test_accuracy, a.train_loss) == (b.test_accuracy, b.train_loss)
        assert np.array_equal(a.probs, b.probs)


def test_the_grid_spans_the_data_and_the_teacher_field_is_one_forward_pass(setup):
    grid, data = setup.grid, setup.data
    everything = torch.cat([data.x_train, data.x_test])
    assert grid.xs[0] < everything[:, 0].min() and grid.xs[-1] > everything[:, 0].max()
    assert grid.ys[0] < everything[:, 1].min() and grid.ys[-1] > everything[:, 1].max()
    assert grid.points.shape == (FAST.grid**2, 2)
    assert torch.equal(grid.points[FAST.grid + 2], torch.tensor([grid.xs[2], grid.ys[1]]))  # row-major: (iy, ix)
    expected = predict_logits(setup.teacher.model, grid.points).reshape(FAST.grid, FAST.grid, 3).numpy()
    assert setup.teacher_logits.shape == (FAST.grid, FAST.grid, 3) and np.allclose(setup.teacher_logits, expected)


def test_a_run_is_reproducible_and_reports_json(setup):
    a, b = pg.run_playground(FAST), pg.run_playground(FAST)
    assert a.final.accuracies() == b.final.accuracies()
    s = a.summary()
    assert set(s["arms"]) == set(ARMS) and s["reason"] == "completed" and s["dataset"] == "spirals"
    assert all(0 <= v["test_accuracy"] <= 1 and v["steps"] == FAST.steps for v in s["arms"].values())
    assert s["teacher"]["test_accuracy"] > 0.95 and s["frames"] == len(a.frames)


def test_a_stop_ends_the_run_with_a_final_snapshot(setup):
    calls = {"n": 0}

    def stop() -> bool:
        calls["n"] += 1
        return calls["n"] > 50

    snaps = list(pg.train_arms(setup, should_stop=stop))
    assert snaps[-1].final and snaps[-1].reason == "stopped" and snaps[-1].step < FAST.steps


def test_a_time_limit_cannot_hang_the_lockstep(setup, monkeypatch):
    monkeypatch.setattr(pg, "MAX_SECONDS", 0.05)
    snaps = list(pg.train_arms(pg.Setup(**{**vars(setup), "config": FAST.replace(steps=10_000)})))
    assert snaps[-1].final and snaps[-1].reason == "time limit" and snaps[-1].step < 10_000


# --- the teacher -------------------------------------------------------------------------------------------


def test_the_teacher_is_cached(kdlab_cache, monkeypatch):
    monkeypatch.setattr(pg, "TEACHER_STEPS", 300)  # caching, not accuracy, is under test: a quick teacher
    cfg = FAST.replace(dataset="moons")
    first = pg.run_playground(cfg).summary()
    assert first["teacher"]["source"] == "trained"
    again = pg.run_playground(cfg).summary()  # from memory
    MEMORY.clear()
    disk = pg.run_playground(cfg).summary()  # from the disk cache
    assert again["teacher"]["source"] == disk["teacher"]["source"] == "cache"
    assert first["teacher"]["key"] == again["teacher"]["key"] == disk["teacher"]["key"]
    assert first["arms"] == again["arms"] == disk["arms"]  # the same teacher, so the same students
    other = pg.run_playground(cfg.replace(noise=0.3)).summary()  # another draw: another teacher
    assert other["teacher"]["source"] == "trained" and other["teacher"]["key"] != first["teacher"]["key"]


# --- seeds (the CLI's JSON) and the effect ----------------------------------------------------------------


def test_seeds_summary_shape():
    out = pg.run_playground_seeds(FAST, [0, 0])
    assert out["seeds"] == [0]
    for arm in ARMS:
        assert out["arms"][arm]["per_seed"] == [pytest.approx(out["arms"][arm]["mean"])]
        assert 0 <= out["arms"][arm]["mean"] <= 1
    arms = out["arms"]
    assert out["gain"]["soft_minus_scratch"] == pytest.approx(arms["soft"]["mean"] - arms["scratch"]["mean"])
    assert 0.95 < out["teacher"]["test_accuracy"] <= 1 and "seed" not in out["config"]
    with pytest.raises(ConfigError, match="1 to 10 seeds"):
        pg.run_playground_seeds(FAST, [])
    with pytest.raises(ConfigError, match="seed must be"):
        pg.run_playground_seeds(FAST, [-3])


def test_a_stopped_seed_run_raises():
    with pytest.raises(RunStopped):
        pg.run_playground_seeds(FAST, [0], should_stop=lambda: True)


@pytest.mark.slow
def test_soft_targets_beat_scratch_on_spirals_with_ten_labels():
    """Issue 11's effect target: soft − scratch >= +30 points over 3 seeds (the default 1 000 steps)."""
    out = pg.run_playground_seeds(PlaygroundConfig(dataset="spirals", labelled=10), [0, 1, 2])
    gain = out["gain"]["soft_minus_scratch"]
    assert gain >= 0.30, out["arms"]
    assert out["teacher"]["test_accuracy"] >= 0.99
    assert out["arms"]["scratch"]["mean"] < 0.7  # ten labels cannot draw a spiral
