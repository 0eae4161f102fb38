"""Tests for kdlab.runs.distill.run_distill on digits: reports, the JSON contract, the baseline, transfer sets."""
from __future__ import annotations

import json
import math

import pytest
import torch

from kdlab.runs import distill
from kdlab.stores.teacher_cache import TeacherStore
from kdlab.base.config import DistillConfig, TrainConfig, distill_from_dict
from kdlab.base.errors import ConfigError
from kdlab.runs.teacher import RunStopped

CFG = DistillConfig(
    dataset="digits", teacher="mlp:128", student="mlp:32", loss="hinton", temperature=4.0, alpha=0.9,
    train=TrainConfig(epochs=3, lr=1e-2), teacher_train=TrainConfig(epochs=6, lr=1e-2),
)
STUDENT_KEYS = {"test_accuracy", "agreement", "params", "seconds", "history"}
HISTORY_KEYS = {"epoch", "step", "train_loss", "test_accuracy"}


pytestmark = pytest.mark.usefixtures("kdlab_cache", "torch_one_thread")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One teacher for the module: trained by the first test that needs it, then read from disk."""
    return TeacherStore(tmp_path_factory.mktemp("distill-cache"))


class Spy:
    """Records what run_distill hands to engine.train and build_model, by role."""

    def __init__(self, monkeypatch):
        self.splits, self.initial = [], []
        real_train, real_build = distill.train, distill.build_model

        def train(model, data, loss_fn, cfg, **kw):
            self.splits.append(data)
            return real_train(model, data, loss_fn, cfg, **kw)

        def build_model(spec, shape, n):
            model = real_build(spec, shape, n)
            self.initial.append({k: v.clone() for k, v in model.state_dict().items()})
            return model

        monkeypatch.setattr(distill, "train", train)
        monkeypatch.setattr(distill, "build_model", build_model)


def run(cfg=CFG, **kw):
    kw.setdefault("scratch", True)
    return distill.run_distill(cfg, **kw)


def test_distill_with_scratch_twin(digits, store, monkeypatch):
    spy = Spy(monkeypatch)
    progress = []
    result = run(store=store, data=digits, on_progress=lambda role, e: progress.append((role, e)))
    s, b = result.distilled, result.scratch
    assert (s.role, b.role) == ("distilled", "scratch")
    assert s.reason == b.reason == "completed"
    assert s.test_accuracy > 0.85 and b.test_accuracy > 0.8
    assert s.params == b.params == (64 * 32 + 32) + (32 * 10 + 10) and s.macs == 64 * 32 + 32 * 10
    assert len(s.history) == len(b.history) == CFG.train.epochs
    assert len(s.confusion) == 10 and sum(map(sum, s.confusion)) == len(digits.y_test)
    assert s.test_accuracy == pytest.approx(sum(s.confusion[i][i] for i in range(10)) / len(digits.y_test))
    assert s.kl_to_teacher >= 0 and 0 < s.latency_s < 0.01
    # same seed -> the distilled and the scratch student start from identical weights
    assert len(spy.initial) == 2
    assert all(torch.equal(spy.initial[0][k], spy.initial[1][k]) for k in spy.initial[0])
    # the scratch student never sees the teacher's soft targets; the distilled one does
    assert all(h["soft"] == 0 for h in b.history) and all(h["soft"] > 0 for h in s.history)
    roles = {role for role, _ in progress}
    assert {"distilled", "scratch"} <= roles
    assert [e.kind for role, e in progress if role == "scratch"][-1] == "done"


def test_summary_is_the_json_contract(digits, store):
    result = run(store=store, data=digits)
    summary = json.loads(json.dumps(result.summary(), allow_nan=False))  # strict JSON: no NaN, no tensors
    assert set(summary) == {"config", "teacher", "student", "scratch", "baseline"}
    assert summary["baseline"] == summary["scratch"]  # the old name stays readable
    assert {"source", "test_accuracy", "params", "seconds"} <= set(summary["teacher"])
    assert summary["teacher"]["source"] in ("trained", "cache")
    for role in ("student", "baseline"):
        part = summary[role]
        assert STUDENT_KEYS <= set(part)
        assert set(part) == set(summary["student"])  # baseline: the same fields as student
        assert len(part["history"]) == CFG.train.epochs and all(HISTORY_KEYS <= set(h) for h in part["history"])
        assert [h["epoch"] for h in part["history"]] == [1, 2, 3]
        for acc in [part["test_accuracy"], part["agreement"], *(h["test_accuracy"] for h in part["history"])]:
            assert 0.0 <= acc <= 1.0
        assert isinstance(part["params"], int) and part["seconds"] > 0
    assert 0.0 <= summary["teacher"]["test_accuracy"] <= 1.0
    assert distill_from_dict(summary["config"]) == CFG  # the report says exactly what was run
    assert "baseline" not in run(store=store, data=digits, scratch=False).summary()


def test_teacher_source_and_seconds(digits, tmp_path):
    store = TeacherStore(tmp_path / "fresh")
    first = run(store=store, data=digits, scratch=False).summary()["teacher"]
    assert first["source"] == "trained"
    second = run(store=store, data=digits, scratch=False).summary()["teacher"]
    assert second["source"] == "cache" and second["key"] == first["key"]  # the contract: trained | cache
    from kdlab.runs.teacher import MEMORY

    MEMORY.clear()
    third = run(store=store, data=digits, scratch=False).summary()["teacher"]
    assert third["source"] == "cache" and third["test_accuracy"] == first["test_accuracy"]
    assert third["seconds"] < first["seconds"]


def test_transfer_size(digits, store, monkeypatch):
    spy = Spy(monkeypatch)
    result = run(CFG.replace(transfer_size=100), store=store, data=digits)
    distilled, scratch = spy.splits
    assert len(distilled.x) == len(scratch.x) == 100
    assert torch.equal(distilled.x, scratch.x)  # the baseline gets the same data
    assert result.distilled.reason == "completed"
    # the teacher logits still line up with their images: the teacher's predictions on them are its own
    teacher = result.teacher
    from kdlab.training.metrics import predict_logits

    assert torch.allclose(predict_logits(teacher.model, distilled.x), distilled.teacher_logits, atol=1e-5)


def test_omit_classes(digits, store, monkeypatch):
    spy = Spy(monkeypatch)
    result = run(CFG.replace(omit_classes=(3,)), store=store, data=digits)
    distilled, scratch = spy.splits
    assert 3 not in distilled.y.tolist() and 3 not in scratch.y.tolist()
    assert len(distilled.y) == int((digits.y_train != 3).sum())
    # a student that never saw a 3 with its label cannot name one; the teacher's soft targets still hint
    assert result.scratch.per_class_accuracy[3] < 0.2
    assert len(result.distilled.per_class_accuracy) == 10  # still scored on every class


def test_unlabelled_transfer_set(digits, store, monkeypatch):
    spy = Spy(monkeypatch)
    result = run(CFG.replace(use_labels=False, loss="soft-only"), store=store, data=digits)
    distilled, scratch = spy.splits
    assert distilled.y is None and distilled.teacher_logits is not None
    assert scratch.y is not None  # the baseline is trained on labels, as always
    assert all(h["hard"] == 0 for h in result.distilled.history)
    assert result.distilled.agreement > 0.8
    json.dumps(result.summary(), allow_nan=False)


def test_eval_bias_only_changes_evaluation(digits, store):
    plain = run(store=store, data=digits, scratch=False)
    biased = run(CFG.replace(eval_bias=((3, 100.0),)), store=store, data=digits, scratch=False)
    strip = lambda h: [{k: v for k, v in e.items() if k != "seconds"} for e in h]  # noqa: E731
    assert strip(biased.distilled.history) == strip(plain.distilled.history)  # training is untouched
    assert (biased.distilled.test_logits.argmax(1) == 3).all()
    assert biased.distilled.per_class_accuracy[3] == 1.0
    assert biased.distilled.test_accuracy == pytest.approx(float((digits.y_test == 3).float().mean()))
    assert torch.allclose(biased.distilled.test_logits[:, 3] - 100.0, plain.distilled.test_logits[:, 3], atol=1e-4)


@pytest.mark.parametrize("changes, words", [
    ({"omit_classes": (10,)}, "omitted class 10"),
    ({"eval_bias": ((-1, 1.0),)}, "bias class .*-1"),
    ({"eval_bias": ((10, 1.0),)}, "bias class 10"),
    ({"transfer_size": 10**6}, "transfer set"),
    ({"omit_classes": tuple(range(10))}, "leaves no"),
    ({"student": "cnn:small", "dataset": "moons"}, "image"),
])
def test_bad_classes_and_sizes_fail_before_any_work(changes, words, digits, tmp_path):
    store = TeacherStore(tmp_path / "untouched")
    from kdlab.data import load_dataset

    data = load_dataset("moons") if changes.get("dataset") == "moons" else digits
    with pytest.raises(ConfigError, match=words):
        run(CFG.replace(**changes), store=store, data=data)
    assert not store.dir.exists()  # no teacher was trained for a run that could never start


@pytest.mark.parametrize("changes, words", [
    ({"dataset": "imagenet"}, "unknown dataset"), ({"teacher": "resnet"}, "valid forms"),
    ({"student": "mlp:"}, "valid forms"), ({"loss": "kd"}, "unknown loss"), ({"temperature": 0.0}, "temperature"),
    ({"alpha": 1.5}, "alpha"), ({"train": TrainConfig(epochs=0)}, "epochs"),
    ({"loss_params": {"lam": 0.1}}, "no parameter 'lam'"), ({"loss": "source", "loss_params": {"lam": -1}}, "lam"),
    ({"loss": "dkd", "use_labels": False}, "needs labels"),
])
def test_validate(changes, words):
    with pytest.raises(ConfigError, match=words):
        distill.validate(CFG.replace(**changes))


def test_cuda_without_a_gpu_fails_before_any_work(no_gpu):
    with pytest.raises(ConfigError, match="cuda"):
        distill.validate(CFG.replace(train=TrainConfig(device="cuda")))


def test_stopped_before_an_epoch_is_run_stopped(digits, store):
    run(store=store, data=digits, scratch=False)  # make sure the teacher is cached: the stop hits the student
    with pytest.raises(RunStopped, match="distilled"):
        run(store=store, data=digits, should_stop=lambda: True)


def test_stopped_after_an_epoch_reports_it(digits, store):
    calls = []
    steps_per_epoch = math.ceil(len(digits.x_train) / 128)
    run(store=store, data=digits, scratch=False)
    result = run(store=store, data=digits, scratch=False,
                 should_stop=lambda: calls.append(1) or len(calls) > steps_per_epoch + 2)
    assert result.distilled.reason == "stopped" and len(result.distilled.history) == 2


def test_unwritable_cache_run_completes_with_a_warning(digits, tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("KDLAB_CACHE_DIR", str(blocker / "cache"))
    result = run(CFG.replace(teacher="mlp:48"), data=digits, scratch=False)
    assert result.teacher.source == "trained" and result.teacher.warnings
    assert result.distilled.reason == "completed"
