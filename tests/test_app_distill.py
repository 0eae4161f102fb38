"""pages/1_Distill.py in AppTest: a tiny real run, its charts, the stale marker, the URL, Stop."""
import json
import time

import pytest


def _charts(at):
    return {c.proto.id: c for c in at.get("plotly_chart")}


def _spec(at, key_part):
    found = [c for c in at.get("plotly_chart") if key_part in c.proto.id]
    assert found, f"no chart with key {key_part}"
    return json.loads(found[0].proto.spec)


@pytest.fixture
def distill(app):
    app.query_params.update({"epochs": "2", "teacher": "mlp:64", "student": "mlp:16"})
    app.switch_page("pages/1_Distill.py").run()
    assert not app.exception
    return app


def test_default_render(app):
    app.switch_page("pages/1_Distill.py").run()
    assert not app.exception and not app.error
    assert app.button(key="run").disabled is False
    assert app.query_params["T"] == "4" and app.query_params["teacher"] == "mlp:500"
    assert any("compression" in c.value for c in app.sidebar.caption)


def test_a_tiny_run_draws_curves_confusions_and_the_table(distill, finish_jobs):
    at = distill
    at.button(key="run").click().run()
    assert "kd.job.distill" in at.session_state
    finish_jobs(at)
    assert not at.exception and not at.error
    table = at.dataframe[0].value
    assert list(table["model"]) == ["teacher", "distilled student", "scratch student"]
    assert (table["test accuracy"] > 10).all()

    curves = _spec(at, "curves")
    by = {(d["meta"]["role"], d["meta"]["metric"]): d for d in curves["data"]}
    assert by[("distilled", "test_accuracy")]["x"] == [1.0, 2.0]
    assert len(by[("scratch", "test_accuracy")]["y"]) == 2
    assert by[("distilled", "soft")]["y"] and by[("distilled", "hard")]["y"]

    n_test = 360  # digits' test split
    for role in ("teacher", "distilled", "scratch"):
        z = _spec(at, f"cm_{role}")["data"][0]["z"]
        assert len(z) == 10 and all(len(r) == 10 for r in z) and sum(map(sum, z)) == n_test
    diff = _spec(at, "cm_diff")["data"][0]["z"]
    assert sum(map(sum, diff)) == 0  # both students see every test image once
    assert "Gained most" in " ".join(c.value for c in at.caption)
    verdicts = [m.value for m in [*at.success, *at.info] if "scratch" in m.value]
    assert len(verdicts) == 1, verdicts

    at.slider(key="lab.T").set_value(8.0).run()  # changing a setting marks the results stale
    assert any("Stale" in w.value and "T" in w.value for w in at.warning)
    assert at.query_params["T"] == "8"


def test_malformed_query_parameters_fall_back_with_a_notice(app):
    app.query_params.update({"T": "hot", "alpha": "-3", "epochs": "1e9", "teacher": "mlp:0", "dataset": "x",
                             "baseline": "perhaps", "junk": "1"})
    app.switch_page("pages/1_Distill.py").run()
    assert not app.exception and not app.error
    assert len(app.warning) == 6
    assert app.slider(key="lab.T").value == 4.0 and app.selectbox(key="lab.teacher").value == "mlp:500"
    assert app.query_params["T"] == "4" and app.query_params["epochs"] == "10"


@pytest.mark.parametrize("role, spec, message", [
    ("student", "mlp:abc", "mlp needs hidden widths"),
    ("teacher", "mlp:8192-8192", "at most"),  # a shared server: no model that would starve everyone
    ("teacher", "cnn:small:dropout=2", "dropout"),
])
def test_a_bad_architecture_is_a_message_not_a_traceback(app, role, spec, message):
    app.session_state[f"lab.{role}"] = spec  # as if typed into the picker (AppTest cannot type options)
    app.switch_page("pages/1_Distill.py").run()
    assert not app.exception
    assert any(message in e.value for e in app.error), [e.value for e in app.error]
    assert app.button(key="run").disabled


def test_stop_ends_the_run_and_leaves_the_page_usable(distill, finish_jobs, monkeypatch):
    from kdlab.training import engine
    real_step = engine._train_step

    def slow_step(*args, **kwargs):  # ~12 s for 100 epochs: the Stop click surely lands mid-run, even on a fast CPU
        time.sleep(0.01)
        return real_step(*args, **kwargs)

    monkeypatch.setattr(engine, "_train_step", slow_step)
    at = distill
    at.number_input(key="lab.epochs").set_value(100).run()
    at.button(key="run").click().run()
    job = at.session_state["kd.job.distill"]
    at.button(key="stop.distill").click().run()
    assert job.wait(30) and job.status == "stopped"
    finish_jobs(at)
    assert not at.exception and not at.error
    assert "kd.job.distill" not in at.session_state and not at.button(key="run").disabled


def test_a_queued_run_shows_its_place_then_completes(distill, finish_jobs, monkeypatch):
    import threading

    from kdlab.serve.jobs import JobPool
    from kdlab.ui import process

    monkeypatch.setattr(process, "_pool", JobPool(size=1))  # one worker, kept busy by another "session"
    release = threading.Event()
    blocker = process.pool().submit(lambda job: release.wait(30))
    try:
        distill.button(key="run").click().run()
        assert any("number 1 in the queue" in i.value for i in distill.info)
    finally:
        release.set()
    assert blocker.wait(10)
    finish_jobs(distill)
    assert not distill.exception and any("cm_diff" in c.proto.id for c in distill.get("plotly_chart"))


@pytest.mark.parametrize("distilled, scratch, kind, words", [
    (0.90, 0.80, "gain", "+10.0 points"),
    (0.942, 0.947, "no gain", "about the same as"),
    (0.80, 0.90, "no gain", "below"),
])
def test_the_verdict_says_whether_distillation_helped(distilled, scratch, kind, words):
    from kdlab.ui.distill import WHERE_KD_SHINES, verdict

    record = {"distilled": {"test_accuracy": distilled}, "scratch": {"test_accuracy": scratch}}
    got_kind, text = verdict(record)
    assert got_kind == kind and words in text
    assert (WHERE_KD_SHINES in text) == (kind == "no gain")  # only a run without a gain points elsewhere
    assert verdict({"distilled": {"test_accuracy": distilled}, "scratch": None}) is None


def test_the_verdict_counts_one_point_as_a_gain_and_points_elsewhere_only_after_a_full_run():
    from kdlab.ui.distill import WHERE_KD_SHINES, verdict

    assert verdict({"distilled": {"test_accuracy": 0.57}, "scratch": {"test_accuracy": 0.56}})[0] == "gain"
    small = {"distilled": {"test_accuracy": 0.80}, "scratch": {"test_accuracy": 0.80},
             "config": {"transfer_size": 300, "omit_classes": []}}
    kind, text = verdict(small)
    assert kind == "no gain" and WHERE_KD_SHINES not in text  # it already used a small transfer set
