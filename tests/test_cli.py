"""Tests for the kdlab CLI: in-process through kdlab.cli.main.main (plus one real `python -m kdlab` process).

The contract: with --json exactly one JSON object on stdout; a bad argument exits with status 2 and one
line on stderr starting "kdlab: error:", never a traceback."""
from __future__ import annotations

import json
import logging
import os
import runpy
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import cli
from kdlab.data import sources as data_sources
from kdlab.stores.teacher_cache import TeacherStore
from kdlab.cli.main import main
from kdlab.runs.teacher import MEMORY

REPO = Path(__file__).resolve().parents[1]
TINY = ["--dataset", "digits", "--arch", "mlp:32", "--epochs", "2", "--lr", "0.01"]


@pytest.fixture(autouse=True)
def _isolated(kdlab_cache, torch_one_thread, monkeypatch):
    for var in ("KDLAB_DATA_DIR", "KDLAB_MNIST_MIRROR", "KDLAB_FASHION_MNIST_MIRROR"):
        monkeypatch.delenv(var, raising=False)


def one_json_object(out: str) -> dict:
    lines = out.strip().splitlines()
    assert len(lines) == 1, out  # exactly one line, one object: scripts can `json.loads` stdout
    obj = json.loads(lines[0])
    assert isinstance(obj, dict)
    return obj


def assert_one_line_error(code: int, out: str, err: str) -> str:
    assert code == 2, (code, err)
    assert "Traceback" not in err and "Traceback" not in out
    assert out == ""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("kdlab: error: ")
    return lines[0]


# -------------------------------------------------------------------------------------------- distill


def test_distill_json_contract_and_cached_second_run(capsys):
    argv = ["distill", "--dataset", "digits", "--teacher", "mlp:500", "--student", "mlp:100", "--baseline", "--json"]
    code, out, err = cli(capsys, *argv)  # progress bars on: they must stay on stderr
    assert code == 0, err
    first = one_json_object(out)
    assert set(first) == {"config", "teacher", "student", "scratch", "baseline", "summary"}
    assert first["summary"]["seeds"] == [0] and first["summary"]["distilled"]["per_seed"] == [
        first["student"]["test_accuracy"]]
    assert {"source", "test_accuracy", "params", "seconds"} <= set(first["teacher"])
    assert first["teacher"]["source"] == "trained"
    assert first["teacher"]["test_accuracy"] > 0.95
    assert first["teacher"]["params"] == (64 * 500 + 500) + (500 * 10 + 10)
    for role in ("student", "baseline"):
        part = first[role]
        assert {"test_accuracy", "agreement", "params", "seconds", "history"} <= set(part)
        assert 0.0 <= part["test_accuracy"] <= 1.0 and 0.0 <= part["agreement"] <= 1.0
        assert part["steps"] == 1000 and part["reason"] == "completed"  # the default budget: 1 000 steps
        assert {"epoch", "step", "test_accuracy", "train_loss"} <= set(part["history"][-1])
        assert part["history"][-1]["step"] == 1000 and all(0.0 <= h["test_accuracy"] <= 1.0 for h in part["history"])
        assert part["test_accuracy"] > 0.93  # the defaults train a sensible student (teacher: ~97 %)
    assert set(first["baseline"]) == set(first["student"])
    assert first["config"]["teacher"] == "mlp:500" and first["config"]["temperature"] == 4.0
    assert first["config"]["alpha"] == 0.9 and first["config"]["train"]["steps"] == 1000

    MEMORY.clear()  # a second `kdlab` process starts with an empty memory
    code, out, err = cli(capsys, *argv, "--quiet")
    assert code == 0, err
    second = one_json_object(out)
    assert second["teacher"]["source"] == "cache"
    assert second["teacher"]["test_accuracy"] == first["teacher"]["test_accuracy"]
    assert second["teacher"]["seconds"] < first["teacher"]["seconds"]


def test_distill_options_reach_the_config(capsys):
    code, out, err = cli(capsys, "distill", "--teacher", "mlp:32", "--teacher-epochs", "2", "--student", "mlp:16",
                         "--epochs", "1", "--loss", "source", "--lam", "0.3", "--transfer-size", "200",
                         "--omit-classes", "3", "--omit-classes", "5", "--no-labels", "--optimizer", "sgd", "--lr", "0.05",
                         "--schedule", "step", "--seed", "4", "--json", "--quiet")
    assert code == 0, err
    cfg = one_json_object(out)["config"]
    assert cfg["loss"] == "source" and cfg["loss_params"] == {"lam": 0.3}
    assert cfg["transfer_size"] == 200 and cfg["omit_classes"] == [3, 5] and cfg["use_labels"] is False
    assert cfg["train"]["optimizer"] == "sgd" and cfg["train"]["schedule"] == "step" and cfg["train"]["seed"] == 4
    assert cfg["teacher_train"]["epochs"] == 2 and cfg["teacher_train"]["optimizer"] == "adam"


