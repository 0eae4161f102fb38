"""Tests for kdlab.data: offline only. Downloads are exercised against a local HTTP server on 127.0.0.1."""
from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import socket
import struct
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from kdlab import data
from kdlab.data import idx, sources
from kdlab.data import Dataset, load_dataset
from kdlab.base.errors import ConfigError, DataUnavailableError, KdlabError

FASHION_SYSTEM = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path, monkeypatch):
    """No test may read the user's data folder, write ~/.cache, or see a mirror set by the environment."""
    monkeypatch.setenv("KDLAB_CACHE_DIR", str(tmp_path / "cache"))
    for var in ("KDLAB_DATA_DIR", "KDLAB_MNIST_MIRROR", "KDLAB_FASHION_MNIST_MIRROR"):
        monkeypatch.delenv(var, raising=False)


# --- helpers: tiny IDX files ---------------------------------------------------------------------------


def write_idx(path: Path, arr: np.ndarray, gz: bool = True) -> Path:
    codes = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D, np.float64: 0x0E}
    code = codes[arr.dtype.type]
    header = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    payload = header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()
    path.write_bytes(gzip.compress(payload) if gz else payload)
    return path


def write_fake_mnist(folder: Path, n_train: int = 20, n_test: int = 10, seed: int = 0) -> dict[str, str]:
    """Four tiny MNIST-format files (labels cycle 0..9); returns their SHA-256 by file name."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": (np.arange(n_train) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": (np.arange(n_test) % 10).astype(np.uint8),
    }
    return {name: sha256(write_idx(folder / name, arr)) for name, arr in arrays.items()}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def http_mirror(tmp_path):
    """Serve tmp_path/'mirror' on 127.0.0.1; yields (folder, base URL)."""
    folder = tmp_path / "mirror"
    folder.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # keep pytest output clean
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture
def no_system_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "SYSTEM_DATA_ROOT", tmp_path / "no-system-datasets")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed on exit: nothing listens there now


# --- registry ------------------------------------------------------------------------------------------


def test_names():
    assert data.dataset_names() == ["digits", "mnist", "fashion-mnist", "moons", "circles", "spirals", "xor", "blobs"]


def test_unknown_dataset_lists_valid_names():
    with pytest.raises(ConfigError) as err:
        load_dataset("cifar-1000")
    assert "cifar-1000" in str(err.value) and "fashion-mnist" in str(err.value) and "digits" in str(err.value)


# --- digits and toy sets -------------------------------------------------------------------------------


def test_digits():
    ds = load_dataset("digits")
    assert (len(ds.y_train), len(ds.y_test)) == (1437, 360)
    assert ds.x_train.shape == (1437, 1, 8, 8) and ds.x_test.shape == (360, 1, 8, 8)
    assert ds.input_shape == (1, 8, 8) and ds.classes == tuple("0123456789") and ds.num_classes == 10
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64 and ds.y_test.dtype == torch.int64
    assert ds.x_train.is_contiguous() and ds.x_test.is_contiguous()
    assert abs(ds.x_train.mean().item()) < 1e-4 and abs(ds.x_train.std().item() - 1) < 1e-3
    assert torch.bincount(ds.y_test).min() >= 35  # stratified: every digit has its ~36 test images
    again = load_dataset("digits")
    assert torch.equal(ds.x_train, again.x_train) and torch.equal(ds.y_test, again.y_test)


@pytest.mark.parametrize("name,classes", [("moons", 2), ("circles", 2), ("spirals", 3)])
def test_toy_sets(name, classes):
    ds = load_dataset(name)
    assert ds.x_train.shape == (2000, 2) and ds.x_test.shape == (1000, 2) and ds.input_shape == (2,)
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    assert ds.num_classes == classes and set(ds.y_train.tolist()) == set(range(classes))
    assert torch.allclose(ds.x_train.mean(0), torch.zeros(2), atol=1e-4)
    again = load_dataset(name)
    assert torch.equal(ds.x_train, again.x_train) and torch.equal(ds.y_train, again.y_train)
    assert not torch.equal(ds.x_train[:1000], ds.x_test)  # the test split is drawn separately


# --- IDX reader ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int32, np.float32])
def test_idx_round_trip(tmp_path, gz, dtype):
    arr = (np.arange(2 * 3 * 4) - 5).astype(dtype).reshape(2, 3, 4)
    if dtype == np.uint8:
        arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    out = idx.read_idx(write_idx(tmp_path / f"a-{gz}-{np.dtype(dtype).name}", arr, gz=gz))
    assert out.shape == (2, 3, 4) and np.array_equal(out, arr)
    assert not out.flags.writeable  # shared through the in-process cache


def test_idx_bad_magic(tmp_path):
    bad = tmp_path / "bad.gz"
    bad.write_bytes(gzip.compress(b"\x12\x34\x08\x01" + b"\x00" * 8))
    with pytest.raises(DataUnavailableError, match="magic") as err:
        idx.read_idx(bad)
    assert str(bad) in str(err.value)


def test_idx_truncated_and_not_gzip(tmp_path):
    good = write_idx(tmp_path / "x", np.zeros((5, 4), np.uint8), gz=False)
    cut = tmp_path / "cut"
    cut.write_bytes(good.read_bytes()[:-3])
    with pytest.raises(KdlabError, match="truncated"):
        idx.read_idx(cut)
    broken_gz = tmp_path / "broken.gz"
    broken_gz.write_bytes(gzip.compress(good.read_bytes())[:-10])
    with pytest.raises(DataUnavailableError, match="broken.gz"):
        idx.read_idx(broken_gz)
    with pytest.raises(DataUnavailableError, match="missing"):
        idx.read_idx(tmp_path / "missing")


# --- local sources -------------------------------------------------------------------------------------


def test_data_dir_argument(tmp_path, no_system_folder):
    write_fake_mnist(tmp_path / "mine")
    ds = load_dataset("mnist", tmp_path / "mine", download=False)
    assert ds.x_train.shape == (20, 1, 28, 28) and ds.x_test.shape == (10, 1, 28, 28)
    assert ds.y_train.tolist() == [i % 10 for i in range(20)] and ds.classes == tuple("0123456789")
    assert abs(ds.x_train.mean().item()) < 1e-4


def test_env_data_dir_with_subfolder_and_plain_files(tmp_path, monkeypatch, no_system_folder):
    write_fake_mnist(tmp_path / "datasets" / "fashion-mnist")
    for f in (tmp_path / "datasets" / "fashion-mnist").glob("t10k-*.gz"):  # unpacked copies work too
        f.with_suffix("").write_bytes(gzip.decompress(f.read_bytes()))
        f.unlink()
    monkeypatch.setenv("KDLAB_DATA_DIR", str(tmp_path / "datasets"))
    ds = load_dataset("fashion-mnist", download=False)
    assert len(ds.y_train) == 20 and len(ds.y_test) == 10 and ds.classes[0] == "T-shirt/top"


def test_cache_folder_is_a_source(tmp_path, no_system_folder):
    write_fake_mnist(sources.cache_dir("mnist"))  # KDLAB_CACHE_DIR points into tmp_path
    assert len(load_dataset("mnist", download=False).y_train) == 20


# Issue 10, failure 8: `--data-dir /nonexistent` was silently ignored (and the files came from elsewhere).


@pytest.mark.parametrize("name", ["mnist", "digits", "moons"])
def test_a_data_dir_that_does_not_exist_is_an_error_naming_it(tmp_path, no_system_folder, name):
    write_fake_mnist(sources.cache_dir("mnist"))  # there is a copy elsewhere: it must not be used silently
    missing = tmp_path / "typo-datasets"
    with pytest.raises(ConfigError, match="typo-datasets.*does not exist") as exc:
        load_dataset(name, missing, download=False)
    assert "--data-dir" in str(exc.value)


def test_a_data_dir_that_is_a_file_is_an_error(tmp_path, no_system_folder):
    a_file = tmp_path / "mnist.tar.gz"
    a_file.write_bytes(b"not a folder")
    with pytest.raises(ConfigError, match="mnist.tar.gz.*is not a folder"):
        load_dataset("mnist", a_file, download=False)


def test_an_env_data_dir_that_does_not_exist_is_an_error_naming_it(tmp_path, monkeypatch, no_system_folder):
    write_fake_mnist(sources.cache_dir("mnist"))
    monkeypatch.setenv("KDLAB_DATA_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match="nowhere.*KDLAB_DATA_DIR.*does not exist"):
        load_dataset("mnist", download=False)
    write_fake_mnist(tmp_path / "mine")  # an explicit folder wins over the environment, as in local_folders
    assert len(load_dataset("mnist", tmp_path / "mine", download=False).y_train) == 20


def test_the_cli_exits_2_for_a_missing_data_dir(tmp_path, capsys):
    from kdlab.cli.main import main

    assert main(["distill", "--data-dir", str(tmp_path / "nonexistent"), "--json"]) == 2
    assert "nonexistent" in capsys.readouterr().err


def test_download_false_without_files(no_system_folder):
    with pytest.raises(DataUnavailableError) as err:
        load_dataset("fashion-mnist", download=False)
    msg = str(err.value)
    assert "fashion-mnist" in msg and "KDLAB_DATA_DIR" in msg and "apt-get install dataset-fashion-mnist" in msg


# --- subset (transfer sets) ----------------------------------------------------------------------------


@pytest.fixture
def tiny() -> Dataset:
    x = torch.arange(30, dtype=torch.float32).reshape(30, 1)  # (30, 1): row i holds i, so rows are traceable
    return Dataset("tiny", x, torch.arange(30) % 3, x[:6].clone(), torch.arange(6) % 3, ("a", "b", "c"), (1,))


def test_subset_n_is_seeded(tiny):
    a, b, c = tiny.subset(10, seed=1), tiny.subset(10, seed=1), tiny.subset(10, seed=2)
    assert len(a.y_train) == 10 and torch.equal(a.x_train, b.x_train) and not torch.equal(a.x_train, c.x_train)
    rows = a.x_train[:, 0].long()
    assert torch.equal(a.y_train, rows % 3) and torch.equal(rows, rows.sort().values)  # pairs kept, in order
    assert a.x_test is tiny.x_test and a.y_test is tiny.y_test and a.name == "tiny" and a.classes == tiny.classes


def test_subset_omit_classes(tiny):
    s = tiny.subset(omit_classes=[1])
    assert len(s.y_train) == 20 and 1 not in s.y_train.tolist() and s.num_classes == 3
    s5 = tiny.subset(5, omit_classes=(0, 2), seed=3)
    assert s5.y_train.tolist() == [1] * 5
    assert torch.equal(tiny.subset().x_train, tiny.x_train)


@pytest.mark.parametrize("kwargs", [dict(n=0), dict(n=-1), dict(n=31), dict(n=21, omit_classes=[0]),
                                    dict(omit_classes=[3]), dict(omit_classes=[0, 1, 2]), dict(n=2.5)])
def test_subset_invalid(tiny, kwargs):
    with pytest.raises(ConfigError):
        tiny.subset(**kwargs)


# --- download ------------------------------------------------------------------------------------------


def test_download_into_cache(http_mirror, monkeypatch, no_system_folder):
    folder, url = http_mirror
    hashes = write_fake_mnist(folder, seed=5)
    monkeypatch.setitem(sources.SHA256, "mnist", hashes)
    monkeypatch.setenv("KDLAB_MNIST_MIRROR", url)
    ds = load_dataset("mnist")
    assert len(ds.y_train) == 20 and len(ds.y_test) == 10
    cached = sources.cache_dir("mnist")
    assert sorted(p.name for p in cached.iterdir()) == sorted(sources.IDX_FILES)
    assert all(sha256(cached / name) == h for name, h in hashes.items())
    # Once cached, the network is not needed any more.
    monkeypatch.setenv("KDLAB_MNIST_MIRROR", f"http://127.0.0.1:{closed_port()}/")
    assert torch.equal(load_dataset("mnist", download=False).x_train, ds.x_train)


def test_download_hash_mismatch_is_rejected(http_mirror, monkeypatch, no_system_folder):
    folder, url = http_mirror
    hashes = write_fake_mnist(folder, seed=6)
    write_fake_mnist(folder, seed=7)  # the mirror now serves other bytes than the pinned hashes
    monkeypatch.setitem(sources.SHA256, "fashion-mnist", hashes)
    monkeypatch.setitem(sources.MIRRORS, "fashion-mnist", url)
    with pytest.raises(DataUnavailableError, match="hash") as err:
        load_dataset("fashion-mnist")
    assert "fashion-mnist" in str(err.value)
    cached = sources.cache_dir("fashion-mnist")
    assert not cached.exists() or list(cached.iterdir()) == []  # no bad file and no temporary left


def test_offline_fails_fast_with_instructions(monkeypatch, no_system_folder):
    monkeypatch.setenv("KDLAB_FASHION_MNIST_MIRROR", f"http://127.0.0.1:{closed_port()}/")
    start = time.perf_counter()
    with pytest.raises(DataUnavailableError) as err:
        load_dataset("fashion-mnist")
    assert time.perf_counter() - start < 5
    msg = str(err.value)
    assert "KDLAB_DATA_DIR" in msg and "apt-get install dataset-fashion-mnist" in msg and "download" in msg
    assert err.value.__cause__ is None and err.value.__suppress_context__  # no pooch/requests traceback
    assert "\n" not in msg  # front ends show it as one line


# --- the real Fashion-MNIST from Debian's dataset-fashion-mnist ----------------------------------------


@pytest.mark.skipif(not FASHION_SYSTEM.is_dir(), reason="dataset-fashion-mnist is not installed")
def test_fashion_mnist_system_folder():
    ds = load_dataset("fashion-mnist", download=False)
    assert ds.x_train.shape == (60000, 1, 28, 28) and ds.x_test.shape == (10000, 1, 28, 28)
    assert ds.classes == ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                          "Bag", "Ankle boot")
    assert torch.bincount(ds.y_train).tolist() == [6000] * 10
    assert abs(ds.x_train.mean().item()) < 1e-3
