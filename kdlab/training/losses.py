"""Distillation objectives on two logit tensors (torchdistill's lesson: tensors in, no module hooks).

Every loss is one registered function ``loss(student, teacher, labels, *, temperature, alpha, **weights)``
that returns a ``LossOutput``, registered with its facts (``LossInfo``: the formula in LaTeX, whether it uses
T and alpha, whether it needs labels, its own weights and their bounds), so a front end shows only the controls
a loss uses and its own formula. ``make_loss`` validates the settings and binds them, so the engine calls
``loss_fn(student_logits, teacher_logits, labels)``; ``bind_loss`` binds settings that were validated already
(``kdlab.runs.distill.validate`` is the one check of a run).

Shared conventions:

* ``student`` is (B, C) logits; ``teacher`` is (B, C) logits or None; ``labels`` is (B,) int64 or None.
* The teacher is a constant target: its logits are detached inside every loss.
* KL terms are KL(teacher ‖ student) averaged over the batch ('batchmean'), computed from log_softmax of
  both sides (``log_target=True``) so that no probability is ever logged.
* ``parts`` always holds "hard" and "soft" (a zero tensor where a term is absent), so a UI can plot
  total / soft / hard for any loss; parts are detached and are the *unweighted* terms, except DKD's
  "soft", which is its weighted sum of TCKD and NCKD (its raw terms are in "tckd" and "nckd").
* ``teacher=None`` means "no teacher": losses with a cross-entropy term reduce to plain CE (the baseline
  of every KD comparison); ``soft-only`` has nothing left and raises ValueError.
* ``make_loss`` validates temperature and alpha for every loss, even those that ignore them, so a bad
  setting is reported the same way whatever loss is selected; the rules and their messages are
  ``kdlab.base.config``'s, shared with DistillConfig.validate.
"""
from __future__ import annotations

import functools
import inspect
import math
import numbers
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch
import torch.nn.functional as F

from kdlab.base.config import check_alpha, check_temperature
from kdlab.base.errors import ConfigError
from kdlab.base.registry import Registry

Tensor = torch.Tensor


@dataclass(frozen=True)
class LossOutput:
    total: Tensor  # scalar, differentiable w.r.t. the student logits
    parts: dict[str, Tensor]  # named detached scalars; always "hard" and "soft"


LossFn = Callable[[Tensor, Optional[Tensor], Optional[Tensor]], LossOutput]


@dataclass(frozen=True)
class LossParam:
    """One weight of a loss beyond T and alpha (its default is the function's keyword default)."""

    symbol: str  # LaTeX, as it appears in the formula
    label: str
    help: str
    default: float
    high: float = 10.0  # a bound for widgets and links; the loss itself accepts any finite value >= 0
    step: float = 0.05


@dataclass(frozen=True)
class LossInfo:
    """A registered loss and the facts every front end needs about it."""

    name: str
    fn: Callable[..., LossOutput]
    formula: str  # LaTeX of the total, in the symbols s, t, y, T, alpha and the params' symbols
    summary: str  # one line for a dropdown's help
    uses_temperature: bool
    uses_alpha: bool
    needs_labels: bool = False  # True: refused for an unlabelled transfer set
    params: dict[str, LossParam] = field(default_factory=dict)


LOSSES: Registry[LossInfo] = Registry("loss")


def register(name: str, *, formula: str, summary: str, uses: tuple[str, ...], needs_labels: bool = False,
             params: dict[str, tuple[str, str, str]] | None = None) -> Callable:
    """Register a loss function with its facts; ``params`` maps each extra keyword to (symbol, label, help)."""
    def add(fn: Callable[..., LossOutput]) -> Callable[..., LossOutput]:
        defaults = {p.name: p.default for p in inspect.signature(fn).parameters.values()
                    if p.kind is p.KEYWORD_ONLY and p.name not in _COMMON_PARAMS}
        described = params or {}
        if set(described) != set(defaults):
            raise ValueError(f"loss {name!r}: describe exactly its weights {sorted(defaults)}")
        info = LossInfo(name, fn, formula, summary, "temperature" in uses, "alpha" in uses, needs_labels,
                        {k: LossParam(*described[k], default=float(v)) for k, v in defaults.items()})
        LOSSES.register(name)(info)
        return fn
    return add


_COMMON_PARAMS = ("temperature", "alpha")
KL_AT_T = r"\mathrm{KL}\big(\sigma(t/T)\,\|\,\sigma(s/T)\big)"  # σ: the softmax; t, s: teacher and student logits


