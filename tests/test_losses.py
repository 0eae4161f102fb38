"""Tests for kdlab.training.losses: independent reference formulas, identities, T² scaling, validation."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kdlab.base.errors import ConfigError
from kdlab.training.losses import (
    LOSSES,
    LossOutput,
    cross_entropy,
    entropy,
    log_softmax,
    loss_names,
    make_loss,
    soft_targets,
    validate_loss_params,
)

B, C = 16, 10


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    student = torch.randn(B, C, generator=g, dtype=torch.float64) * 2
    teacher = torch.randn(B, C, generator=g, dtype=torch.float64) * 3
    labels = torch.randint(0, C, (B,), generator=g)
    return student, teacher, labels


# ---------------------------------------------------------------- numpy references (no F.kl_div)


def np_softmax(z, T=1.0):
    z = np.asarray(z, dtype=np.float64) / T
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def np_kl(p, q):
    """Mean over rows of Σ_c p (log p − q)."""
    return float(np.mean(np.sum(p * (np.log(p) - np.log(q)), axis=1)))


def np_ce(s, y):
    p = np_softmax(s)
    return float(-np.mean(np.log(p[np.arange(len(y)), y])))


def ref_hinton(s, t, y, T, alpha):
    soft = T**2 * np_kl(np_softmax(t, T), np_softmax(s, T))
    return alpha * soft + (1 - alpha) * np_ce(s, y), soft


def ref_dkd(s, t, y, T, bt, bn):
    ps, pt = np_softmax(s, T), np_softmax(t, T)
    rows = np.arange(len(y))
    bs = np.stack([ps[rows, y], 1 - ps[rows, y]], axis=1)
    bt_ = np.stack([pt[rows, y], 1 - pt[rows, y]], axis=1)
    tckd = T**2 * np_kl(bt_, bs)
    keep = ~np.eye(s.shape[1], dtype=bool)[y]  # drop the target column exactly
    s_rest = s[keep].reshape(len(y), -1)
    t_rest = t[keep].reshape(len(y), -1)
    nckd = T**2 * np_kl(np_softmax(t_rest, T), np_softmax(s_rest, T))
    return np_ce(s, y) + bt * tckd + bn * nckd, tckd, nckd


def as_np(*tensors):
    return [x.numpy() for x in tensors]


# ---------------------------------------------------------------- against references


@pytest.mark.parametrize("shape", [(128, 10), (3, 2), (1, 7), (5, 1000)])
def test_class_axis_kernels_equal_torchs(shape):
    """The transposed-layout log_softmax and cross-entropy are torch's, values and gradients alike."""
    z = (torch.randn(shape, dtype=torch.float64) * 5).requires_grad_()
    y = torch.randint(0, shape[1], shape[:1])
    torch.testing.assert_close(log_softmax(z), F.log_softmax(z, 1))
    torch.testing.assert_close(cross_entropy(z, y), F.cross_entropy(z, y))
    mine = torch.autograd.grad((log_softmax(z) * z.detach().cos()).sum() + cross_entropy(z, y), z)[0]
    torch_ = torch.autograd.grad((F.log_softmax(z, 1) * z.detach().cos()).sum() + F.cross_entropy(z, y), z)[0]
    torch.testing.assert_close(mine, torch_)


def test_class_axis_kernels_keep_torchs_class_axis_beyond_2d():
    z, y = torch.randn(4, 5, 3, dtype=torch.float64), torch.randint(0, 5, (4, 3))  # (N, C, d), as torch allows
    torch.testing.assert_close(log_softmax(z), F.log_softmax(z, 1))
    torch.testing.assert_close(cross_entropy(z, y), F.cross_entropy(z, y))


def test_registered_names():
    assert loss_names() == ["hinton", "source", "soft-only", "logit-mse", "dkd"]


