"""Tests for kdlab.training.metrics against hand computations on tiny tensors."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from kdlab.training.metrics import (
    accuracy,
    agreement,
    confusion_matrix,
    evaluate,
    latency_per_example,
    mean_kl_to_teacher,
    per_class_accuracy,
    predict_logits,
    with_bias,
)


pytestmark = pytest.mark.usefixtures("kdlab_cache", "torch_one_thread")


def one_hot_logits(preds: list[int], num_classes: int) -> torch.Tensor:
    """Logits whose argmax is ``preds`` (5 on the predicted class, 0 elsewhere)."""
    return torch.nn.functional.one_hot(torch.tensor(preds), num_classes).float() * 5.0


Y = torch.tensor([0, 0, 1, 1, 1, 2])
PRED = [0, 1, 1, 1, 2, 2]  # right, wrong, right, right, wrong, right


def test_accuracy():
    assert accuracy(one_hot_logits(PRED, 3), Y) == pytest.approx(4 / 6)
    assert accuracy(one_hot_logits([0, 0, 1, 1, 1, 2], 3), Y) == 1.0


def test_confusion_by_hand():
    conf = confusion_matrix(one_hot_logits(PRED, 3), Y, 3)
    assert conf.tolist() == [
        [1, 1, 0],  # true 0: one right, one predicted as 1
        [0, 2, 1],  # true 1: two right, one predicted as 2
        [0, 0, 1],
    ]
    assert conf.sum() == len(Y)


def test_confusion_with_an_absent_class_and_per_class_accuracy():
    conf = confusion_matrix(one_hot_logits(PRED, 4), Y, 4)  # class 3 never occurs
    assert conf.shape == (4, 4) and conf[3].sum() == 0
    per_class = per_class_accuracy(conf)
    assert per_class[:3].tolist() == pytest.approx([1 / 2, 2 / 3, 1.0])
    assert math.isnan(per_class[3])


def test_agreement_by_hand():
    student = one_hot_logits([0, 1, 2, 2], 3)
    teacher = one_hot_logits([0, 1, 1, 0], 3)
    assert agreement(student, teacher) == 0.5
    assert agreement(teacher, teacher) == 1.0


def test_kl_by_hand():
    """KL(p || q) = sum p log(p/q) with p = softmax(t/T), q = softmax(s/T), averaged over rows."""
    t = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
    s = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    T = 2.0

    def kl_row(tr, sr):
        p = [math.exp(v / T) for v in tr]
        q = [math.exp(v / T) for v in sr]
        p = [v / sum(p) for v in p]
        q = [v / sum(q) for v in q]
        return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))

    expected = (kl_row([2, 0], [0, 0]) + kl_row([0, 0], [1, 0])) / 2
    assert mean_kl_to_teacher(s, t, temperature=T) == pytest.approx(expected, rel=1e-5)
    assert mean_kl_to_teacher(t, t) == pytest.approx(0.0, abs=1e-7)
    assert mean_kl_to_teacher(s, t) > 0
    # the teacher is the reference: KL is not symmetric
    assert mean_kl_to_teacher(s, t) != pytest.approx(mean_kl_to_teacher(t, s))


def test_with_bias():
    logits = torch.zeros(3, 4)
    biased = with_bias(logits, ((1, 2.0), (3, -1.5)))
    assert biased[:, 1].tolist() == [2.0] * 3 and biased[:, 3].tolist() == [-1.5] * 3
    assert biased[:, [0, 2]].abs().sum() == 0
    assert logits.abs().sum() == 0  # the input is not modified
    assert with_bias(logits, ()) is logits


def test_with_bias_moves_predictions():
    logits = torch.tensor([[1.0, 0.9], [1.0, 0.0]])
    assert with_bias(logits, ((1, 0.5),)).argmax(1).tolist() == [1, 0]


def test_evaluate_collects_everything():
    student = one_hot_logits(PRED, 3)
    teacher = one_hot_logits([0, 0, 1, 1, 1, 1], 3)
    ev = evaluate(student, Y, 3, teacher)
    assert ev.accuracy == pytest.approx(4 / 6)
    assert ev.confusion == confusion_matrix(student, Y, 3).tolist()
    assert ev.per_class_accuracy == pytest.approx([0.5, 2 / 3, 1.0])
    assert ev.agreement == pytest.approx(3 / 6)  # agree on examples 0, 2, 3
    assert ev.kl_to_teacher == pytest.approx(mean_kl_to_teacher(student, teacher))
    bare = evaluate(student, Y, 3)
    assert bare.agreement is None and bare.kl_to_teacher is None


def test_predict_logits_batches_evaluates_and_restores_mode():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.Linear(8, 3))
    model.train()
    x = torch.randn(10, 4)
    a = predict_logits(model, x, batch=3)  # 4 batches, the last one short
    b = predict_logits(model, x, batch=100)
    assert a.shape == (10, 3) and torch.allclose(a, b, atol=1e-6)  # dropout was off: deterministic
    assert model.training
    assert not a.requires_grad


def test_latency_is_a_small_positive_number():
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    lat = latency_per_example(model, (1, 8, 8), batch=32, repeats=3)
    assert 0 < lat < 0.1
