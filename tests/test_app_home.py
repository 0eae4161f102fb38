"""app.py (the home page and the router) in AppTest, and every page of the app's own page list."""
import pytest

from conftest import APP_ROOT
from kdlab.ui import layout

PAGES = layout.pages()  # the app's own list: a new page is tested with no edit here
# What each page must show with the default settings (its header and one thing of its own).
VISIBLE = {"Playground": "Press **Run**", "Distill": "press **Run**", "Temperature": "Train the teacher",
           "Sweep": "Run sweep", "Runs": "No runs yet", "Experiments": "Run experiment", "Lesson": "Look for:"}


def test_home_renders_with_the_current_loss(app):
    assert not app.exception and not app.error
    latex = app.latex[0].value
    assert "T = 4" in latex and r"\alpha = 0.9" in latex and r"\mathrm{KL}" in latex
    assert [b.label for b in app.button][:1] == ["Default"]
    assert [link.label.split("**")[1] for link in app.get("page_link")] == [title for _, title in PAGES]


def test_the_home_formula_is_the_chosen_losss_own(app):
    from kdlab.base.config import DistillConfig
    from kdlab.base.lab import Lab

    app.session_state["kd.lab"] = {"lab": Lab(DistillConfig(loss="source", loss_params={"lam": 0.3})), "preset": None}
    app.run()
    latex = app.latex[0].value
    assert r"\lambda = 0.3" in latex and "T =" not in latex and r"\alpha" not in latex


def test_a_preset_fills_the_settings_of_every_page(app):
    app.button(key="preset.Tiny student").click().run()
    assert "Tiny student" in app.success[0].value
    assert "T = 3" in app.latex[0].value  # the home page's formula follows the settings
    app.switch_page("pages/1_Distill.py").run()
    assert not app.exception
    assert app.selectbox(key="lab.student").value == "mlp:10-10"
    assert app.slider(key="lab.temperature").value == 3.0
    assert app.query_params["student"] == "mlp:10-10"  # and the URL reproduces it
    app.query_params.clear()  # as after following a navigation link
    app.switch_page("pages/2_Temperature.py").run()  # widget ids differ per page: the values must follow
    assert (app.selectbox(key="lab.dataset").value, app.selectbox(key="lab.teacher").value) == ("digits", "mlp:500")
    app.query_params.clear()
    app.switch_page("pages/3_Sweep.py").run()
    assert app.selectbox(key="lab.student").value == "mlp:10-10"
    app.query_params.clear()
    app.switch_page("pages/1_Distill.py").run()
    assert app.selectbox(key="lab.student").value == "mlp:10-10" and app.slider(key="lab.temperature").value == 3.0


@pytest.mark.parametrize("path, title", PAGES, ids=[title for _, title in PAGES])
def test_every_page_renders_its_own_content_with_defaults(app, path, title, kdlab_cache):
    assert title in VISIBLE, f"say what the new page {title} must show"
    app.switch_page(str(path.relative_to(APP_ROOT))).run()
    assert not app.exception, app.exception
    assert not app.error, [e.value for e in app.error]
    assert app.title[0].value == title
    shown = " ".join(e.value for e in [*app.info, *app.markdown, *app.caption]) + " ".join(b.label for b in app.button)
    assert VISIBLE[title] in shown, shown[:500]
