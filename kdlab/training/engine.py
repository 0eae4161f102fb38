"""The training loop: in-memory tensors, shuffled index batches, precomputed teacher logits.

Why not Dataset/DataLoader: per-example __getitem__ plus collation costs ~7x the arithmetic of a small MLP
(docs/ARCHITECTURE.md, "Speed"). The inputs are never augmented, so the teacher's logits are computed once per split by
the caller and sliced here with the same index batch as the inputs.

``train`` is a generator of ``Event``s so that a UI, a CLI and tests can each consume progress their way.

A plain MLP with a loss of the KL + CE family (hinton, source, soft-only) on the CPU trains as a stack of one
(``kdlab.training.stacked``, the same events): its step has no autograd graph and a closed-form loss gradient,
about half the ~100 small ops of the autograd step below, which trains everything else.
"""
from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import torch
from torch import nn

from kdlab.base.config import TrainConfig
from kdlab.base.errors import ConfigError, TrainingDivergedError
from kdlab.training.losses import LOSSES
from kdlab.training.metrics import accuracy, agreement, predict_logits
from kdlab.training.models import macs_per_example
from kdlab.training.optim import FusedAdam
from kdlab.training.threads import auto_threads

LossFn = Callable[[torch.Tensor, torch.Tensor | None, torch.Tensor | None], "object"]
MAX_STEP_EVENTS = 200  # per run: enough for a smooth live curve; more only costs the UI redraws
MAX_EVALUATIONS = 50  # per run: test metrics (a full pass over the test split) at most this often
LEAN = True  # MLPs with a KL + CE loss train as a stack of one: no autograd, a closed-form loss gradient


@dataclass
class Split:
    x: torch.Tensor  # (N, *input_shape)
    y: torch.Tensor | None  # (N,) or None for an unlabelled transfer set
    teacher_logits: torch.Tensor | None = None  # (N, C), precomputed


@dataclass
class Event:
    kind: str  # "step" (running averages), "epoch" (plus test metrics) or "done"
    epoch: int  # 1-based; fractional progress is step / total_steps
    step: int
    total_steps: int
    metrics: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)  # per-epoch metrics so far
    reason: str = ""  # for "done": "completed", "stopped" or "time limit"


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer | FusedAdam:
    return optimizer_for([p for p in model.parameters() if p.requires_grad], cfg)


def optimizer_for(params: list[torch.Tensor], cfg: TrainConfig) -> torch.optim.Optimizer | FusedAdam:
    """The configured optimiser over ``params`` (the stacked trainer passes its (K, ...) tensors)."""
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, foreach=True)
    return FusedAdam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def resolve_device(name: str) -> torch.device:
    """The torch device ``name`` names; a ConfigError (not a torch crash) when that CUDA GPU is absent."""
    if name.startswith("cuda"):
        index = int(name.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():  # 0 on CPU-only builds and machines without a GPU
            raise ConfigError(f"device {name!r} was asked for, but this machine has "
                              f"{torch.cuda.device_count()} usable CUDA GPU(s); use --device cpu")
    return torch.device(name)


def lr_at(cfg: TrainConfig, step: int, total_steps: int) -> float:
    """Learning rate for a step under the configured schedule."""
    progress = step / max(1, total_steps)
    if cfg.schedule == "cosine":
        return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * progress))
    if cfg.schedule == "step":  # x0.1 at half and at three quarters of the run
        return cfg.lr * (0.1 ** ((progress >= 0.5) + (progress >= 0.75)))
    return cfg.lr


def planned_steps(n_examples: int, cfg: TrainConfig) -> tuple[int, int, int]:
    """(steps per epoch, total optimizer steps, epochs) of a run over ``n_examples``: ``cfg.steps`` when set,
    else ``cfg.epochs`` passes; the last epoch of a step budget may be partial."""
    per_epoch = max(1, math.ceil(n_examples / cfg.batch_size))
    total = cfg.steps if cfg.steps is not None else per_epoch * cfg.epochs
    return per_epoch, total, math.ceil(total / per_epoch)


