"""kdlab.training.stacked (K students trained as one) against engine.train's autograd loop (each alone), and
run_all's use of it.

Why tolerances and not equality: the stack's first layer is nn.Linear's bit for bit, but its deeper layers are
batched matmuls and its loss gradient is computed in closed form (softmax − target) rather than by autograd's
chain through log_softmax, KL and CE, so gradients differ in the last float32 bits (relative 1e-7..1e-6). A first Adam step moves every
weight by about lr·g/|g| = ±lr, so such differences only show where |g| is near Adam's eps (1e-8): the weights
after one step agree to 1e-6, 0.1 % of a 1e-3 step. Over many steps the differences grow as in any two float
orders of the same training, hence the accuracy criteria of the issue on a whole sweep.
"""
from __future__ import annotations

import dataclasses
import statistics
import time

import pytest
import torch

from conftest import StopAfter
from kdlab.base.config import DistillConfig, TrainConfig
from kdlab.base.errors import TrainingDivergedError
from kdlab.runs import batch
from kdlab.runs.batch import Run, plan, run_all
from kdlab.runs.sweep import run_sweep
from kdlab.training import engine, stacked
from kdlab.training.engine import Split, train
from kdlab.training.losses import make_loss
from kdlab.training.metrics import accuracy, predict_logits
from kdlab.training.models import build_model
from kdlab.training.stacked import Student, kl_ce, kl_ce_form, stackable, stacked_pays, train_stacked

CE = make_loss("hinton", alpha=0.0)


@pytest.fixture(autouse=True)
def _isolated(kdlab_cache, torch_one_thread, monkeypatch):
    monkeypatch.setattr(engine, "LEAN", False)  # the reference is engine.train's autograd loop, not a stack of one


# (loss, T, alpha, params, seed, labelled, has teacher): students of one size-300 transfer set per seed
MIX = [("hinton", 4.0, 0.9, {}, 0, True, True),
       ("hinton", 4.0, 0.0, {}, 0, True, False),  # the scratch twin of the first: same seed, rows and weights
       ("hinton", 2.0, 0.5, {}, 1, True, True),
       ("soft-only", 8.0, 1.0, {}, 2, False, True),  # an unlabelled transfer set
       ("source", 1.0, 0.0, {"lam": 0.1}, 1, True, True),
       ("hinton", 3.0, 0.9, {}, 3, False, True)]


def _pair(digits, teacher_logits, cfg: TrainConfig, spec="mlp:32", mix=MIX, n=300):
    """The single trainer's (model, events) and the stack's students for each entry of ``mix``."""
    train_t, test_t = teacher_logits
    test = Split(digits.x_test, digits.y_test, test_t)
    singles, students = [], []
    for name, t, a, params, seed, labelled, has_teacher in mix:
        c = dataclasses.replace(cfg, seed=seed)
        rows = digits.transfer_indices(n, (), seed)
        split = Split(digits.x_train[rows], digits.y_train[rows] if labelled else None,
                      train_t[rows] if has_teacher else None)
        torch.manual_seed(seed)  # as run_distill's train_student
        model = build_model(spec, digits.input_shape, digits.num_classes)
        singles.append((model, list(train(model, split, make_loss(name, t, a, **params), c, test=test))))
        torch.manual_seed(seed)
        twin = build_model(spec, digits.input_shape, digits.num_classes)
        form = kl_ce_form(name, t, a, params, teacher=has_teacher, labels=labelled)
        students.append(Student(twin, rows, form, labelled, c))
    return singles, students, Split(digits.x_train, digits.y_train, train_t), test


def _by_student(events, k):
    out = [[] for _ in range(k)]
    for j, ev in events:
        out[j].append(ev)
    return out


def test_one_step_matches_the_single_trainer(digits, teacher_logits):
    singles, students, shared, test = _pair(digits, teacher_logits, TrainConfig(steps=1))
    events = _by_student(list(train_stacked(students, shared, test=test)), len(students))
    for (model, single), student, evs in zip(singles, students, events):
        for p, q in zip(model.parameters(), student.model.parameters()):
            torch.testing.assert_close(q, p, rtol=0, atol=1e-6)  # why 1e-6: the module docstring
        assert evs[-1].metrics["train_loss"] == pytest.approx(single[-1].metrics["train_loss"], rel=1e-6)
        assert evs[-1].metrics["hard"] == pytest.approx(single[-1].metrics["hard"], rel=1e-6, abs=0)
        assert evs[-1].metrics["soft"] == pytest.approx(single[-1].metrics["soft"], rel=1e-6, abs=0)


