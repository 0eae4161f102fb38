"""app.py (the home page and the router) in AppTest."""
import time

from streamlit.testing.v1 import AppTest

from conftest import APP_ROOT


def test_home_renders_with_the_current_loss(app):
    assert not app.exception and not app.error
    assert "T = 4" in app.latex[0].value and "0.9" in app.latex[0].value
    assert [b.label for b in app.button][:1] == ["Default"]


def test_a_preset_fills_the_settings_of_every_page(app):
    app.button(key="preset.Tiny student").click().run()
    assert "Tiny student" in app.success[0].value
    assert "T = 3" in app.latex[0].value  # the home page's formula follows the settings
    app.switch_page("pages/1_Distill.py").run()
    assert not app.exception
    assert app.selectbox(key="lab.student").value == "mlp:30"
    assert app.slider(key="lab.T").value == 3.0
    assert app.number_input(key="lab.epochs").value == 20
    assert app.query_params["student"] == "mlp:30"  # and the URL reproduces it
    app.query_params.clear()  # as after following a navigation link
    app.switch_page("pages/2_Temperature.py").run()  # widget ids differ per page: the values must follow
    assert (app.selectbox(key="lab.dataset").value, app.selectbox(key="lab.teacher").value) == ("digits", "mlp:500")
    app.switch_page("pages/3_Sweep.py").run()
    assert app.selectbox(key="lab.student").value == "mlp:30" and app.number_input(key="lab.epochs").value == 20
    app.switch_page("pages/1_Distill.py").run()
    assert app.selectbox(key="lab.student").value == "mlp:30" and app.slider(key="lab.T").value == 3.0


def test_every_page_renders_with_defaults(app):
    for page in ("pages/1_Distill.py", "pages/2_Temperature.py", "pages/3_Sweep.py", "pages/4_Runs.py"):
        app.switch_page(page).run()
        assert not app.exception, (page, app.exception)
        assert not app.error, (page, [e.value for e in app.error])


def test_home_first_render_is_quick():
    start = time.perf_counter()
    at = AppTest.from_file(str(APP_ROOT / "app.py"), default_timeout=30).run()
    assert not at.exception
    assert time.perf_counter() - start < 5  # ~0.4 s here once modules are imported; the browser test times it for real
