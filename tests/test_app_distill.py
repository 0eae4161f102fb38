"""pages/1_Distill.py in AppTest: a tiny real run, its charts, seeds, the stale marker, the URL, Stop."""
import json
import time

import pytest

TINY = {"steps": "200", "teacher": "mlp:64", "student": "mlp:16", "transfer_size": "0"}


def _spec(at, key_part):
    found = [c for c in at.get("plotly_chart") if key_part in c.proto.id]
    assert found, f"no chart with key {key_part}"
    return json.loads(found[0].proto.spec)


@pytest.fixture
def distill(app):
    app.query_params.update(TINY)
    app.switch_page("pages/1_Distill.py").run()
    assert not app.exception
    return app


def test_default_render(app):
    app.switch_page("pages/1_Distill.py").run()
    assert not app.exception and not app.error
    assert app.button(key="run").disabled is False
    assert app.query_params["temperature"] == "4" and app.query_params["teacher"] == "mlp:500"
    assert any("compression" in c.value for c in app.sidebar.caption)
    assert any("steps per student" in c.value for c in app.caption)  # what a press will train, beside Run


def test_a_tiny_run_draws_curves_confusions_and_the_table(distill, finish_jobs):
    at = distill
    at.button(key="run").click().run()
    assert "kd.job.distill" in at.session_state
    finish_jobs(at)
    assert not at.exception and not at.error
    table = at.table[0].value
    assert list(table.index) == ["teacher", "distilled student", "scratch student"]
    assert all(float(v) > 50 for v in table["test accuracy (%)"])  # far above digits' chance level of 10 %

    curves = _spec(at, "curves")
    by = {(d["meta"]["role"], d["meta"]["metric"]): d for d in curves["data"]}
    assert by[("distilled", "test_accuracy")]["x"][-1] == 200  # evaluated at the last of its 200 steps
    assert len(by[("scratch", "test_accuracy")]["y"]) == len(by[("distilled", "test_accuracy")]["y"])
    assert by[("distilled", "soft")]["y"] and by[("distilled", "hard")]["y"] and ("scratch", "soft") not in by

    n_test = 360  # digits' test split
    for role in ("teacher", "distilled", "scratch"):
        z = _spec(at, f"cm_{role}")["data"][0]["z"]
        assert len(z) == 10 and all(len(r) == 10 for r in z) and sum(map(sum, z)) == n_test
    diff = _spec(at, "cm_diff")["data"][0]["z"]
    assert sum(map(sum, diff)) == 0  # both students see every test image once
    assert "Gained most" in " ".join(c.value for c in at.caption)
    verdicts = [m.value for m in [*at.success, *at.info] if "scratch" in m.value]
    assert len(verdicts) == 1 and "One seed cannot tell" in verdicts[0], verdicts

    at.slider(key="lab.temperature").set_value(8.0).run()  # changing a setting marks the results stale
    assert any("Stale" in w.value and "Temperature T" in w.value for w in at.warning)
    assert at.query_params["temperature"] == "8"


def test_three_seeds_show_mean_spread_and_a_verdict_over_seeds(app, finish_jobs):
    app.query_params.update({**TINY, "transfer_size": "50", "seeds": "3", "steps": "300"})
    app.switch_page("pages/1_Distill.py").run()
    app.button(key="run").click().run()
    finish_jobs(app)
    assert not app.exception and not app.error
    table = app.table[0].value
    assert "±" in table["test accuracy (%)"].iloc[1] and len(table["per seed"].iloc[1].split(", ")) == 3
    verdict = next(m.value for m in [*app.success, *app.info] if "seeds" in m.value)
    assert "of 360 test images" in verdict
    record = app.session_state["kd.runs"][0]
    assert record.seeds == [0, 1, 2] and len(record.scratch) == 3


def test_malformed_query_parameters_fall_back_with_a_notice(app):
    app.query_params.update({"T": "hot", "alpha": "-3", "steps": "1e9", "teacher": "mlp:0", "dataset": "x",
                             "baseline": "perhaps", "junk": "1"})
    app.switch_page("pages/1_Distill.py").run()
    assert not app.exception and not app.error
    notices = [w.value for w in app.warning if w.value.startswith("The link's")]
    assert len(notices) == 6, notices
    assert app.slider(key="lab.temperature").value == 4.0 and app.selectbox(key="lab.teacher").value == "mlp:500"
    assert app.query_params["temperature"] == "4" and app.query_params["steps"] == "1000"