# ---------------------------------------------------------------------------------------------- sweep

SWEEP = ["sweep", "--teacher", "mlp:32", "--teacher-epochs", "2", "--student", "mlp:8", "--steps", "60",
         "--temperatures", "1,4", "--alphas", "0.5,0.9", "--seeds", "2"]  # 8 cells, 2 scratch twins: seconds


def _same(rows):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # wall time may differ


def test_sweep_json_gives_the_rows_and_with_ray_local_the_same_rows(capsys, kdlab_cache):
    code, out, err = cli(capsys, *SWEEP, "--json", "--quiet")
    assert code == 0, err
    local = one_json_object(out)
    rows = local["rows"]
    assert [(r["temperature"], r["alpha"], r["seed"]) for r in rows] == [
        (t, a, s) for s in (0, 1) for t in (1.0, 4.0) for a in (0.5, 0.9)]
    for r in rows:
        assert {"student_accuracy", "scratch_accuracy", "gain", "agreement", "seconds"} <= set(r)
        assert 0 < r["student_accuracy"] <= 1 and 0 < r["scratch_accuracy"] <= 1  # fractions, not percent
        assert r["gain"] == r["student_accuracy"] - r["scratch_accuracy"]
    assert len({r["scratch_accuracy"] for r in rows if r["seed"] == 0}) == 1  # one scratch twin a seed
    assert local["grid"] == {"temperatures": [1.0, 4.0], "alphas": [0.5, 0.9], "seeds": [0, 1]}
    assert local["mean_gain"][1][0] == pytest.approx((rows[2]["gain"] + rows[6]["gain"]) / 2)  # T=4, alpha=0.5
    assert local["teacher"]["arch"] == "mlp:32" and local["ray"] is None

    # the same command in a real process on a private local Ray: the same rows, and nothing on stderr from Ray
    env = dict(os.environ, KDLAB_CACHE_DIR=str(kdlab_cache), OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "kdlab", *SWEEP, "--json", "--quiet", "--ray", "local:2"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr == ""  # no Ray notices, no warnings: a user sees kdlab's bar and messages only
    remote = one_json_object(proc.stdout)
    assert _same(remote["rows"]) == _same(rows) and remote["ray"] == "local:2"
    assert remote["teacher"]["key"] == local["teacher"]["key"] and remote["teacher"]["source"] == "cache"
    assert time.monotonic() - t0 < 300


def test_sweep_for_people_with_a_bar_and_a_csv_file(capsys, kdlab_cache, tmp_path):
    import csv

    target = tmp_path / "sweep.csv"
    code, out, err = cli(capsys, *SWEEP, "--seeds", "1", "--csv", str(target))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("digits: mlp:32 (") and "-> mlp:8, 4 runs over 1 seed(s) in " in lines[0]
    assert lines[2].split() == ["T", "\\", "alpha", "0.5", "0.9"]
    assert [line.split()[0] for line in lines[3:5]] == ["1", "4"]
    assert all(cell[0] in "+-" for line in lines[3:5] for cell in line.split()[1:])  # signed points
    assert lines[-1] == f"rows written to {target}" and lines[-2].startswith("best: T=")
    assert "sweep" in err and "4/4 cells" in err and "teacher" in err  # the bars, on stderr
    with open(target, newline="") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 4 and list(table[0]) == ["temperature", "alpha", "seed", "student_accuracy",
                                                  "scratch_accuracy", "gain", "agreement", "seconds"]
    assert not list(tmp_path.glob("*.tmp-*"))  # written through a temporary file, which is gone


# -------------------------------------------------------------------------------------- teacher, cache


def test_teacher_json_and_cache_commands(capsys, kdlab_cache):
    code, out, err = cli(capsys, "teacher", *TINY, "--json")
    assert code == 0, err
    first = one_json_object(out)
    assert {"source", "test_accuracy", "params", "seconds", "key"} <= set(first)
    assert first["source"] == "trained" and 0.5 < first["test_accuracy"] <= 1.0 and first["warnings"] == []

    code, out, _ = cli(capsys, "teacher", *TINY, "--json")  # same process: from memory, reported as cache
    assert one_json_object(out)["source"] == "cache"
    MEMORY.clear()
    code, out, _ = cli(capsys, "teacher", *TINY, "--json")
    again = one_json_object(out)
    assert again["source"] == "cache" and again["key"] == first["key"]
    assert again["test_accuracy"] == first["test_accuracy"]

    code, out, _ = cli(capsys, "cache", "list", "--json")
    listing = one_json_object(out)
    assert code == 0 and listing["folder"] == str(kdlab_cache / "teachers")
    [row] = listing["entries"]
    assert row["key"] == first["key"] and row["state"] == "ok" and row["arch"] == "mlp:32"

    code, out, err = cli(capsys, "cache", "clear", "--json")  # stdin is no terminal here: it must not ask
    assert code == 2 and "pass --yes" in err and "delete 1 cached teacher(s)" in err
    code, out, _ = cli(capsys, "cache", "clear", "--yes", "--json")
    assert code == 0 and one_json_object(out)["removed"] == 1
    code, out, _ = cli(capsys, "cache", "list", "--json")
    assert one_json_object(out)["entries"] == []
    MEMORY.clear()
    code, out, _ = cli(capsys, "teacher", *TINY, "--json")
    assert one_json_object(out)["source"] == "trained"


def test_without_json_the_output_is_for_people(capsys, kdlab_cache):
    code, out, _ = cli(capsys, "cache", "list")
    assert code == 0 and out.startswith(f"teacher cache {kdlab_cache / 'teachers'}: 0 entries")
    code, out, _ = cli(capsys, "teacher", *TINY, "--quiet")
    assert code == 0 and out.startswith("teacher mlp:32 on digits: ") and "trained and cached" in out
    code, out, _ = cli(capsys, "cache", "list")
    assert "1 entries" in out.splitlines()[0] and "mlp:32" in out.splitlines()[2]


def test_corrupt_cache_file_is_reported_and_rebuilt(capsys, kdlab_cache, caplog):
    code, out, _ = cli(capsys, "teacher", *TINY, "--json")
    key = one_json_object(out)["key"]
    weights = kdlab_cache / "teachers" / key / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:-7])  # truncated
    MEMORY.clear()
    with caplog.at_level(logging.WARNING, logger="kdlab"):
        code, out, err = cli(capsys, "teacher", *TINY, "--json")
    assert code == 0 and "Traceback" not in err
    assert one_json_object(out)["source"] == "trained"
    messages = [r.getMessage() for r in caplog.records]
    assert any(key in m and "rebuilt" in m and "truncated" in m for m in messages), messages


