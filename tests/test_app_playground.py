"""pages/0_Playground.py in AppTest: a run through the pool drawn live and replayed, Stop, the teacher's field at T
without a job, links that reproduce the view, and bad link values that fall back with a notice."""
import json
import time

import numpy as np
import pytest

from kdlab.runs.playground import ARMS, PlaygroundConfig

PAGE = "pages/0_Playground.py"
FAST = {"steps": "200", "grid": "24", "frames": "5"}  # the default teacher (cached once per session), quick students


def _charts(at) -> dict[str, dict]:
    """The page's Plotly figures by their key's last part: teacher, scratch, hard, soft."""
    return {c.proto.id.rsplit(".", 1)[-1]: json.loads(c.proto.spec) for c in at.get("plotly_chart")
            if "pg_chart" in c.proto.id}


def _confidence(fig: dict) -> float:
    """Mean confidence of a panel's shading: its heatmap codes are class + confidence."""
    z = np.array(fig["data"][0]["z"])
    return float((z - np.floor(z)).mean())


def _open(at, params: dict | None = None):
    at.query_params.clear()
    at.query_params.update(params or {})
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


@pytest.fixture
def ran(app, finish_jobs):
    """The page after one quick run (its teacher trained on the pool if the session's cache lacks it)."""
    at = _open(app, FAST)
    at.button(key="pg.run").click().run()
    assert "kd.job.playground" in at.session_state
    finish_jobs(at)
    assert not at.exception and not at.error, [e.value for e in at.error]
    return at


def test_defaults_render_with_every_setting_in_the_url(app):
    at = _open(app)
    assert not at.error and at.title[0].value == "Playground"
    assert at.selectbox(key="pg.dataset").value == "spirals" and at.number_input(key="pg.labelled").value == 10
    assert at.slider(key="pg.temperature").value == 4.0 and at.slider(key="pg.alpha").value == 0.9
    assert not at.button(key="pg.run").disabled
    params = dict(at.query_params)
    assert params["dataset"] == "spirals" and params["noise"] == "0.2" and params["temperature"] == "4"
    assert {"labelled", "transfer", "teacher", "student", "alpha", "steps", "seed", "points", "lr"} <= set(params)


def test_a_run_draws_four_panels_then_the_replay_goes_back_to_step_zero(ran):
    at = ran
    charts = _charts(at)
    assert set(charts) == {"teacher", *ARMS}
    for arm in ARMS:
        title = charts[arm]["layout"]["title"]["text"]
        assert "step 200" in title and "% test" in title
        assert len(charts[arm]["data"][0]["z"]) == 24  # the run's grid
    result = at.session_state["kd.playground.result"]
    assert result.final.reason == "completed" and result.final.step == 200
    final = {arm: charts[arm]["data"][0]["z"] for arm in ARMS}
    scrubber = at.select_slider(key="pg.frame")
    assert list(scrubber.options) == [f"step {f.step}" for f in result.frames]  # every snapshot, in order
    assert scrubber.value == len(result.frames) - 1 and len(result.frames) >= 6  # step 0, 5 frames (+ live ones)
    scrubber.set_value(0).run()
    assert not at.exception
    start = _charts(at)
    for arm in ARMS:
        assert "step 0" in start[arm]["layout"]["title"]["text"]
        assert start[arm]["data"][0]["z"] != final[arm]  # untrained students draw other regions
    assert start["teacher"] == charts["teacher"]  # the replay never touches the teacher's panel
    verdict = next(c.value for c in at.caption if c.value.startswith("Test accuracy on 1,000 points"))
    assert f"scratch {100 * result.final.arms['scratch'].test_accuracy:.1f} %" in verdict
    at.number_input(key="pg.steps").set_value(300).run()  # a changed setting marks the students stale
    assert any("Stale results" in w.value and "Training steps" in w.value for w in at.warning)


