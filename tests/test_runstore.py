"""kdlab.stores.run_store: finished runs on disk; atomic, verified, capped, and never unpickled."""
import json

import pytest
import torch
from safetensors.torch import load as st_load

from kdlab.base.config import DistillConfig, TrainConfig
from kdlab.stores.run_store import RunNotFound, RunStore, jsonable, record_from_result


def _record(label="r"):
    return {"label": label, "config": {"dataset": "digits"}, "distilled": {"test_accuracy": float("nan")}}


def _weights():
    return {"0.weight": torch.randn(3, 4), "0.bias": torch.zeros(3)}


def test_save_then_load_round_trips_and_survives_a_restart(tmp_path):
    store = RunStore(tmp_path)
    w = _weights()
    run_id = store.save(_record(), w, {"distilled": torch.randn(5, 3)})
    again = RunStore(tmp_path)  # a new server process
    rec = again.load(run_id)
    assert rec["id"] == run_id and rec["label"] == "r"
    assert rec["distilled"]["test_accuracy"] is None  # strict JSON: NaN became null
    json.loads((tmp_path / "runs" / run_id / "run.json").read_text())  # valid JSON on disk
    loaded = st_load(again.weights_bytes(run_id))
    assert torch.equal(loaded["0.weight"], w["0.weight"])
    assert again.outputs(run_id)["distilled"].shape == (5, 3)
    assert [r["id"] for r in again.list()] == [run_id]


def test_list_is_newest_first_and_capped(tmp_path):
    store = RunStore(tmp_path, max_runs=3)
    ids = [store.save(_record(str(i)), _weights()) for i in range(5)]
    assert store.ids() == ids[::-1][:3]
    assert [r["label"] for r in store.list()] == ["4", "3", "2"]


def test_tampered_weights_are_refused(tmp_path):
    store = RunStore(tmp_path)
    run_id = store.save(_record(), _weights())
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
    good = store.save(_record(), _weights())
    (tmp_path / "runs" / ".tmp-20250101-120000000-abcdef").mkdir()  # a writer that died
    broken = tmp_path / "runs" / "20200101-000000000-abcdef"
    broken.mkdir()
    (broken / "run.json").write_text("{not json")
    assert [r["id"] for r in RunStore(tmp_path).list()] == [good]


def test_an_unwritable_store_raises_oserror(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OSError):
        RunStore(blocker).save(_record(), _weights())


def test_jsonable_handles_tensors_and_non_finite_numbers():
    got = jsonable({"a": torch.tensor([1.0, float("inf")]), 2: (1, float("nan"))})
    assert got == {"a": [1.0, None], "2": [1, None]}


def test_record_from_a_real_run_is_json_ready(digits, torch_one_thread, kdlab_cache):
    from kdlab.runs.distill import run_distill

    cfg = DistillConfig(teacher="mlp:32", student="mlp:8", train=TrainConfig(epochs=1),
                        teacher_train=TrainConfig(epochs=1))
    rec = record_from_result(run_distill(cfg, data=digits), curves={"distilled": {"x": [1.0]}})
    json.dumps(rec, allow_nan=False)
    assert rec["classes"] == list(digits.classes) and len(rec["teacher"]["confusion"]) == 10
    assert rec["scratch"]["params"] == rec["distilled"]["params"] < rec["teacher"]["params"]
    assert sum(map(sum, rec["distilled"]["confusion"])) == len(digits.y_test)
