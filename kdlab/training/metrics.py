"""Evaluation: accuracy, confusion, agreement and KL with the teacher, latency. Tensors in, numbers out."""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

EVAL_BATCH = 4096  # large batches: evaluation is matmul-bound, and 4096x1200 floats is only ~20 MB


@torch.inference_mode()
def predict_logits(model: nn.Module, x: torch.Tensor, batch: int = EVAL_BATCH) -> torch.Tensor:
    """(N, C) logits in eval mode (dropout off); restores the model's previous mode."""
    was_training = model.training
    model.eval()
    try:
        return torch.cat([model(x[i:i + batch]) for i in range(0, len(x), batch)])
    finally:
        model.train(was_training)


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    return (logits.argmax(1) == y).float().mean().item()


def confusion_matrix(logits: torch.Tensor, y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(C, C) counts; rows are the true class, columns the predicted one."""
    pred = logits.argmax(1)
    return torch.bincount(y * num_classes + pred, minlength=num_classes**2).reshape(num_classes, num_classes)


def per_class_accuracy(confusion: torch.Tensor) -> torch.Tensor:
    """(C,) recall of each class; NaN for a class absent from the data."""
    support = confusion.sum(1).double()
    return confusion.diag().double() / support.where(support > 0, torch.tensor(float("nan"), dtype=torch.double))


def agreement(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> float:
    """Fraction of examples where student and teacher predict the same class (top-1)."""
    return (student_logits.argmax(1) == teacher_logits.argmax(1)).float().mean().item()


def mean_kl_to_teacher(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 1.0) -> float:
    """Mean KL(teacher || student) in nats at temperature T."""
    log_p = F.log_softmax(teacher_logits / temperature, dim=1)
    log_q = F.log_softmax(student_logits / temperature, dim=1)
    return F.kl_div(log_q, log_p, log_target=True, reduction="batchmean").item()


def with_bias(logits: torch.Tensor, bias: tuple[tuple[int, float], ...]) -> torch.Tensor:
    """Logits with a constant added to chosen classes (Hinton 2015 §3's fix for an omitted class)."""
    if not bias:
        return logits
    logits = logits.clone()
    for cls, b in bias:
        logits[:, cls] += b
    return logits


def latency_per_example(model: nn.Module, input_shape: tuple[int, ...], batch: int = 256, repeats: int = 5) -> float:
    """Median seconds per example of a batched CPU forward pass."""
    x = torch.randn(batch, *input_shape)
    times = []
    with torch.inference_mode():
        model.eval()
        model(x)  # warm-up: first call pays allocator and kernel selection costs
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2] / batch


@dataclass
class Evaluation:
    accuracy: float
    confusion: list[list[int]]  # (C, C), rows true class
    per_class_accuracy: list[float]
    agreement: float | None  # with the teacher, when its logits are given
    kl_to_teacher: float | None


def evaluate(logits: torch.Tensor, y: torch.Tensor, num_classes: int,
             teacher_logits: torch.Tensor | None = None) -> Evaluation:
    conf = confusion_matrix(logits, y, num_classes)
    return Evaluation(
        accuracy=accuracy(logits, y),
        confusion=conf.tolist(),
        per_class_accuracy=per_class_accuracy(conf).tolist(),
        agreement=None if teacher_logits is None else agreement(logits, teacher_logits),
        kl_to_teacher=None if teacher_logits is None else mean_kl_to_teacher(logits, teacher_logits),
    )