def test_an_old_link_with_epochs_means_an_epoch_budget(app):
    app.query_params.update({"epochs": "7", "T": "2"})  # kdlab 0.1's keys
    app.switch_page("pages/1_Distill.py").run()
    assert not app.exception and not [w for w in app.warning if w.value.startswith("The link's")]
    assert app.number_input(key="lab.steps").value == 0 and app.number_input(key="lab.epochs").value == 7
    assert app.slider(key="lab.temperature").value == 2.0


@pytest.mark.parametrize("role, spec, message", [
    ("student", "mlp:abc", "mlp needs hidden widths"),
    ("teacher", "mlp:8192-8192", "at most"),  # a shared server: no model that would starve everyone
    ("teacher", "cnn:small:dropout=2", "dropout"),
])
def test_a_bad_architecture_is_explained_beside_run(app, role, spec, message):
    app.session_state[f"lab.{role}"] = spec  # as if typed into the picker (AppTest cannot type options)
    app.switch_page("pages/1_Distill.py").run()
    assert not app.exception
    assert app.button(key="run").disabled
    beside_run = [e.value for e in app.main.error]
    assert any(message in e and e.startswith("Run is off") for e in beside_run), beside_run


def test_forged_widget_values_leave_a_working_page(app):
    app.switch_page("pages/1_Distill.py").run()
    app.session_state["lab.steps"] = float("nan")  # what a forged websocket message can deliver
    app.session_state["lab.temperature"] = 99.0  # beyond the slider (AppTest itself cannot send a string to one)
    app.session_state["lab.seeds"] = -4.0
    app.run()
    assert not app.exception and not app.error
    assert app.number_input(key="lab.steps").value in range(0, 20_001)
    assert 0.5 <= app.slider(key="lab.temperature").value <= 30 and app.number_input(key="lab.seeds").value in (1, 2, 3, 4, 5)
    lab = app.session_state["kd.lab"]["lab"]
    assert 0.5 <= lab.config.temperature <= 30 and 1 <= lab.seeds <= 5 and not app.button(key="run").disabled


def test_stop_keeps_what_was_learnt_and_names_the_stopped_model(distill, finish_jobs, monkeypatch):
    from kdlab.training import engine
    real_step = engine._train_step

    def slow_step(*args, **kwargs):  # ~20 s for 2 000 steps: the Stop click surely lands mid-run
        time.sleep(0.01)
        return real_step(*args, **kwargs)

    at = distill
    at.button(key="run").click().run()  # a first, complete run (it caches the teacher)
    finish_jobs(at)
    monkeypatch.setattr(engine, "_train_step", slow_step)
    at.number_input(key="lab.steps").set_value(2000).run()
    at.button(key="run").click().run()
    job = at.session_state["kd.job.distill"]
    while not any(role == "distilled" and ev.step >= 20 for _, role, ev in list(job.events)):
        time.sleep(0.05)  # the distilled student has learnt something
    at.button(key="stop.distill").click().run()
    assert job.wait(30) and job.status == "stopped"
    finish_jobs(at)
    assert not at.exception and not at.error
    assert "kd.job.distill" not in at.session_state and not at.button(key="run").disabled
    banner = next(w.value for w in at.warning if "Stopped run" in w.value)
    assert "the distilled student was stopped at step" in banner and "of 2000" in banner
    assert not any("Stale" in w.value for w in at.warning)  # a stopped run is not mistaken for stale results
    record = at.session_state["kd.runs"][0]
    assert record.reason == "stopped" and record.distilled[0].steps < 2000 and record.distilled[0].history
    assert not record.id  # a stopped run is not saved
    # The twin trains in lockstep with the distilled student (one stack), so it stopped at the same step.
    assert [m.steps for m in record.scratch] == [record.distilled[0].steps]
    assert list(at.table[0].value.index) == ["teacher", "distilled student", "scratch student"]


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


def test_at_t_1_the_page_says_why_alpha_changes_little(app, finish_jobs):
    app.query_params.update({"steps": "200"})  # the default teacher, mlp:500: confident on its training images
    app.switch_page("pages/1_Distill.py").run()
    distill = app
    distill.button(key="run").click().run()  # trains (and caches) the teacher
    finish_jobs(distill)
    distill.slider(key="lab.temperature").set_value(1.0).run()
    note = next(i.value for i in distill.sidebar.info if "α changes little" in i.value)
    assert "mean top probability of 0.9" in note and "is the label for" in note  # measured on this teacher
    distill.slider(key="lab.temperature").set_value(4.0).run()
    assert not any("α changes little" in i.value for i in distill.sidebar.info)


