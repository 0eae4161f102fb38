"""kdlab.stores.run_store: finished runs on disk; atomic, verified, validated, capped by count and bytes, and
never unpickled."""
import json
import logging
import os
import time

import pytest
import torch
from safetensors.torch import load as st_load

from kdlab.base.config import DistillConfig, TrainConfig
from kdlab.base.record import ModelResult, RunRecord
from kdlab.stores import atomic
from kdlab.stores.run_store import RunNotFound, RunStore


def _model(role, accuracy=0.5):  # class "c" has no test example: its accuracy is NaN
    return ModelResult(role, "mlp:8", accuracy, 0.9, 100, 1e-6, [[1, 0, 0], [1, 2, 0], [0, 0, 0]],
                       [1.0, 2 / 3, float("nan")])


def _record(label="r", accuracy=0.5):
    return RunRecord(DistillConfig(), ["a", "b", "c"], _model("teacher", 0.9), [_model("distilled", accuracy)],
                     label=label)


def _weights():
    return {"0.weight": torch.randn(3, 4), "0.bias": torch.zeros(3)}


def test_save_then_load_round_trips_and_survives_a_restart(tmp_path):
    store = RunStore(tmp_path)
    w = _weights()
    run_id = store.save(_record(), w, {"distilled": torch.randn(5, 3)}).id
    again = RunStore(tmp_path)  # a new server process
    rec = again.load(run_id)
    assert rec.id == run_id and rec.label == "r" and rec.config == DistillConfig()
    assert rec.distilled[0].per_class_accuracy[2] is None  # strict JSON: NaN became null
    json.loads((tmp_path / "runs" / run_id / "run.json").read_text())  # valid JSON on disk
    loaded = st_load(again.weights_bytes(run_id))
    assert torch.equal(loaded["0.weight"], w["0.weight"])
    assert again.outputs(run_id)["distilled"].shape == (5, 3)
    assert [r.id for r in again.list()] == [run_id]


def test_list_is_newest_first_and_capped(tmp_path):
    store = RunStore(tmp_path, max_runs=3)
    ids = [store.save(_record(str(i)), _weights()).id for i in range(5)]
    assert store.ids() == ids[::-1][:3]
    assert [r.label for r in store.list()] == ["4", "3", "2"]


def test_tampered_weights_are_refused(tmp_path):
    store = RunStore(tmp_path)
    run_id = store.save(_record(), _weights()).id
    path = tmp_path / "runs" / run_id / "weights.safetensors"
    path.write_bytes(path.read_bytes()[:-4] + b"XXXX")
    with pytest.raises(RunNotFound, match="checksum"):
        RunStore(tmp_path).weights_bytes(run_id)


def test_ids_are_never_paths(tmp_path):
    store = RunStore(tmp_path)
    for bad in ("../../etc", "/etc/passwd", "", "20250101-120000000-abcdeg"):
        with pytest.raises(RunNotFound):
            store.load(bad)


def test_temporary_and_damaged_entries_are_invisible(tmp_path):
    store = RunStore(tmp_path)
    good = store.save(_record(), _weights()).id
    (tmp_path / "runs" / ".tmp-20250101-120000000-abcdef").mkdir()  # a writer that died
    broken = tmp_path / "runs" / "20200101-000000000-abcdef"
    broken.mkdir()
    (broken / "run.json").write_text("{not json")
    assert [r.id for r in RunStore(tmp_path).list()] == [good]


def test_an_unwritable_store_raises_oserror(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OSError):
        RunStore(blocker).save(_record(), _weights())


def test_a_record_missing_what_readers_need_is_skipped_not_fatal(tmp_path):
    store = RunStore(tmp_path)
    good = store.save(_record("good"), _weights()).id
    bad = store.save(_record("bad"), _weights()).id
    path = tmp_path / "runs" / bad / "run.json"
    raw = json.loads(path.read_text())
    del raw["distilled"]  # parseable, but not a record
    path.write_text(json.dumps(raw))
    fresh = RunStore(tmp_path)
    assert [r.label for r in fresh.list()] == ["good"] and fresh.ids() == [bad, good]
    with pytest.raises(RunNotFound, match="malformed run record"):
        fresh.load(bad)


def test_the_record_of_a_real_run_round_trips(digits, torch_one_thread, kdlab_cache):
    from kdlab.runs.distill import run_distill
    from kdlab.base.lab import Lab
    from kdlab.runs.records import build_record

    cfg = DistillConfig(teacher="mlp:32", student="mlp:8", train=TrainConfig(epochs=1),
                        teacher_train=TrainConfig(epochs=1))
    rec = build_record(Lab(cfg), [run_distill(cfg, data=digits)])
    text = json.dumps(rec.to_json(), allow_nan=False)
    assert RunRecord.from_json(json.loads(text)) == rec
    assert rec.classes == list(digits.classes) and len(rec.teacher.confusion) == 10
    assert rec.scratch[0].params == rec.distilled[0].params < rec.teacher.params
    assert sum(map(sum, rec.distilled[0].confusion)) == len(digits.y_test) == rec.test_size
    curve = rec.distilled[0].curve
    assert curve.step[-1] == rec.distilled[0].steps and len(curve.train_loss) == len(curve.step)


# ------------------------------------------------------------------------------------------- bad records
# Issue 10, failure 5: one parseable run.json without 'distilled' or 'id' broke the Runs page for everyone.


def _plant(tmp_path, run_id: str, change) -> None:
    """A stored run whose run.json was then edited by ``change`` (a dict -> JSON-ready value function)."""
    real = RunStore(tmp_path).save(_record("planted"), _weights()).id
    folder = tmp_path / "runs" / real
    raw = json.loads((folder / "run.json").read_text())
    raw["id"] = run_id
    (folder / "run.json").write_text(json.dumps(change(raw)))
    folder.rename(tmp_path / "runs" / run_id)


