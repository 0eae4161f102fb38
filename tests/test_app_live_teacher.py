"""A cold teacher in the app (AppTest): the Distill and Temperature pages show its live curve and, after a few
steps, the time left; the job is then stopped (nothing is cached)."""
import json
import time

import pytest

SLOW_TEACHER = {"teacher": "mlp:1200-1200", "teacher_epochs": "60", "steps": "100", "student": "mlp:16"}


def _wait_for_teacher_steps(at, slot: str, seconds: float = 2.5, timeout: float = 120):
    """The session's job in ``slot`` once its teacher has trained for ``seconds`` and evaluated once."""
    job = at.session_state[f"kd.job.{slot}"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        evaluated = any(e[-1].kind == "epoch" for e in list(job.events))
        if job.started is not None and evaluated and time.monotonic() - job.started >= seconds:
            return job
        assert job.active, job.error
        time.sleep(0.2)
    raise AssertionError("the teacher did not train long enough")


def _teacher_chart(at) -> dict:
    found = [c for c in at.get("plotly_chart") if "live_teacher" in c.proto.id]
    assert found, "no live teacher chart"
    return json.loads(found[0].proto.spec)


def _progress_text(at) -> str:
    return " ".join(p.proto.text for p in at.get("progress"))


def _stop(job) -> None:
    job.stop()
    assert job.wait(60)
    assert job.status in ("stopped", "failed")


@pytest.mark.parametrize("page, button", [("pages/1_Distill.py", "run"), ("pages/2_Temperature.py", "train_teacher")])
def test_a_cold_teacher_shows_its_live_curve_and_the_time_left(app, kdlab_cache, page, button):
    app.query_params.update(SLOW_TEACHER)
    app.switch_page(page).run()
    app.button(key=button).click().run()
    job = _wait_for_teacher_steps(app, "distill" if button == "run" else "teacher")
    try:
        app.run()
        assert not app.exception, app.exception
        spec = _teacher_chart(app)
        by = {d["meta"]["metric"]: d for d in spec["data"]}
        assert by["train_loss"]["x"] and by["test_accuracy"]["y"]  # losses at steps, accuracy at evaluations
        assert 0 < by["test_accuracy"]["y"][-1] <= 1
        text = _progress_text(app)
        assert "Training the teacher" in text and "step" in text and text.endswith(" left"), text
    finally:
        _stop(job)