@pytest.mark.parametrize("T,alpha", [(1.0, 0.5), (4.0, 0.9), (10.0, 0.3)])
def test_hinton_matches_reference(batch, T, alpha):
    s, t, y = batch
    out = make_loss("hinton", T, alpha)(s, t, y)
    total, soft = ref_hinton(*as_np(s, t, y), T, alpha)
    assert out.total.item() == pytest.approx(total, rel=1e-9)
    assert out.parts["soft"].item() == pytest.approx(soft, rel=1e-9)
    assert out.parts["hard"].item() == pytest.approx(np_ce(*as_np(s, y)), rel=1e-9)


def test_soft_only_matches_reference(batch):
    s, t, y = batch
    out = make_loss("soft-only", 3.0)(s, t, y)
    ref = 9.0 * np_kl(np_softmax(t.numpy(), 3.0), np_softmax(s.numpy(), 3.0))
    assert out.total.item() == pytest.approx(ref, rel=1e-9)
    assert out.parts["hard"].item() == 0.0


def test_source_matches_reference(batch):
    s, t, y = batch
    out = make_loss("source", temperature=7.0, alpha=0.2, lam=0.3)(s, t, y)  # T and alpha ignored
    sn, tn, yn = as_np(s, t, y)
    kl = np_kl(np_softmax(tn), np_softmax(sn))
    assert out.total.item() == pytest.approx(np_ce(sn, yn) + 0.3 * kl, rel=1e-9)
    assert out.parts["soft"].item() == pytest.approx(kl, rel=1e-9)


def test_logit_mse_matches_reference(batch):
    s, t, y = batch
    out = make_loss("logit-mse", alpha=0.7)(s, t, y)
    sn, tn, yn = as_np(s, t, y)
    mse = float(np.mean((sn - tn) ** 2))
    assert out.total.item() == pytest.approx(0.7 * mse + 0.3 * np_ce(sn, yn), rel=1e-9)
    assert out.parts["soft"].item() == pytest.approx(mse, rel=1e-9)


@pytest.mark.parametrize("T", [1.0, 4.0])
def test_dkd_matches_reference(batch, T):
    s, t, y = batch
    out = make_loss("dkd", T, beta_tckd=2.0, beta_nckd=5.0)(s, t, y)
    total, tckd, nckd = ref_dkd(*as_np(s, t, y), T, 2.0, 5.0)
    assert out.total.item() == pytest.approx(total, rel=1e-9)
    assert out.parts["tckd"].item() == pytest.approx(tckd, rel=1e-9)
    assert out.parts["nckd"].item() == pytest.approx(nckd, rel=1e-9)
    assert out.parts["soft"].item() == pytest.approx(2 * tckd + 5 * nckd, rel=1e-9)


def test_dkd_defaults_are_the_papers(batch):
    s, t, y = batch
    out = make_loss("dkd", 4.0)(s, t, y)
    assert out.total.item() == pytest.approx(ref_dkd(*as_np(s, t, y), 4.0, 1.0, 8.0)[0], rel=1e-9)


# ---------------------------------------------------------------- identities


def test_hinton_alpha_zero_is_cross_entropy(batch):
    s, t, y = batch
    out = make_loss("hinton", 4.0, 0.0)(s, t, y)
    assert torch.allclose(out.total, F.cross_entropy(s, y))


@pytest.mark.parametrize("T", [1.0, 2.5, 8.0])
def test_soft_only_equals_hinton_at_alpha_one(batch, T):
    s, t, y = batch
    a = make_loss("soft-only", T)(s, t, y).total
    b = make_loss("hinton", T, 1.0)(s, t, y).total
    assert torch.allclose(a, b)


@pytest.mark.parametrize("name", ["hinton", "soft-only", "source", "logit-mse", "dkd"])
def test_identical_logits_give_zero_soft_part(batch, name):
    s, _, y = batch
    out = make_loss(name)(s, s.clone(), y)
    assert abs(out.parts["soft"].item()) < 1e-12
    for key in ("tckd", "nckd"):
        if key in out.parts:
            assert abs(out.parts[key].item()) < 1e-12


