"""Tests for kdlab.training.engine on scikit-learn's digits (1,437 training images of 8x8: a few hundred ms a run)."""
from __future__ import annotations

import math
import time

import pytest
import torch

from conftest import StopAfter
from kdlab.training import engine
from kdlab.base.config import TrainConfig
from kdlab.training.engine import Event, Split, lr_at, make_optimizer, train
from kdlab.base.errors import ConfigError, TrainingDivergedError
from kdlab.training.losses import LossOutput, make_loss
from kdlab.training.metrics import accuracy, agreement, predict_logits
from kdlab.training.models import build_model
from kdlab.training.optim import FusedAdam

CE = make_loss("hinton", alpha=0.0)  # plain cross-entropy


pytestmark = pytest.mark.usefixtures("kdlab_cache", "torch_one_thread")


def fresh(digits, spec="mlp:32", seed=0):
    torch.manual_seed(seed)
    return build_model(spec, digits.input_shape, digits.num_classes)


def run(model, digits, loss=CE, split=None, test=True, should_stop=None, **cfg):
    split = split or Split(digits.x_train, digits.y_train)
    test_split = Split(digits.x_test, digits.y_test) if test is True else test
    cfg = TrainConfig(**{"epochs": 2, **cfg})
    return list(train(model, split, loss, cfg, test=test_split, should_stop=should_stop))


def strip_time(history):
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


# ------------------------------------------------------------------------------------------------ learning


def test_loss_goes_down_and_accuracy_goes_up(digits):
    model = fresh(digits, "mlp:100")
    before = accuracy(predict_logits(model, digits.x_test), digits.y_test)
    t0 = time.perf_counter()
    events = run(model, digits, epochs=5, lr=1e-2)
    assert time.perf_counter() - t0 < 30
    history = events[-1].history
    assert history[-1]["train_loss"] < 0.5 * history[0]["train_loss"]
    assert history[-1]["test_accuracy"] > history[0]["test_accuracy"]
    assert before < 0.3 and history[-1]["test_accuracy"] > 0.9
    assert history[-1]["train_accuracy"] > 0.9
    assert accuracy(predict_logits(model, digits.x_test), digits.y_test) == pytest.approx(history[-1]["test_accuracy"])


@pytest.mark.parametrize("optimizer, lr", [("adam", 3e-3), ("sgd", 0.1)])
@pytest.mark.parametrize("schedule", ["constant", "cosine", "step"])
def test_every_optimizer_and_schedule_trains(digits, optimizer, schedule, lr):
    model = fresh(digits)
    events = run(model, digits, epochs=3, optimizer=optimizer, schedule=schedule, lr=lr)
    history = events[-1].history
    assert events[-1].reason == "completed"
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["test_accuracy"] > 0.6


def test_the_schedule_drives_the_optimizer(digits, monkeypatch):
    seen = []
    real = engine._set_lr
    monkeypatch.setattr(engine, "_set_lr", lambda opt, lr: (seen.append(lr), real(opt, lr)))
    cfg = dict(epochs=2, schedule="step", lr=0.01)
    events = run(fresh(digits), digits, **cfg)
    total = events[-1].total_steps
    assert len(seen) == total
    assert seen == pytest.approx([lr_at(TrainConfig(**cfg), s, total) for s in range(total)])
    assert sorted(set(seen)) == pytest.approx([1e-4, 1e-3, 1e-2])


def test_make_optimizer():
    model = torch.nn.Linear(3, 2)
    sgd = make_optimizer(model, TrainConfig(optimizer="sgd", lr=0.05, momentum=0.8, weight_decay=1e-4))
    assert isinstance(sgd, torch.optim.SGD)
    group = sgd.param_groups[0]
    assert (group["lr"], group["momentum"], group["weight_decay"]) == (0.05, 0.8, 1e-4)
    adam = make_optimizer(model, TrainConfig(optimizer="adam", lr=2e-3, weight_decay=1e-4))
    assert isinstance(adam, FusedAdam) and adam.param_groups[0]["lr"] == 2e-3 and adam.weight_decay == 1e-4


