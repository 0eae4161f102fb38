"""K small MLP students trained in lockstep, as one: the stacked trainer.

Each step of ``engine.train`` costs about 100 small torch ops, which is more than the matmuls of a small MLP
take. Students of one architecture trained with one batch size, budget and optimiser can share those ops:
their weights become (K, out, in) tensors, a layer's forward is one batched matmul, the loss and its gradient
are computed for all K at once in closed form, and one fused optimiser step updates all of them (Adam and SGD
are elementwise, so a step over the stacked tensors is K separate steps).

What stays each student's own, exactly as ``engine.train`` would do it alone:

* its initial weights: the caller builds each model as the single trainer would (``torch.manual_seed(seed)``
  then ``build_model``) and the stack copies them in;
* its batch order: ``torch.randperm(n, generator=Generator().manual_seed(seed))`` per epoch over its own
  transfer set, given as rows of the shared split. Students that share the seed and the rows share the
  batches, and their first layer is then one wide matmul (faster per student than K small ones);
* its loss settings (T, the weights of the soft and hard terms: the ``hinton``, ``source`` and ``soft-only``
  losses, see ``kl_ce_form``), its metrics, step and epoch events, history and stop reason.

Layout: weights are (K, out, in), nn.Linear's own (so each model's parameters can be views into the stack),
which is also where the weight gradient g^T·x lands without a transpose (16 students of mlp:100 on 784 inputs:
4.2 ms a step for that bmm against 5.7 ms into (K, in, out)). Activations are kept transposed, (K, features, B),
so the class-axis softmax runs over a middle axis with B contiguous (the fast CPU kernel, see
``losses.log_softmax``) and each source group's first-layer output is a contiguous slice. The first layer's
wide matmul equals ``nn.Linear``'s bit for bit (the same MKL kernel and summation order, measured for every
width but 10); the deeper layers' batched matmuls, the closed-form loss gradient and the hand-written backward
differ from the single trainer's by float rounding only (tests/test_stacked.py).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from kdlab.base.config import TrainConfig
from kdlab.training import engine
from kdlab.training.engine import Event, Split
from kdlab.training.metrics import EVAL_BATCH, accuracy, agreement, predict_logits
from kdlab.training.models import macs_per_example
from kdlab.training.threads import auto_threads

PARTS = ("train_loss", "hard", "soft")  # the names engine.train's step metrics carry for these losses

# When a stack is faster than training its students one after another: engine.train's time per step of one
# student (for these MLPs its lean step, a stack of one) over the stack's time per student step, measured by
# ``python -m scripts.calibrate_stacked`` on this 2-core VM (the thread count engine.train picks; each student
# its own seed, so no shared first layer: the stack's worst case). Rows: (input width, MACs per example, {K: ratio}).
CALIBRATION: tuple[tuple[int, int, dict[int, float]], ...] = (  # measured 2026-12-01 under load 6-11 (others' jobs)
    (64, 740, {2: 1.53, 4: 2.61, 8: 4.86, 16: 4.4}),
    (64, 7400, {2: 1.28, 4: 2.68, 8: 2.67, 16: 3.67}),
    (64, 112200, {2: 1.31, 4: 1.37, 8: 0.97, 16: 1.41}),
    (64, 699200, {2: 1.8, 4: 2.69, 8: 2.82, 16: 3.82}),
    (784, 8040, {2: 1.97, 4: 1.79, 8: 1.54, 16: 2.65}),
    (784, 79400, {2: 0.99, 4: 1.69, 8: 1.18, 16: 1.35}),
    (784, 328200, {2: 1.04, 4: 1.15, 8: 1.3, 16: 1.21}),
    (784, 1275200, {2: 2.02, 4: 1.76, 8: 2.59, 16: 3.58}),
)
PAYS = 1.1  # a stack must be measured at least this much faster: below it, noise could make it the slower way


def stacked_pays(k: int, macs: int, width: int) -> bool:
    """Whether training ``k`` students of ``macs`` multiply-accumulates per example on inputs ``width`` wide
    as one stack is measurably faster than one after another: the nearest calibrated model (in log width,
    then log MACs), its ratio interpolated in log K (held at the largest K measured beyond it)."""
    if k < 2 or not CALIBRATION:
        return False
    near = min(CALIBRATION, key=lambda row: (abs(math.log(row[0] / width)), abs(math.log(row[1] / max(1, macs)))))
    return _interpolate(near[2], k) >= PAYS


def _interpolate(ratios: dict[int, float], k: int) -> float:
    ks = sorted(ratios)
    if k <= ks[0]:
        return ratios[ks[0]] if k == ks[0] else 0.0  # fewer students than ever measured: not known to pay
    for lo, hi in zip(ks, ks[1:]):
        if k <= hi:
            f = math.log(k / lo) / math.log(hi / lo)
            return ratios[lo] + f * (ratios[hi] - ratios[lo])
    return ratios[ks[-1]]


# ---------------------------------------------------------------------------------------------------------
# The losses that batch: total = w_soft · T²·KL(softmax(t/T) ‖ softmax(s/T)) + w_hard · CE(s, y)


@dataclass(frozen=True)
class KlCe:
    """One student's loss in the KL + CE family, with the parts ``kdlab.training.losses`` reports for it."""

    temperature: float
    w_soft: float  # weight of T²·KL
    w_hard: float  # weight of CE on the labels
    soft_part: bool  # "soft" is reported (the loss has a teacher term), else 0
    hard_part: bool  # "hard" is reported (the loss has a label term), else 0


