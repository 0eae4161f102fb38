"""kdlab.ui.live: a job's events as curves, progress and, for a cold teacher, its curve and the time left."""
import time

import pytest

from kdlab.base.config import TeacherConfig, TrainConfig
from kdlab.base.lab import Lab
from kdlab.plots import figures as plots
from kdlab.runs.teacher import get_teacher
from kdlab.training.engine import Event
from kdlab.ui import live


def _step(step: int, total: int = 1000, loss: float = 1.0) -> Event:
    return Event("step", 1, step, total, {"train_loss": loss})


def _epoch(step: int, seconds: float, acc: float, total: int = 1000) -> Event:
    return Event("epoch", 1, step, total, {"train_loss": 0.5, "test_accuracy": acc, "seconds": seconds})


def test_the_teachers_events_come_from_either_kind_of_job():
    ev = _step(3)
    assert live.teacher_events([(0, "teacher", ev), (0, "distilled", _step(1))]) == [ev]  # a Distill job
    assert live.teacher_events([("teacher", ev)]) == [ev]  # the Temperature page's teacher job
    assert live.teacher_training([(0, "teacher", ev)])
    assert not live.teacher_training([(0, "teacher", ev), (0, "distilled", _step(1))])
    assert not live.teacher_training([("teacher", Event("done", 1, 9, 9, reason="completed"))])


def test_no_estimate_before_a_few_steps_and_seconds():
    assert live.seconds_left([], 10.0) is None
    assert live.seconds_left([_step(3)], 10.0) is None  # too few steps
    assert live.seconds_left([_step(50)], 1.0) is None  # too soon
    assert live.seconds_left([_step(50)], None) is None  # nothing to measure against
    assert live.teacher_line([_step(3)], 1.0) == "Training the teacher: step 3 of 1,000"


def test_the_rate_is_the_engines_own_clock_once_it_has_evaluated():
    # 100 steps in 4 s by the job's clock: 900 steps left at 25 steps/s
    assert live.seconds_left([_step(100)], 4.0) == pytest.approx(36.0)
    # the engine's own seconds at its evaluation (200 steps in 10 s) beat the job's clock (which saw setup)
    events = [_step(100), _epoch(200, 10.0, 0.8), _step(250)]
    assert live.steps_per_second(events, 30.0) == pytest.approx(20.0)
    assert live.seconds_left(events, 30.0) == pytest.approx(750 / 20)
    # an evaluation too early to measure a rate (12 steps in 0.1 s) leaves the job's clock in charge
    early = [_epoch(12, 0.1, 0.5), _step(60)]
    assert live.steps_per_second(early, 3.0) == pytest.approx(20.0)


@pytest.mark.parametrize("seconds, text", [(None, ""), (4, "a few seconds left"), (38, "about 40 s left"),
                                           (61, "about 1 min left"), (140, "about 2.5 min left"),
                                           (1500, "about 25 min left")])
def test_the_time_left_is_rounded_like_an_estimate(seconds, text):
    assert live.time_left_text(seconds) == text


def test_the_distill_progress_line_says_how_long_the_teacher_still_needs():
    events = [(0, "teacher", _step(100))]
    fraction, text = live.progress(events, Lab(), elapsed=4.0)
    assert fraction == pytest.approx(0.1)
    assert text == "Training the teacher (it is then cached): step 100 of 1,000 · about 35 s left"
    assert "left" not in live.progress(events, Lab())[1]


def test_a_real_teachers_curve_and_its_measured_rate(digits, kdlab_cache, torch_one_thread, monkeypatch):
    """A real teacher on digits, watched as a page would: the curve grows with its events, and halfway the rate
    the estimate uses is the rate this test measures on its own clock over the same steps (the same window, so
    a busy machine slows both alike). The run is short, so the estimate may start sooner than the app's 2 s
    (that threshold is tested above)."""
    monkeypatch.setattr(live, "MIN_SECONDS_FOR_ESTIMATE", 0.0)  # a fast machine trains it in under a second
    seen: list[tuple[float, Event]] = []
    cfg = TeacherConfig("digits", "mlp:100", TrainConfig(epochs=20, batch_size=32, max_seconds=120))
    get_teacher(cfg, digits, on_event=lambda ev: seen.append((time.monotonic(), ev)))
    events = [ev for _, ev in seen if ev.kind != "done"]
    curve = live.teacher_curve(events)
    assert curve.step == sorted(curve.step) and curve.step[-1] == events[-1].step
    assert len(curve.test_accuracy) == 20 and curve.test_accuracy[-1] > 0.9
    half = next(i for i, (_, ev) in enumerate(seen) if ev.kind == "epoch" and ev.step >= ev.total_steps // 2)
    (t_first, first), (t_half, at_half) = seen[0], seen[half]
    ours = (at_half.step - first.step) / (t_half - t_first)  # steps per second, by this test's clock
    rate = live.steps_per_second([ev for _, ev in seen[:half + 1]], None)  # the engine's own clock
    assert rate is not None and ours / 2 <= rate <= ours * 2, (rate, ours)
    left = live.seconds_left([ev for _, ev in seen[:half + 1]], None)
    assert left == pytest.approx((at_half.total_steps - at_half.step) / rate)


def test_the_teacher_figure_is_in_the_teachers_colour_on_its_whole_budget():
    curve = live.teacher_curve([_step(10, 200, 2.0), _epoch(20, 1.0, 0.6, 200), _step(20, 200, 1.5)])
    fig = plots.teacher_training(curve, 200).to_dict()
    by = {d["meta"]["metric"]: d for d in fig["data"]}
    assert list(by["train_loss"]["x"]) == [10, 20] and list(by["train_loss"]["y"]) == [2.0, 1.5]
    assert list(by["test_accuracy"]["x"]) == [20] and list(by["test_accuracy"]["y"]) == [0.6]
    assert {d["line"]["color"] for d in fig["data"]} == {plots.ROLE_COLORS["teacher"]}
    assert list(fig["layout"]["xaxis"]["range"]) == [0, 200] and list(fig["layout"]["yaxis2"]["range"]) == [0, 1.02]