def test_lr_at():
    cos = TrainConfig(lr=0.2, schedule="cosine")
    assert lr_at(cos, 0, 100) == pytest.approx(0.2)
    assert lr_at(cos, 50, 100) == pytest.approx(0.1)
    assert lr_at(cos, 25, 100) == pytest.approx(0.1 * (1 + math.cos(math.pi / 4)))
    assert lr_at(cos, 100, 100) == pytest.approx(0.0, abs=1e-12)
    assert all(lr_at(cos, s, 100) > lr_at(cos, s + 1, 100) for s in range(100))
    step = TrainConfig(lr=1.0, schedule="step")
    assert [lr_at(step, s, 8) for s in range(8)] == pytest.approx([1, 1, 1, 1, 0.1, 0.1, 0.01, 0.01])
    const = TrainConfig(lr=0.3, schedule="constant")
    assert {lr_at(const, s, 10) for s in range(11)} == {0.3}
    assert lr_at(cos, 0, 0) == pytest.approx(0.2)  # no division by zero


# ----------------------------------------------------------------------------------------- reproducibility


def test_same_seed_same_run(digits):
    a, b = fresh(digits, seed=1), fresh(digits, seed=1)
    ea, eb = run(a, digits, seed=1), run(b, digits, seed=1)
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), name
    assert strip_time(ea[-1].history) == strip_time(eb[-1].history)
    assert [e.metrics.get("train_loss") for e in ea if e.kind == "step"] == \
           [e.metrics.get("train_loss") for e in eb if e.kind == "step"]


