"""pages/6_Lesson.py in AppTest: the lesson walked end to end in English and in Chinese, a figure at every step, the
step in the URL."""
import pytest

from kdlab.base import i18n
from kdlab.ui import lesson

PAGE = "pages/6_Lesson.py"


@pytest.fixture
def fresh_results(monkeypatch):
    monkeypatch.setattr(lesson, "_RESULTS", {})  # each test computes its steps (the server keeps them otherwise)


def _step(at) -> int:
    return at.session_state["kd.lesson.step"].step


def _run_if_asked(at, finish_jobs, speak=lambda at, lang: at, lang: str = "en"):
    """Press the step's Run button (or the teacher's), wait for its job, and rerun, until the step is drawn."""
    for _ in range(3):
        buttons = [b for b in at.button if b.key and b.key.startswith("lesson.run.")]
        if not buttons:
            return
        speak(at, lang)
        buttons[0].click().run()
        finish_jobs(speak(at, lang), timeout=180)


@pytest.fixture(scope="module")
def _walks_results():
    return {}


@pytest.fixture
def walks_results(monkeypatch, _walks_results):
    """The two languages' walks share their results (the English walk computes them, the Chinese one reads them,
    as a second class would); other tests start afresh."""
    monkeypatch.setattr(lesson, "_RESULTS", _walks_results)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_lesson_walks_end_to_end_with_a_figure_at_every_step(app, finish_jobs, walks_results, speak, lang):
    if lang != "en":  # a link to a class in Chinese: app.py (the home page here) reads ?lang=
        app.query_params["lang"] = lang
        app.run()
        assert app.session_state["kd.lang"] == lang and app.title[0].value == i18n.translate(
            "kdlab: a knowledge-distillation lab", lang)
    speak(app.switch_page(PAGE), lang).run()
    look_for = i18n.translate("**Look for:** {what}", lang).split("{what}")[0]
    seen = []
    for step in range(1, len(lesson.STEPS) + 1):
        assert _step(app) == step and app.query_params["step"] == str(step)
        _run_if_asked(app, finish_jobs, speak, lang)
        assert not app.exception and not app.error, (step, [e.value for e in app.error])
        assert any(i.value.startswith(look_for) for i in app.info)
        assert app.get("plotly_chart"), f"step {step} shows no figure"
        seen.append(app.header[0].value)
        if step < len(lesson.STEPS):
            speak(app, lang).button(key="lesson.next.top").click().run()
    assert seen == [f"{k}. {i18n.translate(s.title, lang)}" for k, s in enumerate(lesson.STEPS, 1)]
    if lang == "zh":  # the headings are the catalog's Chinese, not the English fallback
        assert all(i18n.translate(s.title, lang) != s.title for s in lesson.STEPS)
        assert app.button(key="lesson.next.top").label == i18n.translate("Next →", lang) != "Next →"
    assert app.button(key="lesson.next.top").disabled
    app.button(key="lesson.prev.bottom").click().run()
    assert _step(app) == len(lesson.STEPS) - 1


def test_a_link_opens_a_step_and_its_result_is_kept_for_the_next_visitor(app, finish_jobs, fresh_results):
    from streamlit.testing.v1 import AppTest

    from conftest import APP_ROOT

    app.query_params.update({"step": "3"})
    app.switch_page(PAGE).run()
    assert _step(app) == 3
    _run_if_asked(app, finish_jobs)
    assert any("every one of 3 seeds" in s.value for s in app.success)  # a clear gain over three seeds
    other = AppTest.from_file(str(APP_ROOT / "app.py"), default_timeout=60).run()  # another student, later
    other.query_params.update({"step": "3"})
    other.switch_page(PAGE).run()
    assert not [b for b in other.button if b.key and b.key.startswith("lesson.run.")]  # kept: no second run
    assert other.table


def test_the_clicker_keys_are_on_the_top_buttons(app):
    app.switch_page(PAGE).run()
    assert app.button(key="lesson.next.top").proto.shortcut.lower() == "pagedown"  # what clickers send
    assert app.button(key="lesson.prev.top").proto.shortcut.lower() == "pageup"


def test_a_failed_teacher_job_shows_its_error_and_the_button_again(app, finish_jobs, monkeypatch):
    """Steps 1 and 2 need the teacher: when its job fails, the step says why and offers to train it again (the
    finished job was only collected on later steps, so these stayed blank)."""
    from kdlab.base.errors import KdlabError
    from kdlab.ui import resources

    def failing(*args, **kwargs):
        raise KdlabError("no room left on the disk for the teacher")

    monkeypatch.setattr(resources, "cached_teacher", lambda *a, **kw: None)
    monkeypatch.setattr(lesson, "get_teacher", failing)
    app.query_params.update({"step": "1"})
    app.switch_page(PAGE).run()
    app.button(key=f"lesson.run.{lesson.TEACHER}").click().run()
    finish_jobs(app)
    assert not app.exception
    assert any("no room left on the disk" in e.value for e in app.error)
    assert app.button(key=f"lesson.run.{lesson.TEACHER}")  # offered again