def test_unwritable_cache_warns_and_completes(capsys, tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("KDLAB_CACHE_DIR", str(blocker / "cache"))
    code, out, err = cli(capsys, "teacher", *TINY, "--json")
    assert code == 0, err
    result = one_json_object(out)
    assert result["source"] == "trained" and result["warnings"] and "could not write" in result["warnings"][0]
    code, out, _ = cli(capsys, "cache", "list", "--json")
    assert code == 0 and one_json_object(out)["entries"] == []
    code, out, _ = cli(capsys, "cache", "clear", "--json")  # nothing to delete: no question
    assert code == 0 and one_json_object(out)["removed"] == 0


# ----------------------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize("argv, words", [
    (["distill", "--dataset", "nope"], "dataset='nope': choose one of digits, mnist"),
    (["teacher", "--dataset", "nope"], "dataset='nope': choose one of"),
    (["distill", "--teacher", "foo"], "valid forms"),
    (["distill", "--student", "mlp:a"], "valid forms"),
    (["teacher", "--arch", "cnn:big"], "valid forms"),
    (["distill", "--student", "cnn:small", "--dataset", "moons"], "image"),
    (["distill", "--loss", "kd"], "loss='kd': choose one of hinton, source"),
    (["distill", "--temperature", "0"], "temperature"),
    (["distill", "--temperature", "nan"], "temperature"),
    (["distill", "-T", "-2"], "temperature"),
    (["distill", "--alpha", "1.5"], "alpha"),
    (["distill", "--epochs", "0"], "epochs"),
    (["distill", "--teacher-epochs", "0"], "epochs"),
    (["teacher", "--epochs", "0"], "epochs"),
    (["distill", "--lr", "0"], "lr"),
    (["distill", "--batch-size", "0"], "batch_size"),
    (["distill", "--max-seconds", "-1"], "max_seconds"),
    (["distill", "--seed", "-1"], "seed"),
    (["distill", "--lam", "0.2"], "no parameter 'lam'"),
    (["distill", "--loss", "source", "--lam", "-1"], "lam"),
    (["distill", "--loss", "dkd", "--no-labels"], "needs labels"),
    (["distill", "--transfer-size", "-1"], "transfer_size"),
    (["distill", "--transfer-size", "100000"], "transfer set"),
    (["distill", "--omit-classes", "10"], "omitted class 10"),
    (["distill", "--device", "cuda"], "cuda"),
    (["distill", "--device", "cuda:x"], "device"),
    (["teacher", "--device", "gpu"], "device"),
    (["distill", "--temperature", "abc"], "temperature='abc': must be a number"),
    (["distill", "--epochs", "2.5"], "epochs='2.5': must be a whole number"),
    (["distill", "--optimizer", "rmsprop"], "optimizer='rmsprop': choose one of adam, sgd"),
    (["distill", "--seeds", "9"], "seeds must be a whole number in [1, 5]"),
    (["distill", "--preset", "nope"], "unknown preset 'nope'; choose one of: Default"),
    (["distill", "--frobnicate"], "unrecognized arguments"),
    (["sweep", "--temperatures", "1,2,3,4,6,8,12,16", "--alphas", "0.1,0.25,0.5,0.75,0.9", "--seeds", "2"],
     "the sweep has 80 runs; at most 60 are allowed (drop some values)"),  # the app's Sweep's limit and words
    (["sweep", "--seeds", "9"], "seeds must be a whole number in [1, 5]"),
    (["sweep", "--seeds", "0"], "seeds must be a whole number in [1, 5]"),
    (["sweep", "--temperatures", "0,4"], "temperature"),
    (["sweep", "--alphas", "0.5,1.5"], "alpha"),
    (["sweep", "--temperatures", "abc"], "temperatures='abc': must be a number"),
    (["sweep", "--temperatures", ","], "a sweep needs at least one temperature, one alpha and one seed"),
    (["sweep", "-T", "4"], "unrecognized arguments"),  # the grid sets T (--temperatures), alpha and the seeds
    (["sweep", "--seed", "3"], "unrecognized arguments"),
    (["sweep", "--student", "cnn:small", "--dataset", "moons"], "image"),
    (["sweep", "--preset", "nope"], "unknown preset 'nope'"),
    (["sweep", "--csv", "/nonexistent-folder/rows.csv"], "--csv /nonexistent-folder/rows.csv: cannot write there"),
    (["sweep", "--ray", "127.0.0.1:1"], "cannot reach a Ray cluster at 127.0.0.1:1"),  # within seconds
    (["sweep", "--ray", "local:zero"], "the number after 'local:'"),
    (["experiment", "small-transfer", "--ray", "127.0.0.1:1"], "cannot reach a Ray cluster"),
    (["experiment", "small-transfer", "--seeds", "99", "--ray", "local"], "seeds must be a whole number in [1, 20]"),
    (["cache", "purge"], "invalid choice"),
    (["frobnicate"], "invalid choice"),
    ([], "required"),
])
def test_bad_inputs_exit_2_with_one_line(capsys, kdlab_cache, no_gpu, argv, words):
    t0 = time.perf_counter()
    line = assert_one_line_error(*cli(capsys, *argv))
    assert words in line
    assert time.perf_counter() - t0 < 20
    store = TeacherStore(kdlab_cache)
    assert store.entries() == []  # refused before any teacher was trained