# ---------------------------------------------------------------- class-axis kernels
# PyTorch's CPU (log_)softmax over a short last axis is slow: for (128, 10) logits it takes ~19 us, against
# ~5 us for the same reduction over the leading axis of the transposed (10, 128) layout (torch 2.13, one
# thread). A distillation step takes three of them, so every loss here goes through these two helpers;
# they equal ``F.log_softmax(z, 1)`` and ``F.cross_entropy`` up to float rounding (tests/test_losses.py).

def log_softmax(z: Tensor) -> Tensor:
    """log softmax over the class axis, axis 1 as in torch: (B, C) logits take the fast path."""
    return torch.log_softmax(z.t(), 0).t() if z.dim() == 2 else F.log_softmax(z, 1)


def cross_entropy(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean cross-entropy, ``F.cross_entropy(logits, labels)`` through the fast ``log_softmax``."""
    return F.nll_loss(log_softmax(logits), labels)


# ---------------------------------------------------------------- public helpers


def soft_targets(logits: Tensor, temperature: float) -> Tensor:
    """softmax(logits / T) over the last axis: the "softened" distribution of Hinton et al. (2015)."""
    check_temperature(temperature)
    return torch.softmax(logits / temperature, dim=-1)  # (B, C)


def entropy(probs: Tensor) -> Tensor:
    """Shannon entropy H(p) = -Σ_c p_c log p_c in nats, per row, with 0·log 0 = 0."""
    return -torch.special.xlogy(probs, probs).sum(dim=-1)  # (B,)


def loss_names() -> list[str]:
    return LOSSES.names()


def loss_info(name: str) -> LossInfo:
    """The facts of loss ``name``; ConfigError listing the valid names otherwise."""
    return LOSSES.get(name)


def make_loss(name: str, temperature: float = 4.0, alpha: float = 0.9, **kwargs) -> LossFn:
    """Validate the settings of loss ``name`` and return ``fn(student, teacher, labels) -> LossOutput``."""
    validate_loss_params(name, temperature, alpha, **kwargs)
    return bind_loss(name, temperature, alpha, **kwargs)


def plain_cross_entropy() -> LossFn:
    """Training on the labels alone (a teacher, a scratch student): hinton at alpha = 0."""
    return bind_loss("hinton", 1.0, 0.0)


def bind_loss(name: str, temperature: float, alpha: float, **kwargs) -> LossFn:
    """``make_loss`` without the checks, for settings that were validated already."""
    return functools.partial(LOSSES.get(name).fn, temperature=float(temperature), alpha=float(alpha), **kwargs)


def validate_loss_params(name: str, temperature: float = 4.0, alpha: float = 0.9, **kwargs) -> None:
    """Raise ConfigError for an unknown loss, T not finite and > 0, alpha outside [0, 1], an unknown
    keyword for that loss, or a negative / non-finite weight."""
    info = LOSSES.get(name)  # ConfigError listing the valid names
    check_temperature(temperature)
    check_alpha(alpha)
    for key, value in kwargs.items():
        if key not in info.params:
            valid = ", ".join(_COMMON_PARAMS + tuple(info.params))
            raise ConfigError(f"loss {name!r} has no parameter {key!r}; its parameters are: {valid}")
        _check_weight(key, value)


# ---------------------------------------------------------------- validation


def _check_weight(key: str, value) -> None:
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
        raise ConfigError(f"loss weight {key} must be a finite number >= 0, got {value!r}")


def _check_inputs(student: Tensor, teacher: Optional[Tensor], labels: Optional[Tensor]) -> None:
    if student.ndim != 2:
        raise ValueError(f"student logits must be (B, C), got shape {tuple(student.shape)}")
    if teacher is not None and teacher.shape != student.shape:
        raise ValueError(f"teacher logits {tuple(teacher.shape)} != student logits {tuple(student.shape)}")
    if labels is not None and labels.shape != student.shape[:1]:
        raise ValueError(f"labels must be (B,) = ({student.shape[0]},), got {tuple(labels.shape)}")


# ---------------------------------------------------------------- building blocks


def _kl(student: Tensor, teacher: Tensor, temperature: float) -> Tensor:
    """KL(softmax(t/T) ‖ softmax(s/T)) averaged over the batch; the teacher is detached."""
    log_q = log_softmax(student / temperature)  # (B, C) student
    log_p = log_softmax(teacher.detach() / temperature)  # (B, C) teacher
    return F.kl_div(log_q, log_p, log_target=True, reduction="batchmean")


def _zero(like: Tensor) -> Tensor:
    return like.new_zeros(())


def _output(total: Tensor, hard: Tensor, soft: Tensor, **extra: Tensor) -> LossOutput:
    parts = {"hard": hard.detach(), "soft": soft.detach()}
    parts.update({k: v.detach() for k, v in extra.items()})
    return LossOutput(total=total, parts=parts)


def _ce_only(student: Tensor, labels: Optional[Tensor], name: str) -> LossOutput:
    """The no-teacher baseline: plain cross-entropy on the labels."""
    if labels is None:
        raise ValueError(f"loss {name!r} needs teacher logits or labels; both are None")
    ce = cross_entropy(student, labels)
    return _output(ce, ce, _zero(ce))


# ---------------------------------------------------------------- the losses


@register("hinton", uses=("temperature", "alpha"),
          formula=r"\alpha\,T^2\," + KL_AT_T + r" + (1-\alpha)\,\mathrm{CE}(s, y)",
          summary="Hinton et al. 2015: soft targets at T, weighted by alpha, plus cross-entropy on the labels")
def hinton(student, teacher, labels, *, temperature: float, alpha: float) -> LossOutput:
    """Hinton, Vinyals & Dean (2015), "Distilling the Knowledge in a Neural Network".

        total = α · T² · KL(softmax(t/T) ‖ softmax(s/T)) + (1 − α) · CE(s, y)

    Convention: α weights the SOFT (teacher) term; α = 0 is plain cross-entropy, α = 1 pure distillation.
    The T² factor keeps the soft gradients' size roughly independent of T (they scale as 1/T² otherwise).
    KL is averaged over the batch. Parts: soft = T²·KL (before α), hard = CE.
    If labels is None the soft term alone is used (as if α = 1); if teacher is None, plain CE.
    """
    _check_inputs(student, teacher, labels)
    if teacher is None:
        return _ce_only(student, labels, "hinton")
    soft = temperature**2 * _kl(student, teacher, temperature)
    if labels is None:
        return _output(soft, _zero(soft), soft)
    hard = cross_entropy(student, labels)
    return _output(alpha * soft + (1 - alpha) * hard, hard, soft)


@register("source", uses=(), params={"lam": (r"\lambda", "λ (weight of the KL term)",
                                                   "The source tutorial's weight of its KL term at T = 1")},
          formula=r"\mathrm{CE}(s, y) + \lambda\,\mathrm{KL}\big(\sigma(t)\,\|\,\sigma(s)\big)",
          summary="the source tutorial's recipe, its sign error fixed: CE plus λ·KL at T = 1")
def source(student, teacher, labels, *, temperature: float, alpha: float, lam: float = 0.1) -> LossOutput:
    """The recipe of the project's source document (a Chinese Keras tutorial), corrected.

        total = CE(s, y) + λ · KL(softmax(t) ‖ softmax(s))      at T = 1, λ = ``lam`` = 0.1 by default

    ``temperature`` and ``alpha`` are ignored (validated, but unused): the recipe has no temperature.
    The source writes ``L(y, T(x)) − λ·D_KL(S ‖ T)``, which is wrong twice: (1) the sign: subtracting the
    KL rewards the student for *diverging* from the teacher; (2) the arguments are swapped: its Keras call
    ``kullback_leibler(y_pred, teacher_preds)`` computes KL(student ‖ teacher) with the teacher in the
    role of the *prediction*. We implement the correct form above (added, teacher as the target).
    Parts: hard = CE, soft = KL (before λ). If labels is None the KL term alone is used (weight 1, as
    hinton does with α = 1); if teacher is None, plain CE.
    """
    del temperature, alpha  # the recipe works at T = 1 with its own weight λ
    _check_inputs(student, teacher, labels)
    if teacher is None:
        return _ce_only(student, labels, "source")
    soft = _kl(student, teacher, 1.0)
    if labels is None:
        return _output(soft, _zero(soft), soft)
    hard = cross_entropy(student, labels)
    return _output(hard + lam * soft, hard, soft)


@register("soft-only", uses=("temperature",), formula=r"T^2\," + KL_AT_T,
          summary="soft targets alone (an unlabelled transfer set): hinton at alpha = 1")
def soft_only(student, teacher, labels, *, temperature: float, alpha: float) -> LossOutput:
    """Soft targets alone, as in Hinton, Vinyals & Dean (2015)'s transfer-set experiments, where the
    transfer set may have no labels:

        total = T² · KL(softmax(t/T) ‖ softmax(s/T))

    Equals ``hinton`` at α = 1. Labels and alpha are ignored; parts: soft = total, hard = 0.
    """
    del labels, alpha
    _check_inputs(student, teacher, None)
    if teacher is None:
        raise ValueError("loss 'soft-only' needs teacher logits")
    soft = temperature**2 * _kl(student, teacher, temperature)
    return _output(soft, _zero(soft), soft)


@register("logit-mse", uses=("alpha",),
          formula=r"\alpha\,\tfrac{1}{C}\lVert s - t\rVert^2 + (1-\alpha)\,\mathrm{CE}(s, y)",
          summary="Ba & Caruana 2014: regress the teacher's logits (no temperature), plus cross-entropy")
def logit_mse(student, teacher, labels, *, temperature: float, alpha: float) -> LossOutput:
    """Logit regression, Ba & Caruana (2014), "Do Deep Nets Really Need to be Deep?", mixed with CE:

        total = α · mean_{b,c} (s_bc − t_bc)² + (1 − α) · CE(s, y)

    α weights the teacher term, as in ``hinton``; α = 1 is Ba & Caruana's pure logit regression (the
    shared default α = 0.9 keeps a little CE). The MSE is averaged over batch and classes; the paper's
    (1/2)·Σ_c per example differs by the constant factor C/2. T is ignored: logits need no softening.
    Parts: soft = MSE, hard = CE. If labels is None, pure MSE; if teacher is None, plain CE.
    """
    del temperature
    _check_inputs(student, teacher, labels)
    if teacher is None:
        return _ce_only(student, labels, "logit-mse")
    soft = F.mse_loss(student, teacher.detach())
    if labels is None:
        return _output(soft, _zero(soft), soft)
    hard = cross_entropy(student, labels)
    return _output(alpha * soft + (1 - alpha) * hard, hard, soft)


def _dkd_terms(student: Tensor, teacher: Tensor, labels: Tensor, temperature: float) -> tuple[Tensor, Tensor]:
    """(TCKD, NCKD), each T²·KL(teacher ‖ student) averaged over the batch."""
    target = F.one_hot(labels, student.shape[1]).bool()  # (B, C)
    s = student / temperature  # (B, C)
    t = teacher.detach() / temperature  # (B, C)
    s_rest = s - 1000.0 * target  # (B, C) target logit pushed down, as the official code does
    t_rest = t - 1000.0 * target
    # binary (target, rest) log-probabilities: log p_target, log(1 − p_target) = lse(rest) − lse(all)
    s_bin = torch.stack([s[target], s_rest.logsumexp(1)], dim=1) - s.logsumexp(1, keepdim=True)  # (B, 2)
    t_bin = torch.stack([t[target], t_rest.logsumexp(1)], dim=1) - t.logsumexp(1, keepdim=True)  # (B, 2)
    tckd = F.kl_div(s_bin, t_bin, log_target=True, reduction="batchmean")
    nckd = F.kl_div(log_softmax(s_rest), log_softmax(t_rest), log_target=True, reduction="batchmean")
    return temperature**2 * tckd, temperature**2 * nckd


@register("dkd", uses=("temperature",), needs_labels=True,
          params={"beta_tckd": (r"\beta_{\mathrm{T}}", "β TCKD (target-class weight)", "Weight of the target-vs-rest term"),
                  "beta_nckd": (r"\beta_{\mathrm{N}}", "β NCKD (non-target weight)", "Weight of the non-target term")},
          formula=r"\mathrm{CE}(s, y) + \beta_{\mathrm{T}}\,\mathrm{TCKD} + \beta_{\mathrm{N}}\,\mathrm{NCKD}",
          summary="Zhao et al. 2022: decoupled target-class and non-target-class terms, plus cross-entropy")
def dkd(
    student, teacher, labels, *, temperature: float, alpha: float, beta_tckd: float = 1.0, beta_nckd: float = 8.0
) -> LossOutput:
    """Decoupled Knowledge Distillation, Zhao, Cui, Song, Qiu & Liang (CVPR 2022).

        b = (p_target, 1 − p_target)                      binary target-vs-rest distribution at T
        p̂ = softmax over the non-target classes at T      (target logit − 1000, as the official code)
        TCKD = T² · KL(b_teacher ‖ b_student)
        NCKD = T² · KL(p̂_teacher ‖ p̂_student)
        total = CE(s, y) + β_tckd · TCKD + β_nckd · NCKD   (β_tckd = 1, β_nckd = 8: the paper's defaults)

    ``alpha`` is ignored (validated, but unused); the official training warm-up of the KD weight is the
    engine's business, not this function's. Labels are required (ValueError if None); if teacher is None,
    plain CE. Parts: hard = CE, soft = β_tckd·TCKD + β_nckd·NCKD, tckd = TCKD, nckd = NCKD (unweighted).
    """
    del alpha
    _check_inputs(student, teacher, labels)
    if labels is None:
        raise ValueError("loss 'dkd' needs labels: its terms are split around the target class")
    if teacher is None:
        return _ce_only(student, labels, "dkd")
    tckd, nckd = _dkd_terms(student, teacher, labels, temperature)
    hard = cross_entropy(student, labels)
    soft = beta_tckd * tckd + beta_nckd * nckd
    return _output(hard + soft, hard, soft, tckd=tckd, nckd=nckd)