def test_source_lambda_zero_is_cross_entropy(batch):
    s, t, y = batch
    assert torch.allclose(make_loss("source", lam=0.0)(s, t, y).total, F.cross_entropy(s, y))


def test_source_sign_rewards_agreeing_with_teacher(batch):
    _, t, y = batch
    # Permuting the non-target logits leaves CE unchanged (same target logit, same logsumexp) but moves the
    # student away from the teacher: with the correct (+) sign the loss must go up.
    far = t.clone()
    for b in range(B):
        rest = [c for c in range(C) if c != y[b]]
        far[b, rest] = t[b, rest].flip(0)
    assert torch.allclose(F.cross_entropy(far, y), F.cross_entropy(t, y))
    loss = make_loss("source")
    assert loss(far, t, y).total > loss(t.clone(), t, y).total
    assert loss(far, t, y).parts["soft"] > 0


def test_hinton_without_labels_uses_soft_term(batch):
    s, t, _ = batch
    out = make_loss("hinton", 4.0, 0.3)(s, t, None)
    assert torch.allclose(out.total, make_loss("soft-only", 4.0)(s, t, None).total)
    assert out.parts["hard"].item() == 0.0


def test_logit_mse_without_labels_is_pure_mse(batch):
    s, t, _ = batch
    assert torch.allclose(make_loss("logit-mse", alpha=0.2)(s, t, None).total, F.mse_loss(s, t))


def test_dkd_without_labels_raises(batch):
    s, t, _ = batch
    with pytest.raises(ValueError, match="labels"):
        make_loss("dkd")(s, t, None)


@pytest.mark.parametrize("name", ["hinton", "source", "logit-mse", "dkd"])
def test_no_teacher_is_cross_entropy_baseline(batch, name):
    s, _, y = batch
    out = make_loss(name)(s, None, y)
    assert torch.allclose(out.total, F.cross_entropy(s, y))
    assert out.parts["soft"].item() == 0.0


def test_soft_only_without_teacher_raises(batch):
    s, _, y = batch
    with pytest.raises(ValueError, match="teacher"):
        make_loss("soft-only")(s, None, y)


# ---------------------------------------------------------------- T² scaling (Hinton 2015, section 2.1)


def _soft_grad_norm(name, T, s, t):
    s = s.clone().requires_grad_(True)
    make_loss(name, T, 1.0)(s, t, None).total.backward()
    return s.grad.norm().item()


@pytest.mark.parametrize("name", ["hinton", "soft-only"])
def test_t_squared_keeps_soft_gradient_scale(name):
    # With small zero-mean logits, softmax(z/T) ≈ (1 + z/T)/C, so ∂KL/∂s ≈ (s − t)/(B·C·T²): times T² the
    # gradient is about (s − t)/(B·C) whatever T; without T² it would shrink by 1/T² (400× from T=1 to 20).
    g = torch.Generator().manual_seed(1)
    s = torch.randn(B, C, generator=g, dtype=torch.float64) * 0.1
    t = torch.randn(B, C, generator=g, dtype=torch.float64) * 0.1
    s, t = s - s.mean(1, keepdim=True), t - t.mean(1, keepdim=True)
    temps = [1.0, 2.0, 5.0, 10.0, 20.0]
    with_t2 = [_soft_grad_norm(name, T, s, t) for T in temps]
    without_t2 = [gn / T**2 for gn, T in zip(with_t2, temps)]
    assert max(with_t2) / min(with_t2) < 3
    assert max(without_t2) / min(without_t2) > 50


# ---------------------------------------------------------------- generic, over the registry


@pytest.mark.parametrize("name", loss_names())
def test_every_loss_is_finite_differentiable_and_reports_parts(batch, name):
    s, t, y = batch
    s = s.float().requires_grad_(True)
    t = t.float().requires_grad_(True)  # the loss must not send gradient into the teacher
    out = make_loss(name)(s, t, y)
    assert isinstance(out, LossOutput)
    assert out.total.ndim == 0 and torch.isfinite(out.total)
    assert {"hard", "soft"} <= set(out.parts)
    assert all(p.ndim == 0 and torch.isfinite(p) and not p.requires_grad for p in out.parts.values())
    out.total.backward()
    assert s.grad is not None and torch.isfinite(s.grad).all() and s.grad.abs().sum() > 0
    assert t.grad is None


