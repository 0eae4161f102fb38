"""`kdlab playground` (kdlab/cli/commands/playground.py) and `kdlab bench --playground`, in process: the JSON
contract of issue 11, flags from the Playground's settings table, the human table, errors as one line."""
from __future__ import annotations

import json

import pytest

from conftest import cli
from kdlab.runs import playground as pg

QUICK = ["--steps", "100", "--grid", "20", "--frames", "2", "--quiet"]


@pytest.fixture(autouse=True)
def _isolated(kdlab_cache, torch_one_thread, monkeypatch):
    monkeypatch.setattr(pg, "TEACHER_STEPS", 300)  # the command, not the teacher's accuracy, is under test


def test_json_has_the_three_arms_per_seed_and_the_teacher(capsys):
    code, out, err = cli(capsys, "playground", "--dataset", "moons", "--labelled", "10", "--seeds", "2",
                         "--unlabelled", "300", "-T", "2", "--json", *QUICK)
    assert code == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 1  # exactly one JSON object: scripts can json.loads stdout
    res = json.loads(lines[0])
    assert res["seeds"] == [0, 1] and res["datasets"] == ["moons", "moons:seed=1"]
    for arm in pg.ARMS:
        a = res["arms"][arm]
        assert len(a["per_seed"]) == 2 and all(0 <= v <= 1 for v in a["per_seed"])  # fractions
        assert a["mean"] == pytest.approx(sum(a["per_seed"]) / 2) and a["std"] >= 0
    assert 0.8 < res["teacher"]["test_accuracy"] <= 1 and res["teacher"]["source"] == ["trained", "trained"]
    gain = res["arms"]["soft"]["mean"] - res["arms"]["scratch"]["mean"]
    assert res["gain"]["soft_minus_scratch"] == pytest.approx(gain)
    cfg = res["config"]  # every flag reached the config; the noise is written out (moons' own)
    assert (cfg["transfer"], cfg["temperature"], cfg["steps"], cfg["noise"]) == (300, 2.0, 100, 0.2)


def test_the_human_output_is_a_table_of_the_arms(capsys):
    code, out, err = cli(capsys, "playground", "--seeds", "2", *QUICK)
    assert code == 0, err
    rows = out.splitlines()
    assert rows[0].startswith("spirals: 10 labelled of 2000 training points") and "seeds 0, 1" in rows[0]
    names = [r.split("  ")[0] for r in rows[2:6]]
    assert names == ["teacher", "scratch (labels alone)", "hard pseudo-labels", "soft targets"]
    assert "points" in rows[4] and "±" in rows[3]  # hard: its gain over scratch; scratch: mean ± std, per seed


@pytest.mark.parametrize("argv, words", [
    (["--dataset", "digits"], "choose one of"),
    (["--labelled", "4"], "labelled must be a whole number in [5, 200]"),
    (["--student", "mlp:1024"], "small networks"),
    (["--seeds", "11"], "--seeds must be in [1, 10]"),
    (["--alpha", "x"], "alpha"),
])
def test_bad_flags_exit_2_with_one_line(capsys, argv, words):
    code, out, err = cli(capsys, "playground", *argv, *QUICK)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and out == "" and len(lines) == 1 and lines[0].startswith("kdlab: error: "), err
    assert words in lines[0]


def test_help_lists_a_flag_per_row_of_the_settings_table(capsys):
    code, out, _ = cli(capsys, "playground", "--help")
    assert code == 0
    for s in pg.PLAYGROUND_SETTINGS:
        assert s.flag in out, s.flag
    assert "--unlabelled" in out and "(default: 10)" in out  # an alias of --transfer; labelled's default


def test_bench_playground_prints_its_numbers(capsys):
    from kdlab.cli.commands import bench

    code, out, err = cli(capsys, "bench", "--playground", "moons", "--repeats", "1", "--no-effect", "--quiet",
                         "--json")
    assert code == 0, err
    res = json.loads(out)
    assert res["section"] == "playground" and res["warm_run_s"]["median"] > 0 and res["snapshots_per_run"] > 2
    assert 0 < res["teacher_redraw_ms"]["median"] and res["teacher_redraw_ms"]["json_kb"] > 1
    assert "effect_spirals_10_labels" not in res
    text = bench.show(res)  # what `kdlab bench --playground` prints without --json
    for words in ("one run, teacher in memory", "cold teacher", "teacher field at a new T", "three student figures"):
        assert words in text, text
    code, _, err = cli(capsys, "bench", "--playground", "digits")
    assert code == 2 and "2-D toy" in err