def train(model: nn.Module, data: Split, loss_fn: LossFn, cfg: TrainConfig, *, test: Split | None = None,
          should_stop: Callable[[], bool] | None = None) -> Iterator[Event]:
    """Train ``model`` in place, yielding step, epoch and a final done event.

    Step events carry the means over the steps since the previous step event (so a curve of them has no
    cliffs at epoch boundaries); epoch events carry the epoch's means plus the test metrics and come at most
    ``MAX_EVALUATIONS`` times (a 1 000-step budget on 50 images is 500 epochs). Stops early, still yielding
    "done", when ``should_stop()`` turns true (checked every step) or when ``cfg.max_seconds`` has passed;
    the epoch it stopped in is then evaluated, so what was learnt is kept. Raises TrainingDivergedError on a
    non-finite loss.
    """
    device = resolve_device(cfg.device)
    lean = _lean_student(model, data, loss_fn, cfg, device) if LEAN else None
    if lean is not None:
        yield from (event for _, event in _stacked().train_stacked([lean], data, test=test, should_stop=should_stop))
        return
    model.to(device)
    if device.type == "cpu":
        auto_threads(macs_per_example(model, tuple(data.x.shape[1:])), cfg.batch_size)
    n = len(data.x)
    _, total_steps, epochs = planned_steps(n, cfg)
    log_every = step_event_interval(total_steps)
    eval_every = max(1, math.ceil(epochs / MAX_EVALUATIONS))
    optimizer = make_optimizer(model, cfg)
    gen = torch.Generator().manual_seed(cfg.seed)  # own generator: the order does not depend on global state
    deadline = time.monotonic() + cfg.max_seconds
    history: list[dict[str, float]] = []
    step, reason, t0 = 0, "completed", time.perf_counter()
    last = None  # the previous epoch's running means: evaluated if a stop falls due right after it

    for epoch in range(1, epochs + 1):
        model.train()
        window, whole = _Running(), _Running()
        for idx in torch.randperm(n, generator=gen).split(cfg.batch_size):
            if step == total_steps:
                break
            reason = halt_reason(should_stop, deadline)
            if reason != "completed":
                break
            _set_lr(optimizer, lr_at(cfg, step, total_steps))
            out, logits, y = _train_step(model, optimizer, loss_fn, data, idx, device, cfg)
            step += 1
            window.add(out, logits, y)
            if step % log_every == 0:
                yield Event("step", epoch, step, total_steps, window.means())
                window = whole.absorb(window)
        whole.absorb(window)
        if whole.count == 0:  # stopped before this epoch's first step
            if (ended := epoch_before_stop(reason, epoch, last, history)) is None:
                break
            epoch, whole = ended
        if reason != "completed" or epoch % eval_every == 0 or epoch == epochs:
            metrics = whole.means() | _test_metrics(model, test, device) | {"seconds": time.perf_counter() - t0}
            history.append({"epoch": epoch, "step": step, **metrics})
            yield Event("epoch", epoch, step, total_steps, metrics, list(history))
        if reason != "completed":
            break
        last = whole
    yield Event("done", history[-1]["epoch"] if history else 0, step, total_steps,
                history[-1] if history else {}, history, reason)