def kl_ce_form(name: str, temperature: float, alpha: float, params: dict[str, float] | None = None, *,
               teacher: bool, labels: bool) -> KlCe | None:
    """The KL + CE form of registered loss ``name`` given which inputs it gets, mirroring each loss's own
    branches in ``kdlab.training.losses``; None when it has none (dkd, logit-mse, or inputs it would refuse),
    so the caller trains that student alone."""
    params = dict(params or {})
    allowed = {"hinton": set(), "source": {"lam"}, "soft-only": set()}
    if name not in allowed or not params.keys() <= allowed[name]:
        return None
    t = float(temperature) if name != "source" else 1.0  # the source recipe works at T = 1
    if not teacher:  # hinton's and source's plain cross-entropy; soft-only refuses
        return KlCe(1.0, 0.0, 1.0, False, True) if name != "soft-only" and labels else None
    if name == "soft-only" or not labels:  # the soft term alone (labels, alpha, lambda unused)
        return KlCe(t, 1.0, 0.0, True, False)
    if name == "hinton":
        return KlCe(t, float(alpha), 1.0 - float(alpha), True, True)
    return KlCe(t, float(params.get("lam", 0.1)), 1.0, True, True)  # source: CE + lambda * KL


class _LossTensors:
    """The K students' KlCe settings as broadcastable tensors."""

    def __init__(self, forms: Sequence[KlCe]):
        col = lambda v: torch.tensor(v, dtype=torch.float32).view(-1, 1, 1)  # noqa: E731  (K, 1, 1)
        self.t = col([f.temperature for f in forms])
        self.t2 = torch.tensor([f.temperature ** 2 for f in forms], dtype=torch.float32)  # (K,)
        self.w_soft = torch.tensor([f.w_soft for f in forms], dtype=torch.float32)  # (K,)
        self.w_hard = torch.tensor([f.w_hard for f in forms], dtype=torch.float32)  # (K,)
        self.soft_coef = col([f.w_soft * f.temperature for f in forms])  # d(T²·KL)/ds = T·(q − p), per example
        self.hard_coef = col([f.w_hard for f in forms])
        self.soft_on = torch.tensor([f.soft_part for f in forms])  # (K,) bool
        self.hard_on = torch.tensor([f.hard_part for f in forms])
        self.any_soft = any(f.soft_part or f.w_soft for f in forms)
        self.any_hard = any(f.hard_part or f.w_hard for f in forms)
        self.all_hard, self.all_soft = bool(self.hard_on.all()), bool(self.soft_on.all())

    def hard_only(self, hard: torch.Tensor) -> torch.Tensor:
        """The reported "hard" part: 0 for students whose loss has none (a where only for a mixed stack)."""
        return hard if self.all_hard else torch.where(self.hard_on, hard, 0.0)

    def soft_only(self, soft: torch.Tensor) -> torch.Tensor:
        return soft if self.all_soft else torch.where(self.soft_on, soft, 0.0)


