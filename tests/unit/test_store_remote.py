"""core.store against a real S3-compatible server (moto's server mode) and an unreachable one: it fails loudly and
fast, never creates a bucket, remembers its misses, and a missing fsspec backend falls back to the local store."""

from __future__ import annotations

import os
import time

import pytest

from core import store as store_module
from core.store import StoreUnavailable, open_store
from harness.services import BUCKET, port_from, s3, s3_client

UNIT_S3_PORT = port_from("BILINEAR_LAB_TEST_UNIT_S3_PORT")  # the browser test uses S3_PORT
CLOSED_PORT = int(os.environ.get("BILINEAR_LAB_TEST_CLOSED_PORT", "8719"))  # nothing listens there
A, B = "a0a0a0a0a0a0", "b1b1b1b1b1b1"


@pytest.fixture(scope="module")
def aws():
    pytest.importorskip("s3fs")
    with s3(UNIT_S3_PORT) as env:
        yield env


@pytest.fixture
def s3_env(aws, monkeypatch):
    from s3fs import S3FileSystem

    for key, value in aws.items():
        monkeypatch.setenv(key, value)
    S3FileSystem.clear_instance_cache()  # fsspec reuses a filesystem per set of options, not per environment
    yield monkeypatch
    S3FileSystem.clear_instance_cache()


def buckets(aws) -> list[str]:
    return sorted(b["Name"] for b in s3_client(aws).list_buckets()["Buckets"])


def test_a_bucket_round_trip_and_a_remembered_miss(s3_env, monkeypatch):
    store = open_store(f"s3://{BUCKET}/models-{time.time_ns()}")
    assert store.problem is None and not store.local
    store.put(A, b"weights")
    assert store.get(A) == b"weights" and store.ids() == [A]
    calls = []
    original = store.fs.cat_file
    monkeypatch.setattr(store.fs, "cat_file", lambda path, **kw: calls.append(path) or original(path, **kw))
    assert store.get(B) is None and store.get(B) is None
    assert len(calls) == 1, "a miss is remembered for MISS_SECONDS: one request, not one per board"
    store.put(B, b"other")
    assert store.get(B) == b"other", "a model written here is no miss any more"
    assert store.get(A, fresh=True) == b"weights"


def test_a_model_another_replica_writes_after_this_one_wrote_is_found(s3_env):
    """Two replicas on one bucket: A's own put lists the bucket (its eviction), and that listing must not hide a
    model B writes afterwards (the two-replica load test found B's models missing from A's board)."""
    url = f"s3://{BUCKET}/models-{time.time_ns()}"
    a, b = open_store(url), open_store(url)
    a.put(A, b"weights")
    b.put(B, b"other")
    assert a.get(B) == b"other"


def test_a_mistyped_bucket_is_named_and_never_created(s3_env, aws):
    before = buckets(aws)
    store = open_store(f"s3://{BUCKET}-typo/models")
    assert "does not exist" in store.problem and "never creates a bucket" in store.problem
    with pytest.raises(StoreUnavailable):
        store.put(A, b"weights")
    assert buckets(aws) == before, "no bucket was created"


def test_a_bucket_created_after_start_up_is_found_and_written(s3_env, aws):
    bucket = f"late-{time.time_ns()}"
    store = open_store(f"s3://{bucket}/models")
    assert "does not exist" in store.problem
    s3_client(aws).create_bucket(Bucket=bucket)
    with pytest.raises(StoreUnavailable):
        store.put(A, b"weights")  # not looked for again at every write
    real = time.monotonic
    s3_env.setattr(store_module.time, "monotonic", lambda: real() + store_module.MISSING_RECHECK_SECONDS + 1)
    store.put(A, b"weights")
    assert store.problem is None and store.get(A) == b"weights"
    assert s3_client(aws).get_object(Bucket=bucket, Key=f"models/{A}.safetensors")["Body"].read() == b"weights"


def test_an_unreachable_store_fails_fast_and_says_so(s3_env):
    s3_env.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{CLOSED_PORT}")
    started = time.perf_counter()
    store = open_store(f"s3://{BUCKET}/models")
    assert "cannot be reached" in store.problem and "will not survive a restart" in store.problem
    assert store.get(A) is None
    with pytest.raises(StoreUnavailable):
        store.put(A, b"weights")
    assert time.perf_counter() - started < 10, "short timeouts, one attempt, then nobody waits on it"
    real = time.monotonic
    s3_env.setattr(store_module.time, "monotonic", lambda: real() + store_module.DOWN_SECONDS + 1)
    assert store.get(A) is None and "cannot be reached" in store.problem, "the notice stays until a request succeeds"


def test_a_slow_store_times_out(s3_env, monkeypatch):
    """A server that accepts the connection but never answers: the read timeout ends the wait."""
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", CLOSED_PORT))
    listener.listen(8)
    accepted = []
    stop = threading.Event()

    def hold() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])  # never answered
            except OSError:
                continue

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    try:
        s3_env.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{CLOSED_PORT}")
        started = time.perf_counter()
        store = open_store(f"s3://{BUCKET}/models")
        took = time.perf_counter() - started
        assert store.problem is not None and "cannot be reached" in store.problem
        assert took < 3 * store_module.FAST_S3_OPTIONS["config_kwargs"]["read_timeout"], took
    finally:
        stop.set()
        thread.join()
        for connection in accepted:
            connection.close()
        listener.close()


def test_a_missing_backend_is_named_and_the_local_store_stands_in(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    store = open_store("gcs://class-bucket/models")  # gcsfs is not a requirement
    assert store.local and str(tmp_path) in store.url
    assert "gcs://class-bucket/models" in store.problem and "gcsfs" in store.problem
    store.put(A, b"weights")
    assert store.get(A) == b"weights", "the app keeps working from the local directory"