def test_one_job_a_session_across_pages_and_the_other_can_be_stopped(distill, finish_jobs, monkeypatch):
    import threading

    from kdlab.ui import process

    release = threading.Event()
    distill.session_state["kd.owner"] = "this-session"  # what runner.session_owner() names the session
    sweep = process.pool().submit(lambda job: release.wait(30), label="sweep", owner="this-session")  # another page's
    try:
        distill.button(key="run").click().run()
        message = next(e.value for e in distill.error if "already have a run in progress" in e.value)
        assert "“sweep”" in message and "kd.job.distill" not in distill.session_state
        distill.button(key="busy.stop").click().run()  # the offered Stop
        assert sweep.should_stop()
    finally:
        release.set()
    assert sweep.wait(10)


def test_in_chinese_the_page_its_results_and_its_figures_are_chinese(app, finish_jobs, speak):
    """?lang=zh: the page, the table, the verdict and the figures Plotly draws all read in Chinese after a run;
    the widgets keep their keys and the numbers stay numbers."""
    app.query_params.update({**TINY, "lang": "zh"})
    app.run()  # app.py reads ?lang=zh
    assert app.session_state["kd.lang"] == "zh"
    speak(app).switch_page("pages/1_Distill.py").run()
    assert not app.exception and not app.error
    assert app.title[0].value == "蒸馏"
    assert any("训练一个小的学生模型模仿大的教师模型" in c.value for c in app.caption)
    assert app.button(key="run").label == "运行"
    assert any(c.value.startswith("训练蒸馏的学生模型") for c in app.caption)  # what a press will train
    speak(app).button(key="run").click().run()
    finish_jobs(speak(app))
    assert not app.exception and not app.error
    table = app.table[0].value
    assert list(table.index) == ["教师模型", "蒸馏的学生模型", "从零训练的学生模型"]
    assert all(float(v) > 50 for v in table["测试准确率（%）"])
    assert any("一个随机种子分不清提升和噪声" in m.value for m in [*app.success, *app.info])
    curves = _spec(app, "curves")
    assert curves["layout"]["xaxis"]["title"]["text"] == "优化步"
    assert [a["text"] for a in curves["layout"]["annotations"]] == ["标签损失（CE）", "软目标损失（T²·KL）", "测试准确率"]
    assert {d["name"] for d in curves["data"]} >= {"蒸馏的学生模型", "从零训练的学生模型", "教师模型"}
    cm = _spec(app, "cm_teacher")
    assert cm["layout"]["xaxis"]["title"]["text"] == "预测类别" and cm["layout"]["yaxis"]["title"]["text"] == "真实类别"
    assert cm["data"][0]["x"] == [str(c) for c in range(10)]  # digits' class names stay digits
    assert any("提升最多" in c.value for c in app.caption)


@pytest.mark.parametrize("seeds", [1, 2])
def test_where_a_run_stopped_is_said_in_the_readers_language(digits, kdlab_cache, seeds):
    """The stopped run's banner names the student and the step in the reader's language; English by default (the
    CLI's and the JSON's)."""
    import dataclasses

    from conftest import StopAfter
    from kdlab.base.lab import Lab
    from kdlab.runs.batch import Run, run_all
    from kdlab.runs.records import build_record

    base = Lab().config.replace(teacher="mlp:32", student="mlp:16")
    lab = Lab(base.replace(train=dataclasses.replace(base.train, steps=200)), seeds=seeds)
    runs = [Run(k, cfg, lab.scratch) for k, cfg in enumerate(lab.seed_configs())]
    run_all(runs[:1], digits)  # the teacher, trained and cached: the stop below counts the students' steps only
    results = list(run_all(runs, digits, should_stop=StopAfter(50), keep_stopped=True).values())
    english = build_record(lab, results).stopped
    assert english.startswith("the ") and " was stopped at step " in english and english.endswith(
        "" if seeds == 1 else " seeds finished before it")
    chinese = build_record(lab, results, lang="zh").stopped
    assert "被停止" in chinese and "stopped" not in chinese and str(results[-1].distilled.steps) in chinese
