"""pages/5_Experiments.py in AppTest: every experiment runs on digits (one seed) and draws its figures."""
import json

import pytest

from kdlab.experiments import experiment_names

EXPECTED = {  # a figure id fragment each experiment's report must draw
    "small-transfer": "exp.fig0", "omitted-class": "exp.tradeoff", "temperature-size": "exp.fig0",
    "source-recipe": "exp.fig0", "hinton-mnist": "exp.fig0",
}


def _open(app):
    app.switch_page("pages/5_Experiments.py").run()
    assert not app.exception
    return app


def _charts(app):
    return {c.proto.id: json.loads(c.proto.spec) for c in app.get("plotly_chart")}


def test_every_experiment_is_covered():
    assert set(EXPECTED) == set(experiment_names())


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_experiment_runs_on_digits_and_draws(name, app, finish_jobs):
    _open(app)
    app.selectbox(key="exp.name").set_value(name).run()
    assert app.selectbox(key="exp.dataset").value == "digits"  # the offline default
    app.number_input(key="exp.seeds").set_value(1).run()
    app.button(key="exp.run").click().run()
    finish_jobs(app, timeout=120)
    assert not app.exception and not app.error, [e.value for e in app.error]
    charts = _charts(app)
    assert any(EXPECTED[name] in k for k in charts), list(charts)
    assert all(spec["data"] for spec in charts.values())
    assert len(app.table[0].value) >= 2  # the arms table
    assert app.download_button[0].label == "Download the report (JSON)"


def test_the_bias_slider_redraws_from_the_stored_curve(app, finish_jobs):
    _open(app)
    app.selectbox(key="exp.name").set_value("omitted-class").run()
    app.number_input(key="exp.seeds").set_value(1).run()
    app.button(key="exp.run").click().run()
    finish_jobs(app, timeout=120)
    before = next(v for k, v in _charts(app).items() if "exp.classes" in k)
    app.select_slider(key="exp.bias").set_value(3.0).run()  # no job: the curve is already in the report
    assert not app.exception and "kd.job.experiment" not in app.session_state  # no new job was started
    after = next(v for k, v in _charts(app).items() if "exp.classes" in k)
    assert after["data"][2]["name"].startswith("distilled, bias +3")
    assert after["data"][2]["y"][3] >= before["data"][2]["y"][3]  # more 3s right with a bias on the 3 logit


def test_a_bad_request_shows_an_error_not_a_traceback(app, monkeypatch):
    from kdlab.base.errors import ConfigError
    from kdlab.ui import experiments_ui

    def refuse(*args, **kwargs):
        raise ConfigError("no such thing")

    monkeypatch.setattr(experiments_ui.runner, "submit", refuse)
    _open(app)
    app.button(key="exp.run").click().run()
    assert not app.exception
    assert any("no such thing" in e.value for e in app.error)


def test_a_link_reproduces_the_chosen_experiment(app):
    app.query_params.update({"name": "omitted-class", "dataset": "fashion-mnist", "seeds": "2"})
    _open(app)
    assert (app.selectbox(key="exp.name").value, app.selectbox(key="exp.dataset").value) == ("omitted-class",
                                                                                              "fashion-mnist")
    assert app.number_input(key="exp.seeds").value == 2
    app.selectbox(key="exp.name").set_value("source-recipe").run()
    assert app.query_params["name"] == "source-recipe"  # and the address bar follows the page


def test_a_bad_link_falls_back_with_a_notice(app):
    app.query_params.update({"name": "nope", "seeds": "99"})
    _open(app)
    assert app.selectbox(key="exp.name").value == "small-transfer" and app.number_input(key="exp.seeds").value == 3
    assert len([w for w in app.warning if w.value.startswith("The link's")]) == 2


def test_the_page_reads_in_chinese_with_lang_zh(app, speak):
    from kdlab.base import i18n
    from kdlab.experiments import EXPERIMENTS

    app.query_params["lang"] = "zh"
    app.run()  # app.py reads ?lang=zh
    speak(app).switch_page("pages/5_Experiments.py").run()
    assert not app.exception and not app.error
    assert app.title[0].value == "实验" and app.button(key="exp.run").label == "运行实验"
    assert any(i.value.startswith("选一个实验") for i in app.info)
    title = i18n.translate(EXPERIMENTS.get("small-transfer").title, "zh")
    assert title != EXPERIMENTS.get("small-transfer").title and title in app.selectbox(key="exp.name").options
    assert any(e.label == f"这个实验说明什么：{title}" for e in app.expander)


@pytest.mark.slow
def test_a_report_reads_in_chinese(app, finish_jobs, monkeypatch, speak):
    """The omitted-class report (its headline, bias slider, tables) in Chinese, with its figures."""
    import threading

    from kdlab.base import i18n

    session = i18n._reader_language  # AppTest formats a select box's value in the test's own thread, outside any
    monkeypatch.setattr(i18n, "_reader_language",  # session: there it must read as the Chinese session does
                        lambda: "zh" if threading.current_thread() is threading.main_thread() else session())
    app.query_params.update({"lang": "zh", "name": "omitted-class", "seeds": "1"})
    app.run()
    speak(app).switch_page("pages/5_Experiments.py").run()
    speak(app).button(key="exp.run").click().run()
    finish_jobs(speak(app), timeout=120)
    assert not app.exception and not app.error, [e.value for e in app.error]
    assert any("exp.tradeoff" in k for k in _charts(app))
    assert [m.label for m in app.metric] == ["从零训练的学生模型", "蒸馏的学生模型", "“3”认对率，从零训练",
                                             "“3”认对率，蒸馏"]
    assert app.metric[1].delta.endswith(" 个百分点")
    assert app.select_slider(key="exp.bias").label == "测试时给“3”的 logit 加上的偏置"
    assert list(app.table[0].value.columns)[:2] == ["均值", "标准差"]
    assert app.download_button[0].label == "下载报告（JSON）"
