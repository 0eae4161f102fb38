"""kdlab.stores.run_store: finished runs on disk; atomic, verified, capped, and never unpickled."""
import json

import pytest
import torch
from safetensors.torch import load as st_load

from kdlab.base.config import DistillConfig, TrainConfig
from kdlab.base.record import ModelResult, RunRecord
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