@pytest.mark.parametrize("name", loss_names())
def test_every_loss_has_a_docstring_with_a_formula(name):
    doc = LOSSES.get(name).fn.__doc__
    assert doc and "total =" in doc


@pytest.mark.parametrize("name", loss_names())
def test_every_loss_survives_large_logits(name):
    s = torch.tensor([[80.0, -80.0, 0.0], [0.0, 90.0, -90.0]])
    t = torch.tensor([[-70.0, 70.0, 0.0], [60.0, 0.0, -60.0]])
    out = make_loss(name, 1.0, 0.5)(s, t, torch.tensor([0, 1]))
    assert torch.isfinite(out.total)


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize("T", [0, 0.0, -1.0, float("nan"), float("inf"), "4", True])
def test_bad_temperature_rejected(T):
    with pytest.raises(ConfigError, match="temperature"):
        make_loss("hinton", temperature=T)


@pytest.mark.parametrize("alpha", [1.5, -0.1, float("nan"), None])
def test_bad_alpha_rejected(alpha):
    with pytest.raises(ConfigError, match="alpha"):
        make_loss("hinton", alpha=alpha)


def test_unknown_name_lists_choices():
    with pytest.raises(ConfigError, match="unknown loss 'hintn'.*hinton"):
        make_loss("hintn")


@pytest.mark.parametrize("name,kwargs", [("hinton", {"lam": 0.1}), ("dkd", {"beta": 1.0}), ("source", {"x": 1})])
def test_unknown_kwarg_rejected(name, kwargs):
    key = next(iter(kwargs))
    with pytest.raises(ConfigError, match=f"no parameter '{key}'"):
        make_loss(name, **kwargs)


@pytest.mark.parametrize(
    "name,kwargs", [("source", {"lam": -0.1}), ("dkd", {"beta_tckd": -1.0}), ("dkd", {"beta_nckd": float("nan")})]
)
def test_negative_or_nan_weight_rejected(name, kwargs):
    key = next(iter(kwargs))
    with pytest.raises(ConfigError, match=key):
        validate_loss_params(name, 4.0, 0.9, **kwargs)


def test_valid_params_pass():
    validate_loss_params("dkd", 2.0, 0.0, beta_tckd=0.0, beta_nckd=8)
    validate_loss_params("source", 1, 1, lam=np.float64(0.5))


# ---------------------------------------------------------------- helpers


def test_soft_targets_and_entropy():
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    p1, p10 = soft_targets(logits, 1.0), soft_targets(logits, 10.0)
    assert torch.allclose(p1.sum(1), torch.ones(2))
    assert torch.allclose(p1[0], torch.tensor(np_softmax([[2.0, 1.0, 0.0]])[0], dtype=torch.float32))
    h1, h10 = entropy(p1), entropy(p10)
    assert h1.shape == (2,)
    assert h10[0] > h1[0]  # a higher T softens the distribution
    assert h1[1].item() == pytest.approx(math.log(3))  # uniform: log C nats
    assert entropy(torch.tensor([[1.0, 0.0, 0.0]])).item() == 0.0  # 0·log 0 = 0
    with pytest.raises(ConfigError, match="temperature"):
        soft_targets(logits, 0.0)


@pytest.mark.parametrize("name", loss_names())
def test_every_loss_states_its_facts_and_a_formula_in_latex(name):
    info = LOSSES.get(name)
    assert info.formula.startswith(("\\", "T^2")) and "\\\\" not in info.formula  # one backslash per command
    assert ("T" in info.formula) == info.uses_temperature and ("\\alpha" in info.formula) == info.uses_alpha
    assert all(p.symbol in info.formula for p in info.params.values())
