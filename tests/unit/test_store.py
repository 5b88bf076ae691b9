"""core.store: the bounded, restart-surviving checkpoint store, on a local directory and on memory://."""

from __future__ import annotations

import logging
import os
import posixpath
import random
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
import torch
from fsspec.core import url_to_fs

from core.checkpoint import MAX_BYTES, load_checkpoint, save_checkpoint
from core.config import Config
from core.store import ENV_VAR, SUFFIX, ModelStore, _timestamp, default_store_url
from core.train import new_model

A, B, C, D = (f"{i:012x}" for i in (0xA, 0xB, 0xC, 0xD))


def blob(model_id: str, size: int = 100) -> bytes:
    """Bytes that tell which id they were stored under (the store never looks inside)."""
    return (model_id.encode() * size)[:size]


def stored_bytes(store: ModelStore) -> int:
    """The bytes of the entries the store lists, as its filesystem holds them."""
    return sum(store.fs.size(posixpath.join(store.root, model_id + SUFFIX)) for model_id in store.ids())


@pytest.fixture(params=["local", "memory"])
def url(request, tmp_path):
    if request.param == "local":
        yield str(tmp_path / "store")  # not created: the first put makes it
        return
    # fsspec's memory filesystem is one dict per process: a fresh root per test, removed afterwards.
    url = f"memory://store-test-{uuid.uuid4().hex}"
    yield url
    fs, root = url_to_fs(url)
    if fs.exists(root):
        fs.rm(root, recursive=True)


def test_round_trip_of_a_checkpoint(url):
    config = Config(d_hidden=4)
    model = new_model(config)
    data = save_checkpoint(model, config, [])
    store = ModelStore(url)
    store.put("u-0123456789ab", data)
    got = store.get("u-0123456789ab")
    assert got == data
    loaded, loaded_config, history = load_checkpoint(got)
    assert loaded_config == config and history == []
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    assert len(store) == 1 and stored_bytes(store) == len(data) and store.ids() == ["u-0123456789ab"]


def test_missing_id_is_none(url):
    store = ModelStore(url)
    assert store.get(A) is None  # before the root exists
    store.put(B, blob(B))
    assert store.get(A) is None
    assert store.get(B) == blob(B)


@pytest.mark.parametrize(
    "bad", ["../etc/passwd", "ABC", "", "p-xyz", "0123456789AB", "x-0123456789ab", "../0123456789ab", A + "\n", A + "0"]
)
def test_invalid_ids_are_refused(url, bad):
    store = ModelStore(url)
    with pytest.raises(ValueError, match="not a model id"):
        store.get(bad)
    with pytest.raises(ValueError, match="not a model id"):
        store.put(bad, b"data")
    assert len(store) == 0


def test_eviction_by_bytes_drops_the_least_recently_used(url):
    store = ModelStore(url, max_bytes=300)
    for model_id in (A, B, C):
        store.put(model_id, blob(model_id))
    assert store.ids() == [A, B, C] and stored_bytes(store) == 300
    assert store.get(A) == blob(A)  # A is now the most recently used; B the least
    assert store.ids() == [B, C, A]
    store.put(D, blob(D))
    assert store.ids() == [C, A, D] and stored_bytes(store) == 300
    assert store.get(B) is None


def test_eviction_frees_enough_bytes_and_never_drops_the_entry_just_written(url):
    store = ModelStore(url, max_bytes=250)
    store.put(A, blob(A))
    store.put(B, blob(B))
    store.put(C, blob(C, 200))  # must drop both A and B to fit
    assert store.ids() == [C] and stored_bytes(store) == 200
    store.put(D, blob(D, 400))  # larger than the whole store: it stays, alone
    assert store.ids() == [D] and store.get(D) == blob(D, 400)


def test_put_of_a_present_id_keeps_its_bytes_and_refreshes_it(url):
    store = ModelStore(url, max_bytes=200)
    store.put(A, blob(A))
    store.put(B, blob(B))
    store.put(A, b"other bytes for the same id")  # deterministic per id: no rewrite, only recency
    assert store.get(A) == blob(A)
    store.put(C, blob(C))
    assert store.ids() == [A, C], "B, not the re-put A, was the least recently used"


def test_a_restart_finds_earlier_entries(url):
    first = ModelStore(url)
    for model_id in (A, B, C):
        first.put(model_id, blob(model_id))
    again = ModelStore(url if "://" in url else f"file://{url}")  # a new process; locally, another spelling
    assert sorted(again.ids()) == [A, B, C] and stored_bytes(again) == 300
    assert all(again.get(i) == blob(i) for i in (A, B, C))


def test_a_restart_keeps_the_lru_order_on_a_local_directory(tmp_path):
    first = ModelStore(str(tmp_path), max_bytes=300)
    for model_id in (A, B, C):
        first.put(model_id, blob(model_id))
    first.get(A)  # written first, read last: must outlive B and C
    first.put(B, blob(B))  # a no-op put counts as a use too
    again = ModelStore(f"file://{tmp_path}", max_bytes=300)
    assert again.ids() == [C, A, B]
    again.put(D, blob(D))
    assert again.ids() == [A, B, D]


def test_a_file_deleted_behind_the_store_reads_as_none(url, caplog):
    store = ModelStore(url)
    store.put(A, blob(A))
    store.fs.rm_file(f"{store.root}/{A}.safetensors")  # as another replica's eviction would
    with caplog.at_level(logging.WARNING, logger="bilinear_eigen_lab"):
        assert store.get(A) is None
        assert store.get(B) is None  # a plain miss: routine, no warning
    assert [r.getMessage() for r in caplog.records] == [
        f"model store {url}: {A} has vanished (evicted by another process?)"
    ]
    assert len(store) == 0
    store.put(A, blob(A))  # and it can be stored again
    assert store.get(A) == blob(A)