def test_the_temperature_slider_redraws_the_teacher_field_without_a_job(ran):
    at = ran
    from kdlab.ui import resources

    jobs_before = resources.pool().stats()
    confidence = {}
    for t in (1.0, 10.0):
        at.slider(key="pg.temperature").set_value(t).run()
        assert not at.exception and "kd.job.playground" not in at.session_state  # no job was started
        teacher = _charts(at)["teacher"]
        assert f"T = {t:g}" in teacher["layout"]["title"]["text"]
        confidence[t] = _confidence(teacher)
    assert confidence[10.0] < confidence[1.0] - 0.2  # a higher T pales the field
    assert resources.pool().stats() == jobs_before
    assert at.query_params["temperature"] == "10"  # the link follows the slider
    assert any("learnt at T = 4" in c.value for c in at.caption)  # the students were trained at the old T


def test_a_link_reproduces_the_view(app):
    link = {"dataset": "moons", "noise": "0.15", "labelled": "20", "transfer": "500", "student": "mlp:8",
            "T": "2.5", "alpha": "0.5", "steps": "300", "seed": "3"}
    at = _open(app, link)
    assert not at.warning, [w.value for w in at.warning]
    cfg = at.session_state["kd.playground.config"]
    assert cfg == PlaygroundConfig(dataset="moons", noise=0.15, labelled=20, transfer=500, student="mlp:8",
                                   temperature=2.5, alpha=0.5, steps=300, seed=3)
    assert at.selectbox(key="pg.dataset").value == "moons" and at.slider(key="pg.noise").value == 0.15
    assert at.slider(key="pg.temperature").value == 2.5 and at.number_input(key="pg.transfer").value == 500
    assert at.query_params["temperature"] == "2.5" and "T" not in at.query_params  # rewritten in its own name
    fresh = _open(at, {"dataset": "blobs"})  # a link naming another toy but no noise: that toy's own
    assert fresh.session_state["kd.playground.config"].noise == 0.4 and fresh.query_params["noise"] == "0.4"


def test_bad_link_values_fall_back_with_a_notice(app):
    at = _open(app, {"labelled": "abc", "T": "99", "dataset": "digits", "student": "cnn:small", "steps": "1e9"})
    assert not at.exception and not at.error
    notices = [w.value for w in at.warning if w.value.startswith("The link's")]
    assert len(notices) == 5, notices
    assert any("labelled='abc'" in n and "using the default, 10" in n for n in notices)
    assert any("student='cnn:small'" in n and "image inputs" in n for n in notices)
    assert at.session_state["kd.playground.config"] == PlaygroundConfig().resolved()
    assert at.query_params["labelled"] == "10" and at.query_params["temperature"] == "4"
    assert not at.button(key="pg.run").disabled


def test_switching_the_data_set_starts_from_its_own_noise(app):
    at = _open(app)
    at.slider(key="pg.noise").set_value(0.5).run()
    at.selectbox(key="pg.dataset").set_value("blobs").run()
    assert at.slider(key="pg.noise").value == 0.4 and at.query_params["noise"] == "0.4"


def test_fewer_training_points_than_the_counts_pull_the_counts_down(app):
    at = _open(app)
    at.number_input(key="pg.points").set_value(1000).run()
    assert not at.exception and not at.warning, [w.value for w in at.warning]
    cfg = at.session_state["kd.playground.config"]
    assert (cfg.points, cfg.transfer) == (1000, 1000) and at.number_input(key="pg.transfer").value == 1000


def test_a_network_the_playground_cannot_train_turns_run_off(app):
    app.session_state["pg.student"] = "mlp:1024"  # as if typed into the picker (AppTest cannot type options)
    at = _open(app)
    assert at.button(key="pg.run").disabled
    assert any(e.value.startswith("Run is off") and "small networks" in e.value for e in at.error)