def _without(key):
    return lambda r: {k: v for k, v in r.items() if k != key}


def _with(**changes):
    return lambda r: {**r, **changes}


def _teacher(**changes):
    return lambda r: {**r, "teacher": {**r["teacher"], **changes}}


BAD_RECORDS = {
    "no distilled": _without("distilled"),
    "no id": _without("id"),
    "no teacher": _without("teacher"),
    "an id of another run": _with(id="20200101-000000000-000000"),
    "distilled is a string": _with(distilled="great"),
    "no distilled student": _with(distilled=[]),
    "accuracy is a string": _teacher(test_accuracy="high"),
    "accuracy is a bool": _teacher(test_accuracy=True),
    "accuracy above 1": _teacher(test_accuracy=97.0),
    "scratch holds a number": _with(scratch=[1]),
    "created is a string": _with(created="yesterday"),  # the Runs page sorts and formats it
    "created beyond any date": _with(created=1e300),
    "label is a number": _with(label=7),
    "the record is a list": lambda r: [r],
    "the record is null": lambda r: None,
    "another format version": _with(format_version=1),
}


@pytest.mark.parametrize("bad", list(BAD_RECORDS), ids=list(BAD_RECORDS))
def test_a_record_that_does_not_validate_is_skipped_and_reported_once(bad, tmp_path, caplog):
    good = RunStore(tmp_path).save(_record("good"), _weights()).id
    bad_id = "20200101-000000000-abcdef"
    _plant(tmp_path, bad_id, BAD_RECORDS[bad])
    fresh = RunStore(tmp_path)  # a server started after the damage
    with caplog.at_level(logging.WARNING, logger="kdlab"):
        for _ in range(3):  # the Runs page lists on every rerun
            assert [r.id for r in fresh.list()] == [good]
    assert len([r for r in caplog.records if bad_id in r.getMessage()]) == 1
    with pytest.raises(RunNotFound):
        fresh.load(bad_id)
    with pytest.raises(RunNotFound):
        fresh.weights_bytes(bad_id)


@pytest.mark.parametrize("files", [None, {"weights.safetensors": "x"}, {"weights.safetensors": {"size": -1}}])
def test_a_damaged_manifest_is_a_message_not_a_download(files, tmp_path):
    run_id = RunStore(tmp_path).save(_record(), _weights()).id
    path = tmp_path / "runs" / run_id / "run.json"
    raw = json.loads(path.read_text())
    raw["files"] = files
    path.write_text(json.dumps(raw))
    with pytest.raises(RunNotFound):
        RunStore(tmp_path).weights_bytes(run_id)


# ----------------------------------------------------------------------------------------------- bounds
# Issue 10, failure 2: the run store capped a count (200), not bytes: 200 runs of 17 MB are 3.4 GB.


def test_the_store_is_bounded_by_bytes_too(tmp_path):
    big = {"w": torch.randn(256, 256)}  # 256 KiB of weights
    store = RunStore(tmp_path, max_runs=200, max_bytes=700 * 1024)
    ids = [store.save(_record(str(i)), big).id for i in range(5)]
    assert store.ids() == ids[::-1][:2]  # two fit in 700 KiB, a third would not
    assert store.total_bytes() <= store.max_bytes


def test_the_newest_run_stays_however_big(tmp_path):
    store = RunStore(tmp_path, max_bytes=1024)
    old = store.save(_record("old"), _weights()).id
    new = store.save(_record("new"), {"w": torch.randn(64, 64)}).id
    assert store.ids() == [new] and old != new


@pytest.mark.parametrize("env, expected", [("", 512 * 2**20), ("2", 2 * 2**20), ("0", 0), ("x", 512 * 2**20)])
def test_the_byte_bound_comes_from_the_environment(monkeypatch, tmp_path, env, expected):
    monkeypatch.setenv("KDLAB_RUNS_MAX_MB", env)
    assert RunStore(tmp_path).max_bytes == expected


# ------------------------------------------------------------------------------------- planted, swept
# Issue 10, failures 7 and 8.


def test_a_planted_fifo_or_symlink_is_refused_without_blocking(tmp_path):
    store = RunStore(tmp_path)
    fifo_run = store.save(_record("fifo"), _weights()).id
    link_run = store.save(_record("link"), _weights()).id
    weights = tmp_path / "runs" / fifo_run / "weights.safetensors"
    weights.unlink()
    os.mkfifo(weights)
    run_json = tmp_path / "runs" / link_run / "run.json"
    run_json.unlink()
    run_json.symlink_to("/dev/zero")
    fresh = RunStore(tmp_path)
    t0 = time.perf_counter()
    assert [r.id for r in fresh.list()] == [fifo_run]
    with pytest.raises(RunNotFound, match="FIFO"):
        fresh.weights_bytes(fifo_run)
    assert time.perf_counter() - t0 < 5


def test_stale_temporary_folders_are_swept(tmp_path):
    store = RunStore(tmp_path)
    store.save(_record(), _weights())
    old, young = (tmp_path / "runs" / f".tmp-20200101-000000000-abcdef-{c * 32}" for c in "ab")
    for folder, age in ((old, atomic.STALE_TMP_SECONDS + 60), (young, 5)):
        folder.mkdir()
        (folder / "weights.safetensors").write_bytes(b"half")
        os.utime(folder, (time.time() - age, time.time() - age))
    assert store.sweep_temporary() == [old.name]
    assert not old.exists() and young.exists()
    os.utime(young, (time.time() - atomic.STALE_TMP_SECONDS - 60,) * 2)
    store.save(_record(), _weights())  # a save sweeps too
    assert not young.exists()
