"""kdlab.runs.verdict and the Distill page's verdict sentence: a gain is clear only beyond the seed spread."""
import pytest

from kdlab.base.config import DistillConfig
from kdlab.base.record import ModelResult, RunRecord
from kdlab.runs.verdict import CLEAR_GAIN, CLEAR_LOSS, NO_CLEAR_DIFFERENCE, ONE_SEED, judge


@pytest.mark.parametrize("distilled, scratch, kind", [
    ([0.95, 0.94, 0.95], [0.80, 0.78, 0.83], CLEAR_GAIN),
    ([0.95, 0.90, 0.95], [0.94, 0.94, 0.94], NO_CLEAR_DIFFERENCE),  # seeds disagree
    ([0.950, 0.951, 0.960], [0.949, 0.950, 0.940], NO_CLEAR_DIFFERENCE),  # all positive, but within the spread
    ([0.80, 0.79, 0.81], [0.90, 0.90, 0.91], CLEAR_LOSS),
    ([0.95], [0.80], ONE_SEED),
])
def test_judge(distilled, scratch, kind):
    v = judge(distilled, scratch, 360)
    assert v.kind == kind and v.per_seed == pytest.approx([d - s for d, s in zip(distilled, scratch)])
    assert v.images == pytest.approx(v.gain * 360)


def _record(distilled, scratch, transfer_size=None):
    m = lambda role, a, seed: ModelResult(role, "mlp:8", a, 0.9, 10, 1e-6, [[180, 0], [0, 180]], [1.0, 1.0], seed)  # noqa: E731
    return RunRecord(DistillConfig(transfer_size=transfer_size), ["a", "b"], m("teacher", 0.97, 0),
                     [m("distilled", a, k) for k, a in enumerate(distilled)],
                     [m("scratch", a, k) for k, a in enumerate(scratch)])


def test_the_sentence_gives_points_images_and_spread_and_points_elsewhere_after_a_full_set_run():
    from kdlab.ui.distill import WHERE_KD_SHINES, verdict

    kind, text = verdict(_record([0.95, 0.94, 0.95], [0.80, 0.78, 0.83], transfer_size=50))
    assert kind == CLEAR_GAIN and "every one of 3 seeds" in text and "+14.3 points" in text
    assert "+52 of 360 test images" in text and WHERE_KD_SHINES not in text
    kind, text = verdict(_record([0.95, 0.90, 0.95], [0.94, 0.94, 0.94]))
    assert kind == NO_CLEAR_DIFFERENCE and WHERE_KD_SHINES in text
    assert verdict(_record([0.9], [])) is None
