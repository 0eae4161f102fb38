"""pages/3_Sweep.py and pages/4_Runs.py in AppTest."""
import json

from streamlit.testing.v1 import AppTest

from conftest import APP_ROOT


def test_a_small_sweep_draws_both_heatmaps(app, finish_jobs):
    app.query_params.update({"steps": "30", "teacher": "mlp:64", "student": "mlp:16"})
    app.switch_page("pages/1_Distill.py").run()  # the sweep uses the lab's pair
    app.switch_page("pages/3_Sweep.py").run()
    app.multiselect(key="sweep.temperatures").set_value([1.0, 4.0]).run()
    app.multiselect(key="sweep.alphas").set_value([0.9]).run()
    assert app.query_params["temperatures"] == "1,4" and app.query_params["alphas"] == "0.9"  # a link keeps the grid
    app.button(key="run_sweep").click().run()
    finish_jobs(app)
    assert not app.exception and not app.error
    charts = {c.proto.id: json.loads(c.proto.spec) for c in app.get("plotly_chart")}
    acc = next(v for k, v in charts.items() if "sweep_acc" in k)["data"][0]
    assert acc["y"] == ["1", "4"] and acc["x"] == ["0.9"] and all(0 < row[0] <= 100 for row in acc["z"])
    assert any("sweep_gain" in k for k in charts)
    assert len(app.dataframe[0].value) == 2
    assert app.download_button[0].label == "Download CSV"


def test_a_grid_too_large_is_explained_and_cannot_run(app):
    """12 T x 7 alpha = 84 runs, over the 60 a sweep may have: a warning says so and Run sweep is disabled."""
    from kdlab.runs.sweep import ALPHA_OPTIONS, MAX_CELLS, T_OPTIONS

    app.switch_page("pages/3_Sweep.py").run()
    app.multiselect(key="sweep.temperatures").set_value(list(T_OPTIONS)).run()
    app.multiselect(key="sweep.alphas").set_value(list(ALPHA_OPTIONS)).run()
    assert len(T_OPTIONS) * len(ALPHA_OPTIONS) > MAX_CELLS
    assert any(w.value.startswith(f"{len(T_OPTIONS) * len(ALPHA_OPTIONS)} runs is more than the {MAX_CELLS}")
               for w in app.warning)
    assert app.button(key="run_sweep").disabled and not app.exception


def test_runs_lists_session_and_stored_runs_and_overlays_them(app, finish_jobs, kdlab_cache):
    app.query_params.update({"steps": "30", "teacher": "mlp:64", "student": "mlp:16"})
    app.switch_page("pages/1_Distill.py").run()
    app.button(key="run").click().run()
    finish_jobs(app)
    app.switch_page("pages/4_Runs.py").run()
    assert not app.exception and not app.error
    assert len(app.dataframe[0].value) >= 1
    overlay = next(c for c in app.get("plotly_chart") if "overlay" in c.proto.id)
    assert json.loads(overlay.proto.spec)["data"]
    assert [d.label for d in app.download_button] == ["Config and results (JSON)", "Student weights (safetensors)"]

    other = AppTest.from_file(str(APP_ROOT / "app.py"), default_timeout=60).run()  # another student's browser
    other.switch_page("pages/4_Runs.py").run()
    assert not other.exception and any("No runs yet" in i.value for i in other.info)  # runs are private
    assert not [e for e in other.expander if e.label == "Lecturer view"]  # no token set: no lecturer view


def test_the_runs_page_in_chinese(app, finish_jobs, kdlab_cache, speak):
    """?lang=zh: the Runs page's title, table columns, how a run ended, the overlay and the downloads are Chinese."""
    app.query_params.update({"steps": "30", "teacher": "mlp:64", "student": "mlp:16", "lang": "zh"})
    app.run()  # app.py reads ?lang=zh
    speak(app).switch_page("pages/4_Runs.py").run()
    assert not app.exception and app.title[0].value == "运行记录"
    assert any("还没有运行记录" in i.value for i in app.info)
    speak(app).switch_page("pages/1_Distill.py").run()
    speak(app).button(key="run").click().run()
    finish_jobs(app)
    speak(app).switch_page("pages/4_Runs.py").run()
    assert not app.exception and not app.error
    table = app.dataframe[0].value
    assert {"教师模型 %", "蒸馏 %", "从零训练 %", "提升（个百分点）", "结束方式", "本会话"} <= set(table.columns)
    assert table["结束方式"].iloc[0] == "已完成" and table["本会话"].iloc[0]
    assert any("次运行，最新的在前" in c.value for c in app.caption)
    overlay = json.loads(next(c for c in app.get("plotly_chart") if "overlay" in c.proto.id).proto.spec)
    assert overlay["layout"]["yaxis"]["title"]["text"] == "测试准确率"
    assert overlay["data"][0]["name"].endswith(" · 蒸馏")
    assert [d.label for d in app.download_button] == ["配置和结果（JSON）", "学生模型权重（safetensors）"]

def test_the_lecturer_sees_every_students_runs_with_the_token(app, finish_jobs, kdlab_cache, monkeypatch):
    monkeypatch.setenv("KDLAB_LECTURER_TOKEN", "s3cret")
    app.query_params.update({"steps": "30", "teacher": "mlp:64", "student": "mlp:16"})
    app.switch_page("pages/1_Distill.py").run()
    app.button(key="run").click().run()
    finish_jobs(app)
    lecturer = AppTest.from_file(str(APP_ROOT / "app.py"), default_timeout=60).run()
    lecturer.switch_page("pages/4_Runs.py").run()
    assert any("No runs yet" in i.value for i in lecturer.info)
    lecturer.text_input(key="runs.token").input("wrong").run()
    assert any("not the lecturer token" in e.value for e in lecturer.error)
    lecturer.text_input(key="runs.token").input("s3cret").run()
    assert not lecturer.exception and len(lecturer.dataframe[0].value) >= 1
    assert not lecturer.dataframe[0].value["this session"].any()  # another session's run, from the disk


def test_the_sweep_page_reads_in_chinese_with_lang_zh(app, finish_jobs, speak):
    from kdlab.base import i18n

    app.query_params.update({"lang": "zh", "steps": "30", "teacher": "mlp:64", "student": "mlp:16"})
    app.run()  # app.py reads ?lang=zh
    speak(app).switch_page("pages/1_Distill.py").run()
    speak(app).switch_page("pages/3_Sweep.py").run()
    assert not app.exception and not app.error
    assert app.title[0].value == "扫描" and app.button(key="run_sweep").label == "运行扫描"
    assert any(c.value.startswith("8 次蒸馏运行") for c in app.caption)  # the default grid: 4 T × 2 α × 1 seed
    speak(app).multiselect(key="sweep.temperatures").set_value([4.0]).run()
    speak(app).multiselect(key="sweep.alphas").set_value([0.9]).run()
    speak(app).button(key="run_sweep").click().run()
    finish_jobs(speak(app))
    assert not app.exception and not app.error, [e.value for e in app.error]
    assert {"随机种子", "学生模型 %", "从零训练 %", "提升（个百分点）"} <= set(app.dataframe[0].value.columns)
    assert i18n.translate("**Distilled student: test accuracy (%)**", "zh") in [m.value for m in app.markdown]
    assert app.download_button[0].label == "下载 CSV"