def step_event_interval(total_steps: int) -> int:
    """Steps between two step events: at most MAX_STEP_EVENTS a run (the Playground's lockstep pauses there)."""
    return max(1, total_steps // MAX_STEP_EVENTS)


def epoch_before_stop(reason: str, epoch: int, last: Any, history: list[dict[str, float]]) -> tuple[int, Any] | None:
    """A stop or time limit seen before epoch ``epoch``'s first step: the epoch that had just ended and its running
    means (``last``), to be evaluated now, unless it was evaluated already or no epoch ran (then None).
    ``history`` is the trainer's evaluations so far (one student's, for the stacked trainer)."""
    if reason == "completed" or last is None or history and history[-1]["epoch"] == epoch - 1:
        return None
    return epoch - 1, last


def halt_reason(should_stop: Callable[[], bool] | None, deadline: float) -> str:
    """"stopped" once ``should_stop()`` is true, "time limit" past ``deadline`` (time.monotonic), else "completed"."""
    if should_stop is not None and should_stop():
        return "stopped"
    return "time limit" if time.monotonic() > deadline else "completed"


def _stacked():
    from kdlab.training import stacked  # imported here: it builds on this module

    return stacked


def _lean_student(model: nn.Module, data: Split, loss_fn: LossFn, cfg: TrainConfig, device: torch.device):
    """This run as a stack of one (``kdlab.training.stacked``) when it can take that lean step: a plain MLP on
    the CPU and a registered loss of the KL + CE family; else None (the autograd loop below trains it)."""
    if device.type != "cpu" or not isinstance(loss_fn, functools.partial) or loss_fn.args:
        return None
    stacked = _stacked()
    if "forward" in vars(model) or not stacked.stackable(model) or not all(p.requires_grad for p in model.parameters()):
        return None
    name = next((n for n in LOSSES.names() if LOSSES.get(n).fn is loss_fn.func), None)
    kw = dict(loss_fn.keywords)
    form = None if name is None else stacked.kl_ce_form(
        name, kw.pop("temperature", 4.0), kw.pop("alpha", 0.9), kw, teacher=data.teacher_logits is not None,
        labels=data.y is not None)
    return None if form is None else stacked.Student(model, torch.arange(len(data.x)), form, data.y is not None, cfg)


def _train_step(model: nn.Module, optimizer: torch.optim.Optimizer | FusedAdam, loss_fn: LossFn, data: Split,
                idx: torch.Tensor, device: torch.device, cfg: TrainConfig):
    # index_select rather than x[idx]: ~4x faster for a row gather on CPU (measured: 10 vs 40 us per batch)
    x = data.x.index_select(0, idx).to(device, non_blocking=True)  # (B, *input_shape)
    y = data.y.index_select(0, idx).to(device) if data.y is not None else None  # (B,)
    t = data.teacher_logits.index_select(0, idx).to(device) if data.teacher_logits is not None else None  # (B, C)
    logits = model(x)  # (B, C)
    out = loss_fn(logits, t, y)
    total = out.total.item()  # one op; torch.isfinite(...) then bool() costs five
    if not math.isfinite(total):  # checked before the step, so a diverging run leaves the weights as they were
        raise diverged(total, cfg)
    optimizer.zero_grad(set_to_none=True)
    out.total.backward()
    optimizer.step()
    return out, logits.detach(), y


def diverged(total: float, cfg: TrainConfig) -> TrainingDivergedError:
    return TrainingDivergedError(f"the loss became {total} (learning rate {cfg.lr}): lower the learning rate, "
                                 "or move the temperature away from extreme values")


def _set_lr(optimizer: torch.optim.Optimizer | FusedAdam, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def _test_metrics(model: nn.Module, test: Split | None, device: torch.device) -> dict[str, float]:
    if test is None or test.y is None:
        return {}
    logits = predict_logits(model, test.x.to(device)).cpu()
    metrics = {"test_accuracy": accuracy(logits, test.y)}
    if test.teacher_logits is not None:
        metrics["agreement"] = agreement(logits, test.teacher_logits)
    return metrics


class _Running:
    """Sums of the loss parts and the training accuracy over some steps (a window, or an epoch).

    The sums stay one tensor, so a step costs one stack and two adds, no Python-float conversion;
    ``means()`` converts."""

    def __init__(self) -> None:
        self.count = 0
        self.names: tuple[str, ...] = ()
        self.sums = torch.zeros(0)
        self.correct = torch.zeros((), dtype=torch.long)
        self.seen = 0

    def add(self, out, logits: torch.Tensor, y: torch.Tensor | None) -> None:
        values = torch.stack([out.total, *out.parts.values()]).detach()  # (1 + parts,), no graph kept
        self._add_sums(("train_loss", *out.parts), values, 1)
        if y is not None:
            self.correct += (logits.argmax(1) == y).sum().cpu()
            self.seen += len(y)

    def absorb(self, other: "_Running") -> "_Running":
        """Add ``other``'s sums to this one's; returns a fresh, empty window."""
        if other.count:
            self._add_sums(other.names, other.sums, other.count)
            self.correct += other.correct
            self.seen += other.seen
        return _Running()

    def _add_sums(self, names: tuple[str, ...], sums: torch.Tensor, count: int) -> None:
        if self.count == 0:
            self.names, self.sums = names, sums.clone()
        else:
            self.sums += sums
        self.count += count

    def means(self) -> dict[str, float]:
        m = dict(zip(self.names, (self.sums / max(1, self.count)).tolist()))
        if self.seen:
            m["train_accuracy"] = self.correct.item() / self.seen
        return m
