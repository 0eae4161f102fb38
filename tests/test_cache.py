"""Tests for kdlab.stores.teacher_cache (the teacher store) through kdlab.runs.teacher.get_teacher: keys, atomic writes,
integrity checks and recovery, the cross-process lock, a writer killed mid-write, and a planted pickle.

The teacher here is tiny (mlp:16 on a synthetic 2-D set, see tests/helpers/teacher_proc.py): these tests
are about the store, not about learning."""
from __future__ import annotations

import dataclasses
import importlib.util
import json
import logging
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import save as st_save

from kdlab.stores import teacher_cache as cache
from kdlab.stores.teacher_cache import FILES, FORMAT_VERSION, Lookup, TeacherStore, teacher_key
from kdlab.base.config import TeacherConfig, TrainConfig
from kdlab.runs.teacher import MEMORY, get_teacher

REPO = Path(__file__).resolve().parents[1]
HELPER = Path(__file__).parent / "helpers" / "teacher_proc.py"


def _load_helper():
    spec = importlib.util.spec_from_file_location("kdlab_tests_teacher_proc", HELPER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


proc = _load_helper()
CONFIG: TeacherConfig = proc.CONFIG


pytestmark = pytest.mark.usefixtures("kdlab_cache", "torch_one_thread")


@pytest.fixture(scope="module")
def blobs():
    return proc.synthetic_dataset()


@pytest.fixture
def store(kdlab_cache):
    s = TeacherStore()
    assert s.root == kdlab_cache and s.dir == kdlab_cache / "teachers"
    return s


@pytest.fixture
def entry(store, blobs):
    """A teacher trained and cached by get_teacher; the in-memory LRU is emptied again."""
    t = get_teacher(CONFIG, blobs, store)
    assert t.source == "trained"
    MEMORY.clear()
    return t.key, store.dir / t.key


def subprocess_env(root: Path) -> dict[str, str]:
    env = dict(os.environ, KDLAB_CACHE_DIR=str(root), OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


# ----------------------------------------------------------------------------------------------------- keys


def test_key_is_stable():
    key = teacher_key(TeacherConfig())
    assert key == teacher_key(TeacherConfig(dataset="digits", arch="mlp:500", train=TrainConfig(epochs=20)))
    assert len(key) == 16 and int(key, 16) >= 0
    # Golden value: if this changes, every user's cache is orphaned. Bump FORMAT_VERSION on purpose instead.
    assert key == "154e8d48cd4156e1"


ALTERNATIVES = {"epochs": 7, "batch_size": 64, "lr": 2e-3, "optimizer": "sgd", "momentum": 0.5,
                "weight_decay": 1e-4, "schedule": "step", "seed": 1, "steps": 500}
IRRELEVANT = {"device": "cuda", "max_seconds": 5.0}


def test_key_alternatives_cover_every_train_field():
    """A new TrainConfig field must be classified here: does it determine the teacher or not?"""
    assert set(ALTERNATIVES) | set(IRRELEVANT) == {f.name for f in dataclasses.fields(TrainConfig)}


@pytest.mark.parametrize("field, value", sorted(ALTERNATIVES.items()))
def test_key_depends_on_every_training_setting(field, value):
    base = TeacherConfig()
    assert getattr(base.train, field) != value
    changed = dataclasses.replace(base, train=dataclasses.replace(base.train, **{field: value}))
    assert teacher_key(changed) != teacher_key(base)


@pytest.mark.parametrize("changes", [{"dataset": "fashion-mnist"}, {"arch": "mlp:501"},
                                     {"arch": "mlp:500:dropout=0.1"}])
def test_key_depends_on_dataset_and_architecture(changes):
    assert teacher_key(dataclasses.replace(TeacherConfig(), **changes)) != teacher_key(TeacherConfig())


def test_key_depends_on_the_format_version(monkeypatch):
    before = teacher_key(TeacherConfig())
    monkeypatch.setattr(cache, "FORMAT_VERSION", FORMAT_VERSION + 1)
    assert teacher_key(TeacherConfig()) != before


@pytest.mark.parametrize("field, value", sorted(IRRELEVANT.items()))
def test_key_ignores_where_and_how_long(field, value):
    base = TeacherConfig()
    changed = dataclasses.replace(base, train=dataclasses.replace(base.train, **{field: value}))
    assert teacher_key(changed) == teacher_key(base)


def test_read_returns_one_lookup():
    """read() is the one question (decide() is gone): an entry when usable, else why not; still a 3-tuple."""
    missing = TeacherStore().read("0123456789abcdef")
    assert missing == Lookup("missing") == ("missing", None, "") and missing.entry is None


def test_cache_root_honours_the_environment(kdlab_cache, monkeypatch):
    assert cache.cache_root() == kdlab_cache
    monkeypatch.delenv("KDLAB_CACHE_DIR")
    assert cache.cache_root() == Path.home() / ".cache" / "kdlab"


# -------------------------------------------------------------------------------------- write and read


def _fake_entry():
    g = torch.Generator().manual_seed(0)
    weights = {"0.weight": torch.randn(4, 2, generator=g), "0.bias": torch.randn(4, generator=g)}
    return weights, torch.randn(6, 3, generator=g), torch.randn(2, 3, generator=g)


def test_write_then_read_round_trip(store):
    weights, train_logits, test_logits = _fake_entry()
    folder = store.write("abc", weights, train_logits, test_logits, {"test_accuracy": 0.5, "params": 12,
                                                                     "train_seconds": 1.0, "config": {}})
    assert folder == store.dir / "abc"
    assert sorted(p.name for p in folder.iterdir()) == sorted([*FILES, "meta.json"])
    assert [p.name for p in store.dir.iterdir() if p.name.startswith(".tmp-")] == []
    state, e, why = store.read("abc")
    assert (state, why) == ("ok", "")
    assert e.key == "abc" and set(e.state_dict) == set(weights)
    assert all(torch.equal(e.state_dict[k], v) for k, v in weights.items())
    assert torch.equal(e.train_logits, train_logits) and torch.equal(e.test_logits, test_logits)
    assert e.meta["format_version"] == FORMAT_VERSION and e.meta["test_accuracy"] == 0.5
    meta = json.loads((folder / "meta.json").read_text())  # plain JSON on disk, with sizes and checksums
    assert set(meta["files"]) == set(FILES)
    assert all(meta["files"][f]["size"] == (folder / f).stat().st_size for f in FILES)


def test_rewrite_replaces_the_entry(store):
    weights, train_logits, test_logits = _fake_entry()
    meta = {"test_accuracy": 0.5, "params": 12, "train_seconds": 1.0, "config": {}}
    store.write("abc", weights, train_logits, test_logits, meta)
    store.write("abc", weights, train_logits + 1, test_logits, {**meta, "test_accuracy": 0.75})
    state, e, _ = store.read("abc")
    assert state == "ok" and torch.equal(e.train_logits, train_logits + 1) and e.meta["test_accuracy"] == 0.75
    assert sorted(p.name for p in store.dir.iterdir() if p.is_dir()) == ["abc"]  # no trash left behind


def test_missing_entry(store):
    assert store.read("0123456789abcdef") == ("missing", None, "")
    assert store.entries() == [] and store.clear() == 0


def test_teacher_round_trip_through_the_store(store, blobs, entry):
    key, folder = entry
    t = get_teacher(CONFIG, blobs, store)
    assert t.source == "cache" and t.key == key
    assert t.meta["config"] == json.loads(json.dumps(dataclasses.asdict(CONFIG)))
    assert 0.9 < t.test_accuracy <= 1.0  # two well separated blobs
    assert not t.model.training
    from kdlab.training.metrics import predict_logits

    assert torch.allclose(predict_logits(t.model, blobs.x_test), t.test_logits, atol=1e-6)
    [row] = store.entries()
    assert row["key"] == key and row["state"] == "ok" and row["dataset"] == CONFIG.dataset
    assert row["arch"] == CONFIG.arch and row["test_accuracy"] == t.test_accuracy and row["size_bytes"] > 0


# ------------------------------------------------------------------------------- corruption and recovery


def _rewrite_meta(folder: Path, **changes) -> None:
    meta = json.loads((folder / "meta.json").read_text())
    meta.update(changes)
    (folder / "meta.json").write_text(json.dumps(meta))


def _plant_with_valid_checksum(folder: Path, name: str, blob: bytes) -> None:
    """Replace a file AND fix its size and checksum in meta.json: only the format check can catch it."""
    import hashlib

    (folder / name).write_bytes(blob)
    meta = json.loads((folder / "meta.json").read_text())
    meta["files"][name] = {"size": len(blob), "sha256": hashlib.sha256(blob).hexdigest()}
    (folder / "meta.json").write_text(json.dumps(meta))


def _flip_byte(path: Path, where: int = -20) -> None:
    data = bytearray(path.read_bytes())
    data[where] ^= 0xFF
    path.write_bytes(bytes(data))


CORRUPTIONS = {
    "truncated weights": lambda f: (f / "weights.safetensors").write_bytes((f / "weights.safetensors").read_bytes()[:50]),
    "empty logits": lambda f: (f / "logits.safetensors").write_bytes(b""),
    "flipped byte in weights": lambda f: _flip_byte(f / "weights.safetensors"),
    "flipped byte in logits header": lambda f: _flip_byte(f / "logits.safetensors", 12),
    "invalid JSON meta": lambda f: (f / "meta.json").write_text('{"format_version": 1, "files": {'),
    "binary meta": lambda f: (f / "meta.json").write_bytes(b"\xff\xfe\x00garbage"),
    "meta is a list": lambda f: (f / "meta.json").write_text("[1, 2, 3]"),
    "other format version": lambda f: _rewrite_meta(f, format_version=FORMAT_VERSION + 1),
    "no format version": lambda f: _rewrite_meta(f, format_version=None),
    "missing logits file": lambda f: (f / "logits.safetensors").unlink(),
    "missing meta": lambda f: (f / "meta.json").unlink(),
    "meta without checksums": lambda f: _rewrite_meta(f, files={}),
    "checksums of the wrong type": lambda f: _rewrite_meta(f, files={n: "x" for n in FILES}),
    "foreign bytes with a valid checksum": lambda f: _plant_with_valid_checksum(f, "weights.safetensors", b"not safetensors at all" * 4),
    "logits file without the test split": lambda f: _plant_with_valid_checksum(
        f, "logits.safetensors", st_save({"train": torch.zeros(256, 2)})),
    "tampered meta without accuracy": lambda f: _rewrite_meta(f, test_accuracy=None),
    "tampered meta with a non-dict config": lambda f: _rewrite_meta(f, config=[1]),
    # issue 10, failure 8: NaN logits were blamed on the learning rate later; int64 / float16 logits were accepted
    "NaN logits with a valid checksum": lambda f: _plant_logits(f, lambda t: t.index_fill(0, torch.tensor([3]), float("nan"))),
    "infinite logits with a valid checksum": lambda f: _plant_logits(f, lambda t: t.index_fill(0, torch.tensor([0]), float("inf"))),
    "int64 logits with a valid checksum": lambda f: _plant_logits(f, lambda t: t.round().long()),
    "float16 logits with a valid checksum": lambda f: _plant_logits(f, lambda t: t.half()),
    "NaN weights with a valid checksum": lambda f: _plant_weights(f, lambda t: torch.full_like(t, float("nan"))),
    # issue 10, failure 7: planted files are refused by type, before a byte is read
    "weights symlinked to a valid copy": lambda f: _symlink_to_copy(f, "weights.safetensors"),
    "weights symlinked to /dev/zero": lambda f: _replace_with_symlink(f / "weights.safetensors", "/dev/zero"),
    "meta.json symlinked to /dev/zero": lambda f: _replace_with_symlink(f / "meta.json", "/dev/zero"),
    "logits replaced by a folder": lambda f: ((f / "logits.safetensors").unlink(), (f / "logits.safetensors").mkdir()),
    "meta.json that is huge": lambda f: (f / "meta.json").write_bytes(b" " * (cache.META_MAX_BYTES + 1)),
}


def _plant_logits(folder: Path, change) -> None:
    from safetensors.torch import load as st_load

    logits = st_load((folder / "logits.safetensors").read_bytes())
    _plant_with_valid_checksum(folder, "logits.safetensors", st_save({k: change(v) for k, v in logits.items()}))


def _plant_weights(folder: Path, change) -> None:
    from safetensors.torch import load as st_load

    weights = st_load((folder / "weights.safetensors").read_bytes())
    _plant_with_valid_checksum(folder, "weights.safetensors", st_save({k: change(v) for k, v in weights.items()}))


def _replace_with_symlink(path: Path, target) -> None:
    path.unlink()
    path.symlink_to(target)


def _symlink_to_copy(folder: Path, name: str) -> None:
    """The same bytes (size and checksum match), but through a symlink out of the entry: never followed."""
    copy = folder.parent.parent / f"outside-{name}"
    copy.write_bytes((folder / name).read_bytes())
    _replace_with_symlink(folder / name, copy)


@pytest.mark.parametrize("corrupt", list(CORRUPTIONS), ids=list(CORRUPTIONS))
def test_corrupt_entry_is_detected_reported_and_rebuilt(corrupt, store, blobs, entry, caplog):
    key, folder = entry
    CORRUPTIONS[corrupt](folder)
    state, e, why = store.read(key)
    assert state == "corrupt" and e is None and why
    [row] = store.entries()  # `kdlab cache list` shows it, it does not crash on it
    assert row["state"] == "corrupt" and row["problem"] == why

    with caplog.at_level(logging.WARNING, logger="kdlab"):
        t = get_teacher(CONFIG, blobs, store)
    assert t.source == "trained"
    assert any(key in r.getMessage() and "rebuilt" in r.getMessage() for r in caplog.records)
    state, e, _ = store.read(key)
    assert state == "ok" and torch.equal(e.test_logits, t.test_logits)
    MEMORY.clear()
    assert get_teacher(CONFIG, blobs, store).source == "cache"


@pytest.mark.parametrize("what", ["logits of the wrong shape", "weights of another architecture"])
def test_checksum_valid_but_unusable_entry_is_rebuilt(what, store, blobs, entry, caplog):
    """An entry that verifies but does not fit the dataset / architecture (a bug, a key collision)."""
    key, _ = entry
    state, e, _ = store.read(key)
    if what == "logits of the wrong shape":
        store.write(key, e.state_dict, e.train_logits[:10], e.test_logits[:, :1], e.meta)
    else:
        other = {"0.weight": torch.zeros(3, 2), "0.bias": torch.zeros(3)}
        store.write(key, other, e.train_logits, e.test_logits, e.meta)
    assert store.read(key)[0] == "ok"
    with caplog.at_level(logging.WARNING, logger="kdlab"):
        t = get_teacher(CONFIG, blobs, store)
    assert t.source == "trained" and tuple(t.train_logits.shape) == (256, 2)
    assert any("rebuilt" in r.getMessage() for r in caplog.records)
    MEMORY.clear()
    assert get_teacher(CONFIG, blobs, store).source == "cache"


# ------------------------------------------------------------------------------------- planted pickles


class Boom:
    """Unpickling this runs a shell command that creates ``marker``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch '{self.marker}'",)


class OpenBoom(Boom):
    def __reduce__(self):  # no shell: the file is created by open() itself
        return open, (str(self.marker), "w")


def _payloads(marker: Path, tmp: Path) -> dict[str, bytes]:
    torch_file = tmp / "torch-pickle.pt"
    torch.save({"weight": Boom(marker)}, torch_file)  # a zip whose data.pkl runs the command on torch.load
    return {"pickle": pickle.dumps(Boom(marker)), "pickle-open": pickle.dumps(OpenBoom(marker)),
            "torch.save": torch_file.read_bytes()}


def test_the_planted_payloads_would_run(tmp_path):
    """Positive control: each payload does create its marker when unpickled, so its absence below means
    something."""
    for kind, payload in _payloads(tmp_path / "control", tmp_path).items():
        marker = tmp_path / "control"
        if kind == "torch.save":
            path = tmp_path / "control.pt"
            path.write_bytes(payload)
            torch.load(path, weights_only=False)
        else:
            pickle.loads(payload)
        assert marker.exists(), kind
        marker.unlink()


@pytest.mark.parametrize("kind", ["pickle", "pickle-open", "torch.save"])
def test_a_planted_pickle_is_never_executed(kind, store, blobs, entry, tmp_path, capsys):
    key, folder = entry
    marker = tmp_path / "PWNED"
    payload = _payloads(marker, tmp_path)[kind]
    _plant_with_valid_checksum(folder, "weights.safetensors", payload)  # passes the checksum check
    for extra in ("teacher.pt", "model.pkl", "state.pickle", "weights.pth", "logits.pt"):
        (folder / extra).write_bytes(payload)
    (store.dir / "evil.pkl").write_bytes(payload)
    (store.dir / ".evil.pt").write_bytes(payload)
    sibling = store.dir / "0000000000000000"  # an entry made only of pickles, meta.json included
    sibling.mkdir()
    for name in (*FILES, "meta.json"):
        (sibling / name).write_bytes(payload)

    from kdlab.cli.main import main

    assert main(["cache", "list", "--json"]) == 0
    listed = {row["key"]: row for row in json.loads(capsys.readouterr().out)["entries"]}
    assert not marker.exists()
    assert listed[key]["state"] == "corrupt" and listed["0000000000000000"]["state"] == "corrupt"

    t = get_teacher(CONFIG, blobs, store)
    assert not marker.exists()
    assert t.source == "trained" and store.read(key)[0] == "ok"
    assert not (folder / "teacher.pt").exists()  # the rebuilt entry replaced the whole folder

    MEMORY.clear()
    assert get_teacher(CONFIG, blobs, store).source == "cache"
    assert main(["cache", "list"]) == 0
    assert not marker.exists()


def test_core_never_unpickles():
    """Belt and braces: no pickle, torch.load or numpy allow_pickle anywhere in the package."""
    import ast

    offenders = []
    for path in sorted((REPO / "kdlab").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                if any(n.split(".")[0] in ("pickle", "cPickle", "dill", "joblib", "shelve") for n in names):
                    offenders.append(f"{path.name}:{node.lineno} imports {names}")
            elif isinstance(node, ast.Attribute) and node.attr == "load" and \
                    isinstance(node.value, ast.Name) and node.value.id in ("torch", "pickle", "joblib"):
                offenders.append(f"{path.name}:{node.lineno} calls {node.value.id}.load")
            elif isinstance(node, ast.keyword) and node.arg == "allow_pickle":
                offenders.append(f"{path.name}:{node.lineno} allow_pickle")
    assert offenders == []


# ------------------------------------------------------------------------------------- unwritable cache


@pytest.fixture
def unwritable_cache(tmp_path, monkeypatch):
    """Tests run as root, which ignores chmod: point the cache *under a regular file*, so mkdir fails."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    root = blocker / "cache"
    monkeypatch.setenv("KDLAB_CACHE_DIR", str(root))
    with pytest.raises(OSError):
        (root / "teachers").mkdir(parents=True)
    return root


def test_unwritable_cache_degrades_to_training_with_a_warning(unwritable_cache, blobs, caplog):
    with caplog.at_level(logging.WARNING, logger="kdlab"):
        t = get_teacher(CONFIG, blobs)
    assert t.source == "trained" and t.test_accuracy > 0.9
    assert t.warnings and "could not write" in t.warnings[0]
    assert any("not writable" in r.getMessage() or "could not write" in r.getMessage() for r in caplog.records)
    store = TeacherStore()
    assert store.entries() == [] and store.clear() == 0 and store.read(t.key)[0] == "missing"
    again = get_teacher(CONFIG, blobs)  # this process still remembers it
    assert again.source == "memory" and again.key == t.key


# ----------------------------------------------------------------------------------------- processes


@pytest.mark.timeout(120)
def test_concurrent_processes_train_the_teacher_once(kdlab_cache, tmp_path):
    n = 4
    out = tmp_path / "procs"
    out.mkdir()
    procs = [subprocess.Popen([sys.executable, str(HELPER), "get", str(out), str(n)], cwd=REPO,
                              env=subprocess_env(kdlab_cache), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(n)]
    results = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=110)
        assert p.returncode == 0, stderr
        results.append(json.loads(stdout.strip().splitlines()[-1]))
    sources = sorted(r["source"] for r in results)
    assert sources == ["cache"] * (n - 1) + ["trained"]
    assert len(list(out.glob("trained-*"))) == 1  # exactly one process ran a training step
    assert len({r["key"] for r in results}) == 1 and len({r["test_accuracy"] for r in results}) == 1
    assert len({r["pid"] for r in results}) == n
    [row] = TeacherStore(kdlab_cache).entries()
    assert row["state"] == "ok" and row["key"] == results[0]["key"]


@pytest.mark.timeout(120)
def test_a_writer_killed_mid_write_leaves_no_entry(kdlab_cache, tmp_path, blobs):
    out = tmp_path / "writer"
    out.mkdir()
    p = subprocess.Popen([sys.executable, str(HELPER), "die-writing", str(out)], cwd=REPO,
                         env=subprocess_env(kdlab_cache), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 100
        while not (out / "writing").exists():
            assert p.poll() is None, p.communicate()[1].decode()
            assert time.monotonic() < deadline, "the writer never started writing"
            time.sleep(0.05)
    finally:
        p.send_signal(signal.SIGKILL)
        p.communicate()
    assert p.returncode == -signal.SIGKILL

    store = TeacherStore(kdlab_cache)
    key = teacher_key(CONFIG)
    half = [d for d in store.dir.iterdir() if d.is_dir() and d.name.startswith(f".tmp-{key}-")]
    assert len(half) == 1 and [f.name for f in half[0].iterdir()] == ["weights.safetensors"]  # really mid-write
    assert store.entries() == [] and store.read(key)[0] == "missing"

    t0 = time.perf_counter()
    t = get_teacher(CONFIG, blobs, store)  # the dead writer's lock is gone with it: no hang
    assert time.perf_counter() - t0 < 30
    assert t.source == "trained" and store.read(key)[0] == "ok"
    assert [row["key"] for row in store.entries()] == [key]  # the stale temporary folder stays invisible

    assert store.clear() == 1 and half[0].exists()  # a young temporary folder may belong to a live writer
    old = time.time() - cache.STALE_TMP_SECONDS - 60
    os.utime(half[0], (old, old))
    assert store.clear() == 0 and not half[0].exists()  # a stale one is swept, and not counted


@pytest.mark.timeout(120)
def test_a_full_disk_degrades_to_training_with_a_warning_and_leaves_nothing(kdlab_cache, tmp_path):
    """Real failed writes (the OS refuses bytes past RLIMIT_FSIZE with EFBIG, as a full disk does with ENOSPC)."""
    p = subprocess.run([sys.executable, str(HELPER), "full-disk", str(tmp_path)], cwd=REPO, capture_output=True,
                       text=True, env=subprocess_env(kdlab_cache), timeout=110)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["source"] == "trained"
    assert len(out["warnings"]) == 1 and "could not write the teacher cache" in out["warnings"][0]
    assert "File too large" in out["warnings"][0]
    store = TeacherStore(kdlab_cache)
    assert store.entries() == [] and store.read(out["key"])[0] == "missing"
    assert not [d for d in store.dir.iterdir() if d.name.startswith(".tmp-")]  # the partial entry was removed


def test_clear_removes_entries(store, blobs, entry):
    key, folder = entry
    store.write("another", *_fake_entry(), {"test_accuracy": 0.1, "params": 1, "train_seconds": 0.0, "config": {}})
    assert len(store.entries()) == 2
    assert store.clear() == 2
    assert store.entries() == [] and not folder.exists()
    assert get_teacher(CONFIG, blobs, store).source == "trained"


def test_remove_one_entry(store, entry):
    key, folder = entry
    store.remove(key)
    assert not folder.exists() and store.read(key)[0] == "missing"
    store.remove(key)  # removing twice is fine


@pytest.mark.parametrize("corrupt, words", [
    ("NaN logits with a valid checksum", ["logits", "'train'", "NaN"]),
    ("int64 logits with a valid checksum", ["int64", "float32"]),
    ("float16 logits with a valid checksum", ["float16", "float32"]),
    ("weights symlinked to /dev/zero", ["weights.safetensors", "symbolic link"]),
    ("weights symlinked to a valid copy", ["weights.safetensors", "symbolic link"]),
])
def test_the_reason_names_the_problem(corrupt, words, store, entry):
    key, folder = entry
    CORRUPTIONS[corrupt](folder)
    t0 = time.perf_counter()
    found = store.read(key)
    assert time.perf_counter() - t0 < 5  # /dev/zero is not read (main read 3.2 GB of it, then MemoryError)
    assert found.state == "corrupt" and all(w in found.problem for w in words), found.problem


def test_a_symlinked_entry_is_refused_and_replaced_without_touching_its_target(store, blobs, entry, tmp_path):
    key, folder = entry
    outside = tmp_path / "outside-entry"
    folder.rename(outside)
    folder.symlink_to(outside, target_is_directory=True)
    found = store.read(key)
    assert found.state == "corrupt" and "symbolic link" in found.problem
    [row] = store.entries()
    assert row["state"] == "corrupt" and row["size_bytes"] == 0  # its target's bytes are not ours
    assert get_teacher(CONFIG, blobs, store).source == "trained"
    assert not folder.is_symlink() and store.read(key).state == "ok"
    assert sorted(p.name for p in outside.iterdir()) == sorted([*FILES, "meta.json"])  # the target is intact


FIFO_PLACES = ["weights.safetensors", "meta.json", "logits.safetensors"]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", FIFO_PLACES)
def test_a_fifo_in_an_entry_never_blocks_cache_list(name, store, entry, kdlab_cache):
    """Issue 10, failure 7: a FIFO in place of a file hung `kdlab cache list` (open() waits for a writer)."""
    key, folder = entry
    (folder / name).unlink()
    os.mkfifo(folder / name)
    p = subprocess.run([sys.executable, "-m", "kdlab", "cache", "list", "--json"], cwd=REPO, capture_output=True,
                       text=True, env=subprocess_env(kdlab_cache), timeout=60)
    assert p.returncode == 0, p.stderr
    [row] = json.loads(p.stdout)["entries"]
    assert row["state"] == "corrupt" and "FIFO" in row["problem"] and name in row["problem"]


@pytest.mark.timeout(60)
def test_a_fifo_or_symlink_as_a_lock_file_neither_blocks_nor_is_followed(store, blobs, entry, tmp_path):
    key, folder = entry
    lock_file = store.dir / f".{key}.lock"
    lock_file.unlink()
    os.mkfifo(lock_file)
    assert store.read(key).state == "ok"  # read without the shared lock rather than hang
    assert get_teacher(CONFIG, blobs, store).source == "cache"
    lock_file.unlink()
    target = tmp_path / "elsewhere"
    lock_file.symlink_to(target)
    assert store.read(key).state == "ok" and not target.exists()  # O_NOFOLLOW: nothing created out there


# ---------------------------------------------------------------------------------------------- the budget
# Issue 10, failure 2: the teacher cache had no eviction.


def _meta():
    return {"test_accuracy": 0.5, "params": 12, "train_seconds": 1.0, "config": {}}


def _big_entry(n: int = 4096):
    """An entry of ~n * 64 bytes: its weights dominate."""
    g = torch.Generator().manual_seed(0)
    return {"w": torch.randn(n, 16, generator=g)}, torch.randn(6, 3, generator=g), torch.randn(2, 3, generator=g)


def _entry_bytes(store: TeacherStore, key: str) -> int:
    return cache.folder_bytes(store.dir / key)


def test_the_least_recently_used_entry_goes_first_and_a_read_counts_as_a_use(kdlab_cache):
    probe = TeacherStore(max_bytes=0)
    probe.write("probe", *_big_entry(), _meta())
    size = _entry_bytes(probe, "probe")
    probe.remove("probe")
    store = TeacherStore(max_bytes=int(2.5 * size))  # room for two entries
    for key in ("a", "b"):
        store.write(key, *_big_entry(), _meta())
        time.sleep(0.02)  # distinct use times, whatever the file system's clock granularity
    assert store.read("a").state == "ok"  # a is now more recently used than b
    time.sleep(0.02)
    store.write("c", *_big_entry(), _meta())
    assert [row["key"] for row in store.entries()] == ["a", "c"]
    time.sleep(0.02)
    store.write("d", *_big_entry(), _meta())
    assert [row["key"] for row in store.entries()] == ["c", "d"]
    assert store.total_bytes() <= store.max_bytes


def test_listing_the_cache_is_not_a_use(kdlab_cache, monkeypatch):
    """`kdlab cache list` and `kdlab prepare` list every entry from a fresh process: that must not re-stamp them
    all, or eviction would forget which teachers were used least recently. A read still counts."""
    from kdlab.stores import teacher_cache

    store = TeacherStore(max_bytes=0)
    for key in ("a", "b"):
        store.write(key, *_big_entry(), _meta())
    monkeypatch.setattr(teacher_cache, "_TOUCHED", {})  # as in a new process: no use recorded yet
    past = time.time() - 3600
    for key in ("a", "b"):
        os.utime(store.dir / key, (past, past))
    assert [row["state"] for row in store.entries()] == ["ok", "ok"]
    assert [os.stat(store.dir / key).st_mtime for key in ("a", "b")] == [past, past]
    assert store.read("a").state == "ok" and os.stat(store.dir / "a").st_mtime > past


def test_an_entry_larger_than_the_budget_stays_until_the_next_write(kdlab_cache):
    store = TeacherStore(max_bytes=1000)
    store.write("big", *_big_entry(), _meta())
    assert [row["key"] for row in store.entries()] == ["big"]  # just written: it is about to be used
    store.write("next", *_big_entry(), _meta())
    assert [row["key"] for row in store.entries()] == ["next"]


def test_no_budget_means_no_eviction(kdlab_cache):
    store = TeacherStore(max_bytes=0)
    for key in "abcde":
        store.write(key, *_big_entry(), _meta())
    assert len(store.entries()) == 5 and store.evict() == []


@pytest.mark.parametrize("holder", ["thread training it", "thread reading it"])
def test_eviction_never_removes_an_entry_a_thread_uses(holder, kdlab_cache):
    store = TeacherStore(max_bytes=1)  # every write wants everything else gone
    store.write("old", *_big_entry(), _meta())
    held, release = threading.Event(), threading.Event()

    def hold():
        with (store.lock("old") if "training" in holder else store.reading("old")):
            held.set()
            release.wait(30)

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    assert held.wait(10)
    store.write("new", *_big_entry(), _meta())
    assert store.read("old").state in ("ok", "busy") and (store.dir / "old").is_dir()  # in use: it stays
    release.set()
    thread.join(10)
    store.write("newer", *_big_entry(), _meta())
    assert [row["key"] for row in store.entries()] == ["newer"]  # free again: least recently used, gone


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", ["lock", "reading"])
def test_eviction_never_removes_an_entry_another_process_uses(kind, kdlab_cache, lock_holder):
    store = TeacherStore(max_bytes=1)
    store.write("old", *_big_entry(), _meta())
    with lock_holder(kind, "old", kdlab_cache):
        store.write("new", *_big_entry(), _meta())
        assert (store.dir / "old").is_dir() and store.clear_report().failed.get("old", "").startswith("in use")
    store.write("newer", *_big_entry(), _meta())
    assert [row["key"] for row in store.entries()] == ["newer"]


def test_get_teacher_evicts_after_it_writes(kdlab_cache, blobs):
    first = get_teacher(CONFIG, blobs, TeacherStore(max_bytes=1))
    other = dataclasses.replace(CONFIG, arch="mlp:17")
    second = get_teacher(other, blobs, TeacherStore(max_bytes=1))
    assert first.source == second.source == "trained"
    assert [row["key"] for row in TeacherStore().entries()] == [second.key]
    assert get_teacher(CONFIG, blobs, TeacherStore(max_bytes=1)).source == "memory"  # memory still has it


@pytest.mark.parametrize("env, expected", [("", cache.DEFAULT_CACHE_MAX_MB * 2**20), ("1.5", int(1.5 * 2**20)),
                                           ("0", 0), ("-3", 0), ("lots", cache.DEFAULT_CACHE_MAX_MB * 2**20)])
def test_the_budget_comes_from_the_environment(monkeypatch, env, expected):
    monkeypatch.setenv("KDLAB_CACHE_MAX_MB", env)
    assert cache.cache_max_bytes() == expected and TeacherStore().max_bytes == expected


def test_spellings_of_one_architecture_share_one_key():
    keys = {teacher_key(dataclasses.replace(TeacherConfig(), arch=a))
            for a in ("mlp:500", "mlp:0500", "mlp:000500", " mlp:500\n", "mlp:500:dropout=0")}
    assert keys == {"154e8d48cd4156e1"}  # the golden key of test_key_is_stable: old entries stay valid
    assert teacher_key(dataclasses.replace(TeacherConfig(), arch="mlp:500:dropout=0.20")) == \
        teacher_key(dataclasses.replace(TeacherConfig(), arch="mlp:500:dropout=0.2"))


def test_a_unicode_digit_architecture_has_no_key():
    from kdlab.base.errors import ConfigError

    with pytest.raises(ConfigError):
        teacher_key(dataclasses.replace(TeacherConfig(), arch="mlp:١٠٠"))


# ------------------------------------------------------------------------------------------ housekeeping
# Issue 10, failure 8: stale temporary folders stayed until a `cache clear`; clear reported failed removals.


def _plant_tmp(store: TeacherStore, name: str, age: float) -> Path:
    folder = store.dir / name
    folder.mkdir(parents=True)
    (folder / "weights.safetensors").write_bytes(b"half")
    when = time.time() - age
    os.utime(folder, (when, when))
    return folder


def test_sweep_removes_only_stale_temporary_folders(store):
    stale = _plant_tmp(store, ".tmp-0123456789abcdef-" + "a" * 32, cache.STALE_TMP_SECONDS + 60)
    trash = _plant_tmp(store, ".tmp-trash-" + "b" * 32, cache.STALE_TMP_SECONDS + 60)
    young = _plant_tmp(store, ".tmp-0123456789abcdef-" + "c" * 32, 5)  # may be a live writer's
    assert sorted(store.sweep_temporary()) == sorted([stale.name, trash.name])
    assert not stale.exists() and not trash.exists() and young.exists()


def test_a_write_sweeps_stale_temporary_folders(store):
    stale = _plant_tmp(store, ".tmp-0123456789abcdef-" + "a" * 32, cache.STALE_TMP_SECONDS + 60)
    store.write("abc", *_fake_entry(), _meta())
    assert not stale.exists()


def test_clear_does_not_count_a_symlinked_entry(store, entry, tmp_path):
    key, folder = entry
    outside = tmp_path / "shared-teacher"
    outside.mkdir()
    (outside / "keep.txt").write_text("not the cache's")
    (store.dir / "fedcba9876543210").symlink_to(outside, target_is_directory=True)
    report = store.clear_report()
    assert report.removed == [key]
    assert list(report.failed) == ["fedcba9876543210"] and "symbolic link" in report.failed["fedcba9876543210"]
    assert (outside / "keep.txt").read_text() == "not the cache's"
    assert store.clear() == 0  # the symlink is still there, and still not counted


def test_clear_does_not_remove_an_entry_in_use(store, entry):
    key, folder = entry
    with store.reading(key):
        report = store.clear_report()
    assert report.removed == [] and "in use" in report.failed[key] and folder.is_dir()
    assert store.clear() == 1 and not folder.exists()


@pytest.fixture
def reachable_store():
    """A store under a fresh folder in /tmp that other users may enter (pytest's own tmp folders are 0700)."""
    import shutil
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="kdlab-read-only-"))
    os.chmod(root, 0o755)
    yield TeacherStore(root)
    shutil.rmtree(root, ignore_errors=True)


def test_clear_of_a_read_only_cache_reports_nothing_removed(reachable_store):
    """A cache this process may not write. Tests run as root, which ignores permissions, so there the clearing
    runs in a forked child that has become 'nobody'. main reported the entry as removed."""
    store = reachable_store
    store.write("abc", *_fake_entry(), _meta())
    if os.geteuid() != 0:
        os.chmod(store.dir, 0o555)
        try:
            r = store.clear_report()
            report = {"removed": r.removed, "failed": r.failed}
        finally:
            os.chmod(store.dir, 0o755)
    else:
        report = _clear_as_nobody(store)
    assert report["removed"] == [] and list(report["failed"]) == ["abc"]
    assert "Permission denied" in report["failed"]["abc"] or "Read-only" in report["failed"]["abc"]
    assert store.read("abc").state == "ok"


def _clear_as_nobody(store: TeacherStore) -> dict:
    import pwd

    nobody = pwd.getpwnam("nobody")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop root, clear, report through the pipe, exit without pytest's teardown
        code = 1
        try:
            os.close(read_end)
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            r = TeacherStore(store.root).clear_report()
            os.write(write_end, json.dumps({"removed": r.removed, "failed": r.failed}).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end) as f:
        out = f.read()
    _, status = os.waitpid(pid, 0)
    assert status == 0 and out
    return json.loads(out)