def test_one_sgd_step_takes_the_single_trainers_gradient(digits, teacher_logits):
    """With SGD at lr 1 and no momentum a step is -gradient: the stack's hand-written gradients, compared
    directly (relative to each tensor's largest entry: float32 rounding of a different summation order)."""
    cfg = TrainConfig(steps=1, optimizer="sgd", lr=1.0, momentum=0.0)
    singles, students, shared, test = _pair(digits, teacher_logits, cfg)
    before = [[p.detach().clone() for p in s.model.parameters()] for s in students]
    list(train_stacked(students, shared))
    for (model, _), student, start in zip(singles, students, before):
        for p, q, p0 in zip(model.parameters(), student.model.parameters(), start):
            g_single, g_stack = p0 - p.detach(), p0 - q.detach()
            scale = g_single.abs().max().item()
            assert scale > 0
            torch.testing.assert_close(g_stack, g_single, rtol=0, atol=1e-5 * scale)


def test_events_history_and_metrics_mirror_the_single_trainer(digits, teacher_logits):
    cfg = TrainConfig(epochs=3, batch_size=64, lr=3e-3)  # 5 steps an epoch on 300 images, the last one short
    singles, students, shared, test = _pair(digits, teacher_logits, cfg)
    events = _by_student(list(train_stacked(students, shared, test=test)), len(students))
    for (_, single), student, evs, labelled in zip(singles, students, events, [m[5] for m in MIX]):
        assert [(e.kind, e.epoch, e.step, e.total_steps, e.reason) for e in evs] == \
               [(e.kind, e.epoch, e.step, e.total_steps, e.reason) for e in single]
        for a, b in zip(evs, single):
            assert set(a.metrics) == set(b.metrics) and ("train_accuracy" in a.metrics) == labelled
            for key in set(a.metrics) - {"seconds"}:  # float rounding apart, the same training
                assert a.metrics[key] == pytest.approx(b.metrics[key], rel=1e-3, abs=1e-3), key
            assert [h["epoch"] for h in a.history] == [h["epoch"] for h in b.history]
        assert evs[-1].metrics == evs[-1].history[-1]
        assert evs[-1].metrics["test_accuracy"] == accuracy(predict_logits(student.model, digits.x_test),
                                                            digits.y_test)  # what the returned model scores


def test_step_budget_and_the_evaluation_limit(digits, teacher_logits):
    cfg = TrainConfig(steps=130, batch_size=128)  # 3 steps an epoch on 300 images: 44 epochs, the last partial
    singles, students, shared, test = _pair(digits, teacher_logits, cfg, mix=MIX[:2])
    events = _by_student(list(train_stacked(students, shared, test=test)), 2)
    for (_, single), evs in zip(singles, events):
        kinds = [(e.kind, e.epoch, e.step) for e in evs]
        assert kinds == [(e.kind, e.epoch, e.step) for e in single]
        assert evs[-1].step == 130 and evs[-1].epoch == 44


def test_weights_belong_to_each_model_after_training(digits, teacher_logits):
    _, students, shared, _ = _pair(digits, teacher_logits, TrainConfig(steps=2), mix=MIX[:2])
    list(train_stacked(students, shared))
    a, b = (s.model[1].weight for s in students)
    assert a.untyped_storage().data_ptr() != b.untyped_storage().data_ptr()
    assert a.untyped_storage().nbytes() == a.numel() * 4  # its own storage, not a view into the stack
    assert not torch.equal(a, b)  # the distilled and scratch twins started equal and learnt differently


def test_a_stop_ends_every_student_at_one_step_and_keeps_the_epoch(digits, teacher_logits):
    _, students, shared, test = _pair(digits, teacher_logits, TrainConfig(epochs=3), mix=MIX[:3])
    stop = StopAfter(2)  # 3 steps an epoch: stopped inside the first epoch
    events = _by_student(list(train_stacked(students, shared, test=test, should_stop=stop)), 3)
    for evs in events:
        done = evs[-1]
        assert done.kind == "done" and done.reason == "stopped" and done.step == 2
        assert len(done.history) == 1 and "test_accuracy" in done.history[0]
    assert stop.calls == 3  # once a step, for the whole stack


