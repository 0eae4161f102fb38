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


# -- Join the class (kdlab.ui.join) ------------------------------------------------------------------------

def _qr_texts(at) -> list[str]:
    """The text of every QR code the page shows, read back from the SVG it sends (tests/helpers/qr_decode.py)."""
    import base64
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent / "helpers"))
    from qr_decode import decode, matrix_from_svg

    texts = []
    for image in at.get("image"):
        for img in image.proto.imgs:
            svg = base64.b64decode(img.url.split(",", 1)[1]).decode() if img.url.startswith("data:image/svg") else ""
            if 'class="segno"' in svg:
                texts.append(decode(matrix_from_svg(svg))["text"])
    return texts


CLASS_URL = "http://192.0.2.7:8501/"


def test_the_home_page_shows_where_to_join_with_a_qr_code_of_that_address(app, monkeypatch):
    monkeypatch.setenv("KDLAB_PUBLIC_URL", CLASS_URL)
    app.run()
    assert not app.exception
    assert "Join the class" in [s.value for s in app.subheader]
    assert any(f"**{CLASS_URL}**" in m.value for m in app.markdown)
    assert _qr_texts(app) == [CLASS_URL]


def test_on_loopback_the_home_page_says_how_to_start_the_server_for_a_class(app, monkeypatch):
    from streamlit import config

    monkeypatch.delenv("KDLAB_PUBLIC_URL", raising=False)
    before = config.get_option("server.address")
    config.set_option("server.address", "127.0.0.1")  # what `kdlab serve` passes by default
    try:
        app.run()
    finally:
        config.set_option("server.address", before)
    note = " ".join(i.value for i in app.info)
    assert "listens on 127.0.0.1 only" in note and "kdlab serve --host 0.0.0.0" in note
    assert _qr_texts(app) == []


def test_presenter_mode_shows_the_join_code_first_and_beside_every_pages_title(app, monkeypatch):
    monkeypatch.setenv("KDLAB_PUBLIC_URL", CLASS_URL)
    app.query_params["present"] = "1"
    app.run()
    assert [s.value for s in app.subheader][0] == "Join the class"  # before the presets: the start of a lesson
    assert _qr_texts(app) == [CLASS_URL]
    app.switch_page("pages/1_Distill.py").run()
    assert not app.exception
    popover = app.get("popover")
    assert [p.proto.popover.label for p in popover] == ["Join"]
    inside = list(popover[0].children.values())
    assert [type(e).__name__ for e in inside] == ["Image", "Markdown"] and inside[1].value == f"**{CLASS_URL}**"
    assert _qr_texts(app) == [CLASS_URL]


def test_presenter_mode_enlarges_every_charts_type(app, finish_jobs):
    import json

    app.switch_page("pages/6_Lesson.py").run()
    if any(b.key == "lesson.run.teacher" for b in app.button):  # step 1 needs the presets' teacher
        app.button(key="lesson.run.teacher").click().run()
        finish_jobs(app)
    normal = json.loads(app.get("plotly_chart")[0].proto.spec)["layout"]["font"]["size"]
    app.session_state["kd.presenter"] = True  # the sidebar's switch (?present=1 sets the same)
    app.run()
    big = json.loads(app.get("plotly_chart")[0].proto.spec)["layout"]["font"]["size"]
    assert big > normal