def test_mnist_offline_without_files(capsys, tmp_path, monkeypatch):
    empty = tmp_path / "empty-data"
    empty.mkdir()
    system = tmp_path / "empty-system"
    system.mkdir()
    monkeypatch.setenv("KDLAB_DATA_DIR", str(empty))
    monkeypatch.setattr(data_sources, "SYSTEM_DATA_ROOT", system)
    with socket.socket() as s:  # a port nobody listens on: connection refused at once, no internet needed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("KDLAB_MNIST_MIRROR", f"http://127.0.0.1:{port}/")
    t0 = time.perf_counter()
    line = assert_one_line_error(*cli(capsys, "distill", "--dataset", "mnist", "--json"))
    assert time.perf_counter() - t0 < 20  # fails fast, no hang
    assert "mnist" in line and "KDLAB_DATA_DIR" in line and "--data-dir" in line
    assert str(system / "mnist") in line and "download" in line
    assert not list((tmp_path / "kdlab-cache").rglob("*.gz"))  # nothing half-downloaded was kept


@pytest.mark.parametrize("stacked", [False, True], ids=["one-by-one", "stacked"])
def test_divergence_is_a_clean_error(capsys, kdlab_cache, monkeypatch, stacked):
    """A loss that turns NaN ends the command with one line naming the learning rate, on either trainer (the
    distilled student and its scratch twin are stacked where that pays)."""
    from kdlab.runs import batch, distill
    from kdlab.training import stacked as stacked_trainer
    from kdlab.training.losses import LossOutput

    def exploding(*args, **kwargs):
        def loss(student, teacher, labels):
            total = student.sum() * float("nan")
            return LossOutput(total, {"hard": total.detach(), "soft": total.detach()})
        return loss

    real_kl_ce = stacked_trainer.kl_ce
    args = ("distill", "--teacher", "mlp:32", "--teacher-epochs", "1", "--epochs", "1", "--json", "--quiet")
    assert cli(capsys, *args)[0] == 0  # the teacher, trained soundly and cached before the loss explodes

    def exploding_kl_ce(*args, **kwargs):
        total, hard, soft, grad = real_kl_ce(*args, **kwargs)
        return total * float("nan"), hard, soft, grad

    monkeypatch.setattr(distill, "bind_loss", exploding)
    monkeypatch.setattr(stacked_trainer, "kl_ce", exploding_kl_ce)
    with batch.stacking(stacked):
        line = assert_one_line_error(*cli(capsys, *args, "--lr", "0.5"))
    assert "learning rate 0.5" in line