def kl_ce(z: torch.Tensor, t: torch.Tensor | None, y: torch.Tensor | None, loss: _LossTensors
          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(total, hard, soft, dtotal/dz) of K students' losses on transposed logits ``z`` (K, C, B), teacher
    logits ``t`` (K, C, B) and labels ``y`` (K, B): losses (K,) averaged over the batch as the registered
    losses average them, the gradient (K, C, B) in closed form."""
    k, _, b = z.shape
    zero = z.new_zeros(k)
    grad, soft, hard = None, zero, zero
    if loss.any_soft:
        log_q = torch.log_softmax(z / loss.t, 1)  # (K, C, B) student at T
        log_p = torch.log_softmax(t / loss.t, 1)  # (K, C, B) teacher at T
        p = log_p.exp()
        soft = loss.t2 * (p * (log_p - log_q)).sum((1, 2)) / b  # (K,) T²·KL, 'batchmean'
        grad = (log_q.exp() - p).mul_(loss.soft_coef)
    if loss.any_hard:
        log_s = torch.log_softmax(z, 1)  # (K, C, B)
        picked = log_s.gather(1, y.unsqueeze(1))  # (K, 1, B) log-probability of the label
        hard = -picked.sum((1, 2)) / b  # (K,) CE
        d_hard = log_s.exp().scatter_add_(1, y.unsqueeze(1), torch.full_like(picked, -1.0))  # softmax − one-hot
        d_hard.mul_(loss.hard_coef)
        grad = d_hard if grad is None else grad.add_(d_hard)
    total = loss.w_soft * soft + loss.w_hard * hard
    grad = torch.zeros_like(z) if grad is None else grad.div_(b)
    return total, loss.hard_only(hard), loss.soft_only(soft), grad


# ---------------------------------------------------------------------------------------------------------
# The students and their stacked weights


@dataclass
class Student:
    """One member of a stack. ``model`` is trained in place, as ``engine.train`` trains its model."""

    model: nn.Module  # a stackable MLP (see ``stackable``) with the initial weights the single trainer draws
    rows: torch.Tensor  # (n,) int64: the rows of the shared split that are its transfer set, in order
    loss: KlCe
    labelled: bool  # its split has labels (engine.train then reports train_accuracy)
    cfg: TrainConfig  # every field but ``seed`` must agree across the stack (``same_schedule``)
    test_logits: torch.Tensor | None = None  # (N_test, C) of its latest evaluation: its final model's, at the end


def linear_layers(model: nn.Module) -> list[nn.Linear] | None:
    """The Linear layers of ``Flatten, (Linear, ReLU)*, Linear`` (what ``build_model`` makes of ``linear`` and
    ``mlp:...`` without dropout), else None: other models train alone."""
    mods = list(model.children()) if isinstance(model, nn.Sequential) else []
    if not mods or not isinstance(mods[0], nn.Flatten) or len(mods) % 2:
        return None
    body = mods[1:]
    linears = body[0::2]
    if not all(type(m) is nn.Linear and m.bias is not None for m in linears):
        return None
    if not all(type(m) is nn.ReLU for m in body[1::2]):
        return None
    return linears


def stackable(model: nn.Module) -> bool:
    return linear_layers(model) is not None


def same_schedule(a: TrainConfig, b: TrainConfig) -> bool:
    """Whether two students can step in lockstep: same budget, batch size, optimiser, schedule and limits."""
    return a.__class__ is b.__class__ and {**vars(a), "seed": 0} == {**vars(b), "seed": 0}


class _Stack:
    """The K models' Linear weights as (K, out, in) and biases as (K, out); while training, each model's own
    parameters are views into them (so ``predict_logits(model)`` evaluates exactly what is being trained)."""

    def __init__(self, models: Sequence[nn.Module]):
        self.per_model = [linear_layers(m) for m in models]
        depth = {len(layers) for layers in self.per_model}
        shapes = {tuple(tuple(lin.weight.shape) for lin in layers) for layers in self.per_model}
        if None in self.per_model or len(depth) != 1 or len(shapes) != 1:
            raise ValueError("a stack needs MLPs of one architecture (linear or mlp:..., no dropout)")
        self.weights = [torch.stack([layers[i].weight.detach() for layers in self.per_model]).requires_grad_()
                        for i in range(len(self.per_model[0]))]  # (K, out, in)
        self.biases = [torch.stack([layers[i].bias.detach() for layers in self.per_model]).requires_grad_()
                       for i in range(len(self.per_model[0]))]  # (K, out)
        self._bind(lambda t: t)

    @property
    def params(self) -> list[torch.Tensor]:
        return [p for pair in zip(self.weights, self.biases) for p in pair]  # the models' own order: W, b, W, b

    def _bind(self, make: Callable[[torch.Tensor], torch.Tensor]) -> None:
        for k, layers in enumerate(self.per_model):
            for lin, w, b in zip(layers, self.weights, self.biases):
                lin.weight.data, lin.bias.data = make(w.detach()[k]), make(b.detach()[k])

    def release(self) -> None:
        """Give each model weights of its own again (so the stack's memory is freed and state_dicts are small)."""
        self._bind(torch.Tensor.clone)


# ---------------------------------------------------------------------------------------------------------
# Training


@dataclass
class _Source:
    """Students that share a seed and transfer set, and so every batch; contiguous in the stack (k0:k1)."""

    k0: int
    k1: int
    rows: torch.Tensor  # (n,)
    gen: torch.Generator
    batches: tuple[torch.Tensor, ...] = ()  # this epoch's (B,) row batches


def train_stacked(students: Sequence[Student], data: Split, *, test: Split | None = None,
                  should_stop: Callable[[], bool] | None = None) -> Iterator[tuple[int, Event]]:
    """Train ``students`` in lockstep on the shared ``data``; yields ``(student index, event)`` with, for each
    student, the events ``engine.train`` would yield for it alone (step window means, at most
    ``MAX_EVALUATIONS`` epoch events with test metrics, one done event). ``should_stop`` and the time limit
    stop them all at the same step; "seconds" is each student's share of the stack's wall time (elapsed / K),
    so the time limit applies to that share. Raises TrainingDivergedError on any non-finite loss, before the
    step."""
    order, keys = _check(students, data)  # stack position -> student index, students of one source adjacent
    ss = [students[i] for i in order]
    sources = _sources(ss, sorted(keys))
    cfg = ss[0].cfg
    auto_threads(macs_per_example(ss[0].model, tuple(data.x.shape[1:])), cfg.batch_size)
    stack = _Stack([s.model for s in ss])
    try:
        yield from ((order[j], ev) for j, ev in _loop(stack, ss, sources, data, cfg, test, should_stop))
    finally:
        stack.release()


def _check(students: Sequence[Student], data: Split) -> tuple[list[int], list[int]]:
    if not students:
        raise ValueError("train_stacked needs at least one student")
    first = students[0]
    for s in students:
        if len(s.rows) != len(first.rows) or not same_schedule(s.cfg, first.cfg):
            raise ValueError("stacked students need transfer sets of one size and one training schedule")
        if s.labelled and data.y is None or (s.loss.w_soft or s.loss.soft_part) and data.teacher_logits is None:
            raise ValueError("a student's loss needs labels or teacher logits the shared split lacks")
    if engine.resolve_device(first.cfg.device).type != "cpu":
        raise ValueError("the stacked trainer runs on the CPU")
    keys: list[int] = []  # source id of each student, numbered by first occurrence
    reps: list[Student] = []
    for s in students:
        match = next((g for g, r in enumerate(reps) if r.cfg.seed == s.cfg.seed and torch.equal(r.rows, s.rows)),
                     None)
        if match is None:
            reps.append(s)
            match = len(reps) - 1
        keys.append(match)
    return sorted(range(len(students)), key=lambda i: keys[i]), keys  # stable within a source


def _sources(ss: Sequence[Student], keys: Sequence[int]) -> list[_Source]:
    """The sources of the stack's students ``ss``, whose source ids ``keys`` are sorted."""
    out: list[_Source] = []
    for j, (s, key) in enumerate(zip(ss, keys)):
        if j and keys[j - 1] == key:
            out[-1].k1 = j + 1
        else:  # own generator per source: the order never depends on global state (as engine.train)
            out.append(_Source(j, j + 1, s.rows, torch.Generator().manual_seed(s.cfg.seed)))
    return out


def _loop(stack: _Stack, ss: Sequence[Student], sources: list[_Source], data: Split, cfg: TrainConfig,
          test: Split | None, should_stop: Callable[[], bool] | None) -> Iterator[tuple[int, Event]]:
    k, n = len(ss), len(ss[0].rows)
    _, total_steps, epochs = engine.planned_steps(n, cfg)
    log_every = engine.step_event_interval(total_steps)
    eval_every = max(1, math.ceil(epochs / engine.MAX_EVALUATIONS))
    optimizer = engine.optimizer_for(stack.params, cfg)
    loss = _LossTensors([s.loss for s in ss])
    labelled = [s.labelled for s in ss]
    evaluate = _Evaluator(stack, ss)
    t0 = time.perf_counter()
    deadline = time.monotonic() + cfg.max_seconds * k  # each student's share of the wall time is bounded
    histories: list[list[dict[str, float]]] = [[] for _ in ss]
    step, reason = 0, "completed"
    last = None  # the previous epoch's running means: evaluated if a stop falls due right after it

    for s in ss:  # once: the step reads the stacked weights, and evaluation restores the mode it found
        s.model.train()
    for epoch in range(1, epochs + 1):
        for src in sources:
            src.batches = src.rows[torch.randperm(n, generator=src.gen)].split(cfg.batch_size)
        window, whole = _Running(k), _Running(k)
        for b in range(len(sources[0].batches)):
            if step == total_steps:
                break
            reason = engine.halt_reason(should_stop, deadline)
            if reason != "completed":
                break
            engine._set_lr(optimizer, engine.lr_at(cfg, step, total_steps))
            window.add(*_step(stack, sources, [src.batches[b] for src in sources], data, loss, optimizer, cfg))
            step += 1
            if step % log_every == 0:
                for j, metrics in enumerate(window.means(labelled)):
                    yield j, Event("step", epoch, step, total_steps, metrics)
                window = whole.absorb(window)
        whole.absorb(window)
        if whole.count == 0:  # stopped before this epoch's first step
            if (ended := engine.epoch_before_stop(reason, epoch, last, histories[0])) is None:
                break
            epoch, whole = ended
        if reason != "completed" or epoch % eval_every == 0 or epoch == epochs:
            tested = evaluate(test)
            seconds = (time.perf_counter() - t0) / k
            for j, (s, means) in enumerate(zip(ss, whole.means(labelled))):
                metrics = means | tested[j] | {"seconds": seconds}
                histories[j].append({"epoch": epoch, "step": step, **metrics})
                yield j, Event("epoch", epoch, step, total_steps, metrics, list(histories[j]))
        if reason != "completed":
            break
        last = whole
    for j, history in enumerate(histories):
        yield j, Event("done", history[-1]["epoch"] if history else 0, step, total_steps,
                       history[-1] if history else {}, history, reason)


@torch.no_grad()
def _step(stack: _Stack, sources: list[_Source], batches: list[torch.Tensor], data: Split, loss: _LossTensors,
          optimizer, cfg: TrainConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """One optimiser step of every student; returns (total, hard, soft, correct) (K,) and the batch size."""
    b = len(batches[0])
    xs = [data.x.index_select(0, rows).view(b, -1) for rows in batches]  # per source (B, in)
    y = _per_student(sources, [data.y.index_select(0, r) for r in batches]) if data.y is not None else None  # (K, B)
    t = None
    if data.teacher_logits is not None and loss.any_soft:  # (K, C, B), transposed as the logits
        t = _per_student(sources, [data.teacher_logits.index_select(0, r).t() for r in batches])
    acts = _forward(stack, sources, xs)  # [(K, H, B) per hidden layer ..., (K, C, B) logits]
    total, hard, soft, grad = kl_ce(acts[-1], t, y, loss)
    value = total.sum().item()  # one sync for all K; finite iff every student's loss is
    if not math.isfinite(value):
        bad = next(v for v in total.tolist() if not math.isfinite(v))
        raise engine.diverged(bad, cfg)
    _backward(stack, sources, xs, acts, grad)
    optimizer.step()
    correct = (acts[-1].max(1).indices == y).sum(1) if y is not None else torch.zeros(len(total), dtype=torch.long)
    return total, hard, soft, correct, b


def _per_student(sources: list[_Source], per_source: list[torch.Tensor]) -> torch.Tensor:
    """(K, ...) from one tensor per source, each repeated for its students (a view when there is one source)."""
    parts = [v.expand(src.k1 - src.k0, *v.shape) for src, v in zip(sources, per_source)]
    return parts[0] if len(parts) == 1 else torch.cat(parts)


def _forward(stack: _Stack, sources: list[_Source], xs: list[torch.Tensor]) -> list[torch.Tensor]:
    w, bias = stack.weights[0].detach(), stack.biases[0].detach()
    k, h, d = w.shape
    b = xs[0].shape[0]
    z = torch.empty(k, h, b)  # (K, H, B)
    for src, x in zip(sources, xs):  # one wide matmul per source: (k·H, in) @ (in, B)
        torch.addmm(bias[src.k0:src.k1].reshape(-1, 1), w[src.k0:src.k1].view(-1, d), x.t(),
                    out=z[src.k0:src.k1].view(-1, b))
    acts = [z]
    for w, bias in zip(stack.weights[1:], stack.biases[1:]):
        acts[-1].relu_()
        acts.append(torch.baddbmm(bias.detach().unsqueeze(2), w.detach(), acts[-1]))  # (K, out, B)
    return acts


def _backward(stack: _Stack, sources: list[_Source], xs: list[torch.Tensor], acts: list[torch.Tensor],
              grad: torch.Tensor) -> None:
    """Writes every stacked parameter's .grad from d(total)/d(logits) ``grad`` (K, C, B)."""
    for i in range(len(acts) - 1, 0, -1):
        w = stack.weights[i].detach()
        stack.weights[i].grad = torch.bmm(grad, acts[i - 1].mT)  # (K, out, in)
        stack.biases[i].grad = grad.sum(2)  # (K, out)
        grad = torch.ops.aten.threshold_backward(torch.bmm(w.mT, grad), acts[i - 1], 0)  # through the ReLU
    w = stack.weights[0]
    g = torch.empty_like(w) if w.grad is None else w.grad  # (K, H, in), rewritten in place each step
    k, h, d = w.shape
    for src, x in zip(sources, xs):
        torch.mm(grad[src.k0:src.k1].view(-1, x.shape[0]), x, out=g[src.k0:src.k1].view(-1, d))
    w.grad = g
    stack.biases[0].grad = grad.sum(2)


class _Evaluator:
    """engine._test_metrics for every student, the first layer of all K as one wide matmul over the shared test
    inputs. That equals each model's own forward bit for bit where MKL runs the same kernel (checked once per
    run against ``predict_logits``; a first layer 10 wide does not), else each model is evaluated alone."""

    def __init__(self, stack: _Stack, ss: Sequence[Student]):
        self.stack, self.ss, self.wide = stack, ss, None

    def __call__(self, test: Split | None) -> list[dict[str, float]]:
        if test is None or test.y is None:
            return [{} for _ in self.ss]
        logits = self._wide(test.x) if self.wide is not False else None
        if self.wide is None:
            self.wide = torch.equal(logits[0], predict_logits(self.ss[0].model, test.x))
        if not self.wide:
            logits = [predict_logits(s.model, test.x) for s in self.ss]
        out = []
        for s, z in zip(self.ss, logits):
            s.test_logits = z
            m = {"test_accuracy": accuracy(z, test.y)}
            if test.teacher_logits is not None:
                m["agreement"] = agreement(z, test.teacher_logits)
            out.append(m)
        return out

    @torch.inference_mode()
    def _wide(self, x: torch.Tensor) -> list[torch.Tensor]:
        w, b = self.stack.weights[0].detach(), self.stack.biases[0].detach()
        k, h, d = w.shape
        x = x.reshape(len(x), -1)  # (N, in), as nn.Flatten
        chunks: list[list[torch.Tensor]] = [[] for _ in range(k)]
        for i in range(0, len(x), EVAL_BATCH):  # predict_logits's chunks
            z = torch.addmm(b.view(1, -1), x[i:i + EVAL_BATCH], w.view(-1, d).t())  # (n, K·H)
            for j, layers in enumerate(self.stack.per_model):
                a = z[:, j * h:(j + 1) * h]
                for lin in layers[1:]:
                    a = F.linear(torch.relu(a), lin.weight, lin.bias)
                chunks[j].append(a)
        return [torch.cat(c) for c in chunks]


class _Running:
    """K students' sums of (total, hard, soft) and training hits over some steps (a window, or an epoch)."""

    def __init__(self, k: int):
        self.count, self.seen = 0, 0
        self.sums = torch.zeros(k, len(PARTS))
        self.correct = torch.zeros(k, dtype=torch.long)

    def add(self, total, hard, soft, correct, batch: int) -> None:
        self.sums += torch.stack([total, hard, soft], 1)
        self.correct += correct
        self.count += 1
        self.seen += batch

    def absorb(self, other: "_Running") -> "_Running":
        self.sums += other.sums
        self.correct += other.correct
        self.count += other.count
        self.seen += other.seen
        return _Running(len(self.sums))

    def means(self, labelled: Sequence[bool]) -> list[dict[str, float]]:
        rows = (self.sums / max(1, self.count)).tolist()
        hits = self.correct.tolist()
        return [dict(zip(PARTS, row)) | ({"train_accuracy": c / self.seen} if lab and self.seen else {})
                for row, c, lab in zip(rows, hits, labelled)]
