"""pages/2_Temperature.py in AppTest: cached logits only, flatter at higher T, and fast."""
import json
import math

from kdlab.plots.bars import read_bars


def _examples(at):
    """The soft-target bars drawn (kdlab.plots.bars), in page order: the examples', then a drawing's."""
    return [h.proto.body for h in at.get("html") if "data-kd-bars" in h.proto.body]


def _teacher_bars(at):
    """(max probability, entropy) of the first example's drawn teacher distribution at the chosen T."""
    bars = [b for b in read_bars(_examples(at)[0]) if b["role"] == "teacher"]
    p = bars[-1]["probs"]  # the last teacher bar set is the chosen T (the first is T = 1)
    return max(p), -sum(q * math.log(q) for q in p if q > 0)


def _ready(app, finish_jobs):
    app.switch_page("pages/2_Temperature.py").run()
    if any(b.key == "train_teacher" for b in app.button):  # not cached yet: train it through the pool
        app.button(key="train_teacher").click().run()
        finish_jobs(app)
    assert not app.exception and not app.error
    assert _examples(app)
    return app


def test_higher_temperature_draws_a_flatter_distribution(app, finish_jobs):
    at = _ready(app, finish_jobs)
    at.slider(key="temp.temperature").set_value(1.0).run()
    p1, h1 = _teacher_bars(at)
    at.slider(key="temp.temperature").set_value(10.0).run()
    p10, h10 = _teacher_bars(at)
    assert p10 < p1 and h10 > h1
    sim = next(c for c in at.get("plotly_chart") if "similarity" in c.proto.id)
    assert json.loads(sim.proto.spec)["layout"]["meta"]["temperature"] == 10.0
    assert any(m.value == "**Average soft targets at T = 10**" for m in at.markdown)


def test_every_example_mode_renders(app, finish_jobs):
    at = _ready(app, finish_jobs)
    for mode in ("at random", "where the teacher is least sure", "by class"):
        at.radio(key="temp.mode").set_value(mode).run()
        assert not at.exception and len(_examples(at)) == 3


def test_a_link_reproduces_the_view(app, finish_jobs):
    _ready(app, finish_jobs)  # the teacher is cached
    fresh = app
    fresh.query_params.clear()
    fresh.query_params.update({"T": "2", "mode": "at random", "sample": "3", "teacher": "mlp:500"})
    fresh.switch_page("pages/2_Temperature.py").run()
    assert not fresh.exception
    assert fresh.slider(key="temp.temperature").value == 2.0 and fresh.radio(key="temp.mode").value == "at random"
    assert fresh.query_params["temperature"] == "2" and fresh.query_params["sample"] == "3"
    assert len(_examples(fresh)) == 3
    fresh.button(key="temp.new").click().run()  # a new random draw is in the link too
    assert fresh.query_params["sample"] == "4"


def test_the_drawing_section_waits_for_a_drawing(app, finish_jobs):
    at = _ready(app, finish_jobs)
    assert any("Draw your own" in m.value for m in at.markdown)
    assert any("black square" in i.value for i in at.info)  # nothing drawn yet: an invitation, not a guess