def test_different_seed_different_run(digits):
    """Same initial weights, different TrainConfig.seed: the batch order differs, so the weights do."""
    a, b = fresh(digits, seed=1), fresh(digits, seed=1)
    run(a, digits, seed=1)
    run(b, digits, seed=2)
    assert any(not torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def test_shuffling_does_not_touch_the_global_rng(digits):
    torch.manual_seed(123)
    expected = torch.rand(3)
    model = fresh(digits)
    torch.manual_seed(123)
    run(model, digits, epochs=1, test=None)
    assert torch.equal(torch.rand(3), expected)


# ------------------------------------------------------------------------------------------------- events


def test_event_stream(digits):
    epochs, batch = 3, 100
    events = run(fresh(digits), digits, epochs=epochs, batch_size=batch)
    steps_per_epoch = math.ceil(len(digits.x_train) / batch)
    kinds = [e.kind for e in events]
    assert kinds[-1] == "done" and kinds.count("done") == 1 and kinds.count("epoch") == epochs
    assert all(isinstance(e, Event) for e in events)
    assert all(e.total_steps == steps_per_epoch * epochs for e in events)
    steps = [e.step for e in events if e.kind == "step"]
    assert steps == sorted(steps) and len(set(steps)) == len(steps) and steps[-1] == steps_per_epoch * epochs
    assert [e.step for e in events if e.kind == "epoch"] == [steps_per_epoch * k for k in range(1, epochs + 1)]
    assert [e.epoch for e in events if e.kind == "epoch"] == list(range(1, epochs + 1))
    # epochs are monotone and match the step's epoch
    for e in events:
        if e.kind == "step":
            assert (e.epoch - 1) * steps_per_epoch < e.step <= e.epoch * steps_per_epoch
            assert {"train_loss", "hard", "soft", "train_accuracy"} <= set(e.metrics)
    done = events[-1]
    assert done.reason == "completed" and done.step == steps_per_epoch * epochs
    assert len(done.history) == epochs and [h["epoch"] for h in done.history] == [1, 2, 3]
    assert done.metrics == done.history[-1]
    epoch_events = [e for e in events if e.kind == "epoch"]
    assert [len(e.history) for e in epoch_events] == [1, 2, 3]  # each epoch event carries the history so far
    for h in done.history:
        assert {"epoch", "train_loss", "train_accuracy", "test_accuracy", "seconds"} <= set(h)
        assert 0 <= h["test_accuracy"] <= 1 and 0 <= h["train_accuracy"] <= 1
    seconds = [h["seconds"] for h in done.history]
    assert seconds == sorted(seconds)


def test_step_events_are_throttled_on_large_sets(digits):
    events = run(fresh(digits), digits, epochs=1, batch_size=8, test=None)  # 180 steps
    total = events[-1].total_steps
    n_step = sum(e.kind == "step" for e in events)
    assert total == math.ceil(len(digits.x_train) / 8)
    assert n_step == total // max(1, total // engine.MAX_STEP_EVENTS)


def test_agreement_is_reported_with_teacher_logits(digits):
    teacher_logits = predict_logits(fresh(digits, seed=5), digits.x_test)
    events = run(fresh(digits), digits, epochs=1, test=Split(digits.x_test, digits.y_test, teacher_logits))
    assert "agreement" in events[-1].history[0]
    assert 0 <= events[-1].history[0]["agreement"] <= 1


def test_batches_pair_inputs_labels_and_teacher_logits(digits):
    """The same shuffled index batch slices x, y and the precomputed teacher logits."""
    n = len(digits.x_train)
    ids = torch.arange(n, dtype=torch.float32)
    x = digits.x_train.clone()
    x[:, 0, 0, 0] = ids  # tag every example
    tagged = torch.zeros(n, 10)
    tagged[:, 0] = ids
    batches = []

    def checking_loss(student, teacher, labels):
        batches.append(len(labels))
        return CE(student, teacher, labels)

    model = fresh(digits)
    real_forward = model.forward

    def spy(xb):
        spy.last = xb[:, 0, 0, 0].clone()
        return real_forward(xb)

    model.forward = spy  # type: ignore[method-assign]

    def loss(student, teacher, labels):
        ex = spy.last.long()
        assert torch.equal(teacher[:, 0], spy.last)
        assert torch.equal(labels, digits.y_train[ex])
        return checking_loss(student, teacher, labels)

    run(model, digits, loss=loss, split=Split(x, digits.y_train, tagged), epochs=1, test=None)
    assert sum(batches) == n


# -------------------------------------------------------------------------------------------- stopping


def test_stop_mid_epoch(digits):
    stop = StopAfter(5)  # 12 steps per epoch at batch 128
    events = run(fresh(digits), digits, epochs=3, should_stop=stop)
    done = events[-1]
    assert done.kind == "done" and done.reason == "stopped"
    assert done.step == 5 and stop.calls == 6
    assert len(done.history) == 1  # the partial epoch is reported ...
    assert "test_accuracy" in done.history[0]
    assert [e.kind for e in events].count("epoch") == 1


def test_stop_at_an_epoch_boundary(digits):
    steps_per_epoch = math.ceil(len(digits.x_train) / 128)
    events = run(fresh(digits), digits, epochs=3, should_stop=StopAfter(steps_per_epoch))
    done = events[-1]
    assert done.reason == "stopped" and done.step == steps_per_epoch
    assert len(done.history) == 1  # ... but an empty epoch is not


def test_stop_before_the_first_step(digits):
    model = fresh(digits)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    events = run(model, digits, should_stop=lambda: True)
    assert [e.kind for e in events] == ["done"]
    assert events[0].reason == "stopped" and events[0].history == [] and events[0].step == 0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_stop_is_prompt_on_a_long_run(digits):
    t0 = time.perf_counter()
    events = run(fresh(digits), digits, epochs=10_000, should_stop=StopAfter(30))
    assert events[-1].reason == "stopped" and events[-1].step == 30
    assert time.perf_counter() - t0 < 10


def test_time_limit(digits):
    t0 = time.perf_counter()
    events = run(fresh(digits), digits, epochs=10_000, max_seconds=0.3)
    elapsed = time.perf_counter() - t0
    done = events[-1]
    assert done.reason == "time limit"
    assert done.step < done.total_steps
    assert 0.3 <= elapsed < 10
    assert len(done.history) >= 1


@pytest.mark.parametrize("lean", [True, False], ids=["stack-of-one", "autograd"])
def test_a_stop_due_between_two_epochs_keeps_the_one_that_ended(digits, monkeypatch, lean):
    """A Stop (or the time limit) first seen before an epoch's first step, long before the next evaluation,
    still evaluates the epoch that had just ended: the stopped run keeps what it learnt (CI once caught the
    time limit landing there and a run with no history)."""
    monkeypatch.setattr(engine, "LEAN", lean)
    cfg = TrainConfig(epochs=10_000, batch_size=128)  # evaluated every 200 epochs: none before the stop
    per_epoch = math.ceil(len(digits.x_train) / cfg.batch_size)
    calls = iter(range(10**6))  # should_stop is asked once before each step
    events = list(train(fresh(digits), Split(digits.x_train, digits.y_train), CE, cfg,
                        test=Split(digits.x_test, digits.y_test), should_stop=lambda: next(calls) >= 2 * per_epoch))
    done = events[-1]
    assert done.reason == "stopped" and done.step == 2 * per_epoch
    assert [h["epoch"] for h in done.history] == [2] and done.history[0]["step"] == 2 * per_epoch
    assert done.history[0]["test_accuracy"] > 0.3 and events[-2].kind == "epoch"


# ------------------------------------------------------------------------------------------- divergence


def inf_loss(student, teacher, labels):
    total = student.sum() * float("inf")
    return LossOutput(total, {"hard": total.detach(), "soft": total.detach()})


def test_non_finite_loss_names_the_learning_rate(digits):
    model = fresh(digits)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(TrainingDivergedError) as exc:
        run(model, digits, loss=inf_loss, lr=0.0042)
    message = str(exc.value)
    assert "learning rate" in message and "0.0042" in message and "temperature" in message
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # no step was taken


def test_nan_inputs_diverge_cleanly(digits):
    x = digits.x_train.clone()
    x[::7] = float("nan")
    with pytest.raises(TrainingDivergedError, match="learning rate"):
        run(fresh(digits), digits, split=Split(x, digits.y_train))


# ----------------------------------------------------------------------------------- unlabelled transfer


@pytest.mark.parametrize("loss, good", [("soft-only", 0.8), ("hinton", 0.8), ("logit-mse", 0.5)])
def test_unlabelled_transfer_set(digits, teacher_logits, loss, good):
    """Soft targets alone (y=None): the student learns to agree with the teacher (logit regression is slower)."""
    train_t, test_t = teacher_logits
    model = fresh(digits)
    events = run(model, digits, loss=make_loss(loss, temperature=2.0, alpha=0.5),
                 split=Split(digits.x_train, None, train_t), epochs=4, lr=1e-2,
                 test=Split(digits.x_test, digits.y_test, test_t))
    history = events[-1].history
    assert events[-1].reason == "completed"
    assert "train_accuracy" not in history[-1]  # nothing to score the training batches against
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["agreement"] > good and history[-1]["test_accuracy"] > good
    assert all(e.metrics["hard"] == 0 for e in events if e.kind == "step")
    assert agreement(predict_logits(model, digits.x_test), test_t) == pytest.approx(history[-1]["agreement"])


def test_training_without_a_test_split(digits):
    events = run(fresh(digits), digits, epochs=1, test=None)
    assert "test_accuracy" not in events[-1].history[0]
    assert events[-1].reason == "completed"


# ---------------------------------------------------------------------------------------------- devices


@pytest.mark.parametrize("device", ["cuda", "cuda:0"])
def test_cuda_without_a_gpu_is_a_config_error(digits, device, no_gpu):
    with pytest.raises(ConfigError, match="CUDA"):
        run(fresh(digits), digits, device=device)


# ------------------------------------------------------------------------------------------------- budgets


def test_a_step_budget_fixes_the_optimizer_steps_whatever_the_set_size(digits):
    small = Split(digits.x_train[:50], digits.y_train[:50])  # 2 steps per epoch at batch 32
    events = run(fresh(digits), digits, split=small, steps=25, batch_size=32, epochs=1)
    done = events[-1]
    assert done.step == done.total_steps == 25 and done.reason == "completed"
    assert engine.planned_steps(50, TrainConfig(steps=25, batch_size=32)) == (2, 25, 13)
    assert done.history[-1]["epoch"] == 13 and done.history[-1]["step"] == 25  # the last epoch was partial


def test_evaluations_are_bounded_on_long_step_budgets(digits):
    tiny = Split(digits.x_train[:8], digits.y_train[:8])  # one step per epoch: 400 epochs
    events = run(fresh(digits), digits, split=tiny, steps=400, batch_size=8)
    evals = [e for e in events if e.kind == "epoch"]
    assert len(evals) == engine.MAX_EVALUATIONS and evals[-1].epoch == 400
    assert sum(e.kind == "step" for e in events) == engine.MAX_STEP_EVENTS


def test_step_events_are_window_means_without_epoch_cliffs(digits):
    loss_by_step = {}
    for e in run(fresh(digits), digits, epochs=3, batch_size=100, lr=1e-2):  # 15 steps an epoch, one event each
        if e.kind == "step":
            loss_by_step[e.step] = e.metrics["train_loss"]
    # an epoch's running mean would carry the high early losses into the epoch's last step; a window does not
    first_epoch = [loss_by_step[s] for s in range(1, 16)]
    assert loss_by_step[15] < sum(first_epoch) / 15 and loss_by_step[16] < loss_by_step[1]


def test_a_stop_mid_epoch_keeps_that_epoch_evaluated(digits):
    steps = iter(range(10_000))
    events = run(fresh(digits), digits, epochs=5, batch_size=100, should_stop=lambda: next(steps) >= 20)
    done = events[-1]
    assert done.reason == "stopped" and done.step == 20
    assert [h["epoch"] for h in done.history] == [1, 2] and done.history[-1]["step"] == 20
    assert "test_accuracy" in done.history[-1]


# ------------------------------------------------------------------------------------ the lean path


@pytest.mark.parametrize("spec, loss, lean", [
    ("mlp:32", make_loss("hinton", temperature=4.0, alpha=0.9), True), ("linear", CE, True),
    ("mlp:32:dropout=0.2", CE, False), ("cnn:small", CE, False),
    ("mlp:32", make_loss("logit-mse", alpha=0.5), False), ("mlp:32", make_loss("dkd"), False)])
def test_which_runs_take_the_lean_path(digits, monkeypatch, spec, loss, lean):
    from kdlab.training import stacked

    calls = []
    real = stacked.train_stacked
    monkeypatch.setattr(stacked, "train_stacked", lambda *a, **kw: (calls.append(1), real(*a, **kw))[1])
    model = fresh(digits, spec)
    teacher = predict_logits(fresh(digits, "mlp:32", seed=5), digits.x_train)
    events = run(model, digits, loss=loss, split=Split(digits.x_train, digits.y_train, teacher), epochs=1)
    assert events[-1].reason == "completed" and bool(calls) == lean


def test_the_lean_path_trains_as_the_autograd_loop(digits, monkeypatch):
    """Same events and, float rounding apart (a closed-form loss gradient), the same numbers."""
    teacher = predict_logits(fresh(digits, "mlp:32", seed=5), digits.x_train)
    split = Split(digits.x_train, digits.y_train, teacher)
    out = {}
    for lean in (False, True):
        monkeypatch.setattr(engine, "LEAN", lean)
        model = fresh(digits, seed=3)
        out[lean] = (model, run(model, digits, loss=make_loss("hinton", temperature=3.0, alpha=0.7), split=split,
                                epochs=3, seed=3))
    (ref, ref_events), (lean_model, events) = out[False], out[True]
    assert [(e.kind, e.epoch, e.step) for e in events] == [(e.kind, e.epoch, e.step) for e in ref_events]
    for a, b in zip(events, ref_events):
        assert set(a.metrics) == set(b.metrics)
        for key in set(a.metrics) - {"seconds"}:
            assert a.metrics[key] == pytest.approx(b.metrics[key], rel=1e-3, abs=1e-3), key
    for p, q in zip(lean_model.parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-4)