def test_an_unreadable_entry_reads_as_none_with_a_warning(url, caplog, monkeypatch):
    store = ModelStore(url)
    store.put(A, blob(A))

    def fail(path, *args, **kwargs):
        raise RuntimeError("connection reset")  # what a backend's own error type looks like

    monkeypatch.setattr(store.fs, "cat_file", fail)
    with caplog.at_level(logging.WARNING, logger="bilinear_eigen_lab"):
        assert store.get(A) is None
    assert "could not be read (RuntimeError: connection reset)" in caplog.text


def test_a_directory_in_place_of_a_local_entry_reads_as_none(tmp_path, caplog):
    (tmp_path / f"{A}.safetensors").mkdir()  # IsADirectoryError, even for root
    with caplog.at_level(logging.WARNING, logger="bilinear_eigen_lab"):
        assert ModelStore(str(tmp_path)).get(A) is None
    assert "could not be read (IsADirectoryError" in caplog.text


def test_oversize_data_is_refused(url):
    store = ModelStore(url)
    with pytest.raises(ValueError, match="limit"):
        store.put(A, bytes(MAX_BYTES + 1))
    assert len(store) == 0
    store.put(A, bytes(MAX_BYTES))  # the limit itself is allowed
    assert stored_bytes(store) == MAX_BYTES


def test_a_local_write_goes_through_a_rename_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    renames = []
    replace = os.replace

    def spy(src, dst):
        renames.append((Path(src), Path(dst)))
        replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    store = ModelStore(str(tmp_path))
    store.put(A, blob(A))
    [(src, dst)] = renames
    assert dst == tmp_path / f"{A}.safetensors" and src.parent == tmp_path and not src.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{A}.safetensors"]

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        store.put(B, blob(B))
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{A}.safetensors"], "no temporary file, no half entry"


def test_stale_temporary_files_are_removed_and_never_counted(tmp_path):
    stale = tmp_path / f".{A}.safetensors.{uuid.uuid4().hex}.tmp"  # a writer died mid-put two hours ago
    fresh = tmp_path / f".{B}.safetensors.{uuid.uuid4().hex}.tmp"  # a writer at work right now
    for path in (stale, fresh):
        path.write_bytes(bytes(1000))
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    store = ModelStore(str(tmp_path), max_bytes=500)
    assert stored_bytes(store) == 0 and len(store) == 0
    store.put(C, blob(C))
    assert not stale.exists() and fresh.exists()
    assert store.ids() == [C]


def test_concurrent_puts_and_gets_stay_within_max_bytes(url):
    store = ModelStore(url, max_bytes=1000)
    pool = [f"{i:012x}" for i in range(24)]
    sizes = {model_id: 100 + 10 * i for i, model_id in enumerate(pool)}  # 100-330 bytes each

    def work(seed: int) -> int:
        rng, puts = random.Random(seed), 0
        for _ in range(40):
            model_id = rng.choice(pool)
            if rng.random() < 0.5:
                store.put(model_id, blob(model_id, sizes[model_id]))
                puts += 1
                assert sum(sizes[i] for i in store.ids()) <= 1000  # puts hold the lock over write + eviction
            else:
                got = store.get(model_id)
                assert got is None or got == blob(model_id, sizes[model_id])
        return puts

    with ThreadPoolExecutor(max_workers=8) as executor:
        puts = sum(f.result() for f in [executor.submit(work, seed) for seed in range(8)])  # re-raises
    assert puts > 0
    assert 0 < stored_bytes(store) <= 1000
    assert stored_bytes(store) == sum(sizes[i] for i in store.ids())


@pytest.mark.parametrize(
    "info, expected",
    [
        ({"mtime": 1_700_000_000.5, "created": 1.0}, 1_700_000_000.5),  # local: mtime, not creation
        ({"LastModified": datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)}, 1_700_000_000.0),  # s3fs
        ({"last_modified": "2023-11-14T22:13:20Z"}, 1_700_000_000.0),  # adlfs, as text
        ({"updated": "2023-11-14T22:13:20"}, 1_700_000_000.0),  # gcsfs; a naive time is UTC
        ({"created": 1_700_000_000}, 1_700_000_000.0),  # memory
        ({"mtime": "not a time", "created": 5.0}, 5.0),
        ({"size": 3}, 0.0),  # no time at all: the oldest
    ],
)
def test_write_times_are_read_whatever_the_filesystem_calls_them(info, expected):
    assert _timestamp(info) == expected


# --- default_store_url -----------------------------------------------------------------------


def test_the_environment_variable_names_the_store(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "s3://my-bucket/bilinear-lab")
    assert default_store_url() == "s3://my-bucket/bilinear-lab"


def test_the_default_is_the_xdg_cache_then_the_home_cache(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_VAR, "")  # empty counts as unset
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_store_url() == str(tmp_path / "xdg" / "bilinear-eigen-lab" / "models")
    assert not (tmp_path / "xdg").exists(), "created lazily, on the first put"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # invalid by the XDG spec: ignored
    assert default_store_url() == str(tmp_path / "home" / ".cache" / "bilinear-eigen-lab" / "models")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_store_url() == str(tmp_path / "home" / ".cache" / "bilinear-eigen-lab" / "models")


def test_an_unwritable_home_falls_back_to_the_temporary_directory(monkeypatch, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("a directory cannot be made under a file, not even by root")
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setenv("HOME", str(blocker / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker / "cache"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    url = default_store_url()
    assert url == str(tmp_path / "tmp" / "bilinear-eigen-lab" / "models")
    store = ModelStore(url)
    store.put(A, blob(A))
    assert ModelStore(url).get(A) == blob(A)