def test_a_stop_before_the_first_step_leaves_the_initial_weights(digits, teacher_logits):
    _, students, shared, test = _pair(digits, teacher_logits, TrainConfig(epochs=2), mix=MIX[:2])
    before = [[p.clone() for p in s.model.parameters()] for s in students]
    events = list(train_stacked(students, shared, test=test, should_stop=lambda: True))
    assert [(j, e.kind, e.reason, e.history) for j, e in events] == [(0, "done", "stopped", []),
                                                                      (1, "done", "stopped", [])]
    for s, start in zip(students, before):
        assert all(torch.equal(p, q) for p, q in zip(s.model.parameters(), start))


def test_the_time_limit_is_each_students_share(digits, teacher_logits):
    _, students, shared, _ = _pair(digits, teacher_logits, TrainConfig(epochs=10_000, batch_size=8, max_seconds=0.1),
                                   mix=MIX[:2])
    t0 = time.perf_counter()
    events = _by_student(list(train_stacked(students, shared)), 2)
    assert 2 * 0.1 <= time.perf_counter() - t0 < 10  # two students: the stack may take twice the limit
    for evs in events:
        done = evs[-1]
        assert done.reason == "time limit" and 0 < done.step < done.total_steps
        # stopped mid-epoch (38 steps an epoch), that epoch is evaluated, its seconds the share elapsed / K
        assert all(h["seconds"] >= 0.1 for h in done.history[-1:])


def test_divergence_raises_before_the_step(digits, teacher_logits):
    _, students, shared, _ = _pair(digits, teacher_logits, TrainConfig(epochs=1, lr=0.0042), mix=MIX[:3])
    x = shared.x.clone()
    x[students[2].rows] = float("nan")  # only the third student's inputs: one bad student stops the stack
    before = [[p.clone() for p in s.model.parameters()] for s in students]
    with pytest.raises(TrainingDivergedError, match="learning rate 0.0042"):
        list(train_stacked(students, Split(x, shared.y, shared.teacher_logits)))
    for s, start in zip(students, before):  # checked before the step, as engine.train: nothing moved
        assert all(torch.equal(p, q) for p, q in zip(s.model.parameters(), start))


# ------------------------------------------------------------------------------------------ the loss kernel


@pytest.mark.parametrize("name, t, a, params, labelled, has_teacher", [
    ("hinton", 4.0, 0.9, {}, True, True), ("hinton", 2.0, 0.0, {}, True, True), ("hinton", 4.0, 0.5, {}, True, False),
    ("hinton", 3.0, 0.7, {}, False, True), ("soft-only", 8.0, 0.2, {}, True, True),
    ("source", 5.0, 0.3, {"lam": 0.25}, True, True), ("source", 1.0, 0.0, {}, False, True)])