def test_the_students_are_drawn_live_and_stop_keeps_what_they_learnt(ran, finish_jobs, monkeypatch):
    from kdlab.training import engine
    real_step = engine._train_step

    def slow_step(*args, **kwargs):  # ~3 x 20 s for 2 000 steps: the poll and the Stop surely land mid-run
        time.sleep(0.01)
        return real_step(*args, **kwargs)

    at = ran  # the teacher is cached: only the students are slowed
    monkeypatch.setattr(engine, "_train_step", slow_step)
    at.number_input(key="pg.steps").set_value(2000).run()
    at.button(key="pg.run").click().run()
    job = at.session_state["kd.job.playground"]
    deadline = time.monotonic() + 60
    while not any(kind == "snapshot" and snap.step >= 40 for kind, snap in list(job.events)):
        assert time.monotonic() < deadline and job.active, job.error
        time.sleep(0.05)
    at.run()  # what the poller draws while the job runs (AppTest has no timers: one full run)
    assert not at.exception
    live = {k: v for k, v in _charts(at).items() if k in ARMS}
    assert set(live) == set(ARMS) and any("live" in c.proto.id for c in at.get("plotly_chart"))
    assert all("step" in fig["layout"]["title"]["text"] for fig in live.values())
    assert any("Training the three students" in p.proto.text for p in at.get("progress"))
    at.button(key="stop.playground").click().run()
    assert job.wait(30) and job.status == "stopped"
    finish_jobs(at)
    assert not at.exception and not at.error
    result = at.session_state["kd.playground.result"]
    assert result.final.reason == "stopped" and 0 < result.final.step < 2000
    assert any("Stopped run" in w.value for w in at.warning) and not any("Stale" in w.value for w in at.warning)
    assert not at.button(key="pg.run").disabled



def _in_chinese(at):
    """The session's language set to Chinese for the next run, as kdlab.ui.i18n.set_from_url does for ?lang=zh in
    app.py's navigation. AppTest runs a page without app.py, so nothing draws the language switch whose key this
    is, and Streamlit drops an undrawn widget's state after each run: set it before every run."""
    from kdlab.ui.i18n import LANG

    at.session_state[LANG] = "zh"
    return at


def test_the_page_reads_in_chinese_with_lang_zh(app, finish_jobs):
    """In Chinese, the header, the notices, the widgets' labels, the Run button, the replay and the verdict come
    from the catalog (the run itself is the English test's quick one)."""
    at = _open(_in_chinese(app), {**FAST, "lang": "zh"})
    assert not at.error and at.title[0].value == "二维演练场"
    assert at.caption[0].value.startswith("看得见的蒸馏")
    assert at.button(key="pg.run").label == "运行"
    assert "演练场设置" in [h.value for h in at.sidebar.header]
    assert at.slider(key="pg.temperature").label == "温度 T"
    assert at.number_input(key="pg.labelled").label == "带标签的点数"
    assert any(i.value.startswith("按 **运行**") for i in at.info)
    assert any(e.label == "演练场展示了什么，可以试试什么" for e in at.expander)
    _in_chinese(at).button(key="pg.run").click().run()
    assert "kd.job.playground" in at.session_state
    finish_jobs(_in_chinese(at))
    assert not at.exception and not at.error, [e.value for e in at.error]
    result = at.session_state["kd.playground.result"]
    scrubber = at.select_slider(key="pg.frame")
    assert scrubber.label == "回放训练过程"
    assert list(scrubber.options) == [f"第 {f.step:,} 步" for f in result.frames]
    verdict = next(c.value for c in at.caption if c.value.startswith("1,000 个测试点上的测试准确率"))
    assert f"从零训练 {100 * result.final.arms['scratch'].test_accuracy:.1f} %" in verdict
    assert any(c.value.startswith("学过全部标签") for c in at.caption)  # the teacher's panel
    assert at.query_params["lang"] == "zh"  # the page's links keep the language
    _in_chinese(at).number_input(key="pg.steps").set_value(300).run()  # the stale notice names it in Chinese
    assert any(w.value.startswith("**结果已过时**") and "训练步数" in w.value for w in at.warning)