def test_python_dash_m_kdlab_in_process(capsys, monkeypatch):
    """The `python -m kdlab` module turns main()'s status into the exit code."""
    monkeypatch.setattr(sys, "argv", ["kdlab", "distill", "--alpha", "1.5"])
    with pytest.raises(SystemExit) as exc:
        runpy.run_module("kdlab", run_name="__main__")
    assert exc.value.code == 2
    assert capsys.readouterr().err.startswith("kdlab: error: alpha")


@pytest.mark.timeout(120)
def test_real_process_entry_point(kdlab_cache):
    """One real `python -m kdlab`: a corrupt entry is rebuilt with a one-line warning on stderr, and stdout
    holds exactly the JSON object."""
    from kdlab.base.config import TeacherConfig, TrainConfig
    from kdlab.data import load_dataset
    from kdlab.runs.teacher import get_teacher

    cfg = TeacherConfig(dataset="digits", arch="mlp:32", train=TrainConfig(epochs=2, lr=0.01))
    key = get_teacher(cfg, load_dataset("digits")).key  # the same key the CLI arguments below give
    meta = kdlab_cache / "teachers" / key / "meta.json"
    meta.write_text(meta.read_text()[:-5])  # invalid JSON
    env = dict(os.environ, KDLAB_CACHE_DIR=str(kdlab_cache), OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    proc = subprocess.run([sys.executable, "-m", "kdlab", "teacher", *TINY, "--json"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=110)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    result = one_json_object(proc.stdout)
    assert result["source"] == "trained" and result["key"] == key
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("kdlab: WARNING:")]
    assert len(warnings) == 1 and key in warnings[0] and "rebuilt" in warnings[0]


# ------------------------------------------------------------------------------------- CLI hygiene


def test_help_shows_defaults_from_the_config_and_names_from_the_registries(capsys):
    with pytest.raises(SystemExit):
        main(["distill", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "Temperature T. Softens the teacher's outputs: softmax(logits / T). (default: 4)" in text
    assert "(default: 1000)" in text and "one of: hinton, source, soft-only, logit-mse, dkd" in text
    assert "one of: digits, mnist, fashion-mnist" in text


def test_a_preset_gives_the_settings_and_flags_override_it():
    from kdlab.cli.commands.distill import lab_from_args
    from kdlab.cli.main import build_parser

    lab = lab_from_args(build_parser().parse_args(["distill", "--preset", "Tiny student", "-T", "7", "--epochs", "3"]))
    assert lab.config.student == "mlp:10-10" and lab.config.temperature == 7.0  # from the preset, then the flag
    assert lab.config.train.epochs == 3 and lab.config.train.steps is None  # --epochs alone: an epoch budget


def test_presets_lists_every_preset_with_what_it_shows(capsys):
    from kdlab.runs.presets import preset_names

    code, out, _ = cli(capsys, "presets", "--json")
    listed = one_json_object(out)["presets"]
    assert code == 0 and [p["name"] for p in listed] == preset_names()
    assert all(p["summary"] and p["label"] for p in listed)


def test_a_closed_pipe_is_no_traceback(kdlab_cache):
    env = dict(os.environ, KDLAB_CACHE_DIR=str(kdlab_cache), OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    proc = subprocess.Popen([sys.executable, "-m", "kdlab", "presets"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before kdlab writes, as with `kdlab presets | head -0`
    err = proc.stderr.read().decode()
    assert proc.wait(60) == 141 and "Traceback" not in err and "BrokenPipe" not in err