def test_kl_ce_is_the_registered_loss_and_its_gradient(name, t, a, params, labelled, has_teacher):
    torch.manual_seed(0)
    z = (3 * torch.randn(16, 10)).requires_grad_()
    teacher, y = 3 * torch.randn(16, 10), torch.randint(0, 10, (16,))
    ref = make_loss(name, t, a, **params)(z, teacher if has_teacher else None, y if labelled else None)
    ref.total.backward()
    form = kl_ce_form(name, t, a, params, teacher=has_teacher, labels=labelled)
    total, hard, soft, grad = kl_ce(z.detach().t()[None], teacher.t()[None], y[None],
                                    stacked._LossTensors([form]))
    assert total.item() == pytest.approx(ref.total.item(), rel=1e-5)
    assert hard.item() == pytest.approx(ref.parts["hard"].item(), rel=1e-5, abs=0)
    assert soft.item() == pytest.approx(ref.parts["soft"].item(), rel=1e-5, abs=0)
    torch.testing.assert_close(grad[0].t(), z.grad, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("name, params, teacher, labels", [
    ("dkd", {}, True, True), ("logit-mse", {}, True, True), ("soft-only", {}, False, True),
    ("hinton", {}, False, False), ("hinton", {"lam": 1.0}, True, True)])
def test_losses_without_a_kl_ce_form_fall_back(name, params, teacher, labels):
    assert kl_ce_form(name, 4.0, 0.5, params, teacher=teacher, labels=labels) is None


def test_only_plain_mlps_stack(digits):
    shape, c = digits.input_shape, digits.num_classes
    assert stackable(build_model("mlp:32-16", shape, c)) and stackable(build_model("linear", shape, c))
    assert not stackable(build_model("mlp:32:dropout=0.2", shape, c))
    assert not stackable(build_model("cnn:small", shape, c))


def test_students_must_share_size_and_schedule(digits, teacher_logits):
    _, students, shared, _ = _pair(digits, teacher_logits, TrainConfig(epochs=1), mix=MIX[:2])
    other = dataclasses.replace(students[1], cfg=dataclasses.replace(students[1].cfg, lr=0.5))
    with pytest.raises(ValueError, match="schedule"):
        list(train_stacked([students[0], other], shared))
    shorter = dataclasses.replace(students[1], rows=students[1].rows[:-1])
    with pytest.raises(ValueError, match="size"):
        list(train_stacked([students[0], shorter], shared))


# --------------------------------------------------------------------------------------- the decision


def test_the_decision_follows_the_calibration_table():
    assert stacked.CALIBRATION, "the calibration table is measured, not empty"
    assert not stacked_pays(1, 7_400, 64)  # one student is never a stack
    assert stacked_pays(16, 7_400, 64)  # a digits sweep of mlp:100 students
    assert stacked_pays(16, 79_400, 784)  # a Fashion-MNIST sweep of mlp:100 students
    for width, macs, ratios in stacked.CALIBRATION:
        for k, ratio in ratios.items():
            assert stacked_pays(k, macs, width) == (ratio >= stacked.PAYS)


# ------------------------------------------------------------------------------------------------ run_all

BASE = DistillConfig(teacher="mlp:32", student="mlp:100", train=TrainConfig(epochs=3, lr=3e-3),
                     teacher_train=TrainConfig(epochs=4, lr=3e-3))


def test_plan_groups_what_can_step_together(digits):
    runs = [Run("a", BASE, True), Run("b", BASE.replace(temperature=2.0), False),
            Run("c", BASE.replace(student="cnn:small"), True),  # not an MLP
            Run("d", BASE.replace(loss="dkd"), False),  # no KL + CE form
            Run("e", BASE.replace(transfer_size=500), True),  # another transfer-set size
            Run("f", BASE.replace(train=dataclasses.replace(BASE.train, seed=3)), False),  # a seed of its own: fine
            Run("g", BASE.replace(train=dataclasses.replace(BASE.train, batch_size=64)), False)]
    with batch.stacking(True):
        groups = plan(runs, digits)
    assert [([r.key for r in g.runs], g.stacked, g.students) for g in groups] == [
        (["a", "b", "f"], True, 4), (["c"], False, 2), (["d"], False, 1), (["e"], True, 2), (["g"], False, 1)]
    with batch.stacking(False):
        assert not any(g.stacked for g in plan(runs, digits))
    assert plan(runs, digits)[0].stacked == stacked_pays(4, 64 * 100 + 100 * 10, 64)  # by default: measured


def test_large_groups_are_split_into_bounded_stacks(digits, monkeypatch):
    monkeypatch.setattr(batch, "STACK_PARAMS", 3 * (65 * 100 + 101 * 10))  # room for three mlp:100 students
    runs = [Run(i, BASE.replace(temperature=float(1 + i)), i in (0, 3)) for i in range(5)]
    with batch.stacking(True):
        groups = plan(runs, digits)
    assert [([r.key for r in g.runs], g.students, g.stacked) for g in groups] == [
        ([0, 1], 3, True), ([2, 3], 3, True), ([4], 1, False)]


def test_run_all_stacked_keeps_the_results_shape(digits, monkeypatch):
    calls = []
    real = batch.train_stacked
    monkeypatch.setattr(batch, "train_stacked", lambda students, *a, **kw: (calls.append(len(students)),
                                                                            real(students, *a, **kw))[1])
    runs = [Run(("x", i), BASE.replace(temperature=float(1 + i), transfer_size=400,
                                       train=dataclasses.replace(BASE.train, seed=i % 2)), i < 2) for i in range(4)]
    events = []
    with batch.stacking(True):
        results = run_all(runs, digits, on_progress=lambda key, role, ev: events.append((key, role, ev.kind)))
    assert calls == [6] and list(results) == [r.key for r in runs]
    for run in runs:
        res = results[run.key]
        assert res.config == run.config and (res.scratch is not None) == run.scratch
        for rep in (res.distilled, res.scratch) if run.scratch else (res.distilled,):
            assert rep.reason == "completed" and len(rep.history) == 3 and rep.params > 0 and rep.seconds > 0
            assert rep.test_accuracy == rep.history[-1]["test_accuracy"] > 0.5
            assert rep.test_logits.shape == (len(digits.y_test), 10) and len(rep.confusion) == 10
            assert rep.model[1].weight.shape == (100, 64)
        assert sum(1 for key, role, kind in events if key == run.key and kind == "done" and role != "teacher") \
            == 1 + run.scratch
    assert {role for _, role, _ in events} == {"teacher", "distilled", "scratch"}


def test_a_stop_drops_the_interrupted_stack(digits):
    runs = [Run(i, BASE.replace(temperature=float(1 + i)), i == 0) for i in range(3)]
    seen = []
    with batch.stacking(True):
        run_all(runs[:1], digits)  # the teacher is cached, so the stop below lands in the students' training
        results = run_all(runs, digits, on_progress=lambda key, role, ev: seen.append(ev.kind),
                          should_stop=lambda: len(seen) > 10)
    assert results == {} and "done" in seen


@pytest.mark.parametrize("pays, kept", [(True, 6), (False, 2)])
def test_a_stopped_sweep_returns_the_rows_that_finished(digits, pays, kept):
    """Serially the stop lands after two cells and the third is dropped; stacked, every cell of the stack had
    finished when the first row was reported, so all are kept (a stop never throws away finished work)."""
    cells = []
    with batch.stacking(pays):
        rows = run_sweep(BASE.replace(train=TrainConfig(epochs=1)), [1.0, 2.0, 4.0], [0.5], [0, 1], data=digits,
                         on_progress=lambda role, ev: cells.append(ev) if role == "cell" else None,
                         should_stop=lambda: len(cells) >= 2)
    assert len(rows) == kept and [c[0] for c in cells] == list(range(1, kept + 1)) and all(c[1] == 6 for c in cells)


def test_a_16_cell_sweep_agrees_with_serial_training(digits, monkeypatch):
    """The issue's equivalence criterion: per student within 1 point, mean absolute difference <= 0.3 points
    (digits has 360 test images: one image is 0.28 points)."""
    temps, alphas, seeds = [1.0, 2.0, 4.0, 8.0], [0.5, 0.9], [0, 1]
    trained = []
    monkeypatch.setattr(batch, "train_stacked", lambda s, *a, **kw: (trained.append(len(s)),
                                                                      stacked.train_stacked(s, *a, **kw))[1])
    out = {}
    for pays in (False, True):
        with batch.stacking(pays):
            out[pays] = run_sweep(BASE, temps, alphas, seeds, data=digits)
    assert trained == [18]  # 16 distilled students and each seed's scratch twin, one stack
    diffs = []
    for serial, stack in zip(out[False], out[True]):
        assert (serial["temperature"], serial["alpha"], serial["seed"]) == \
               (stack["temperature"], stack["alpha"], stack["seed"])
        for key in ("student_accuracy", "scratch_accuracy"):
            diffs.append(100 * abs(serial[key] - stack[key]))
    assert len(out[True]) == 16 and max(diffs) <= 1.0 and statistics.fmean(diffs) <= 0.3, diffs
    assert statistics.fmean(r["student_accuracy"] for r in out[True]) > 0.85  # real, trained students


@pytest.mark.parametrize("spec", ["mlp:32", "mlp:10", "linear"])  # a first layer 10 wide takes another MKL kernel
def test_the_stacks_evaluation_is_each_models_own(digits, teacher_logits, spec):
    singles, students, shared, test = _pair(digits, teacher_logits, TrainConfig(epochs=2), spec=spec, mix=MIX[:3])
    events = _by_student(list(train_stacked(students, shared, test=test)), 3)
    for student, evs in zip(students, events):
        logits = predict_logits(student.model, digits.x_test)
        assert torch.equal(student.test_logits, logits)
        assert evs[-1].metrics["test_accuracy"] == accuracy(logits, digits.y_test)
