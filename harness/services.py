"""Throwaway services for the tests of a shared room: a PostgreSQL 15 cluster and an S3-compatible server (moto).

PostgreSQL comes from Debian's `postgresql` package (`make services` installs it as root); initdb refuses
to run as root, so as root the cluster is made and run by the `postgres` user. moto's server mode comes
from requirements-dev.txt. Each binds 127.0.0.1 on a port the kernel picks (PG_PORT, S3_PORT; the environment
may name them), lives in a fresh directory and is stopped, and its directory removed, on exit.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from harness.processes import stop

PG_BIN = Path(os.environ.get("BILINEAR_LAB_PG_BIN", "/usr/lib/postgresql/15/bin"))


def port_from(variable: str) -> int:
    """The port the environment names, or a free one the kernel picks: two test runs on one machine (a
    developer's and another's, or CI beside a session) never meet on a fixed port."""
    if os.environ.get(variable):
        return int(os.environ[variable])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


PG_PORT = port_from("BILINEAR_LAB_TEST_PG_PORT")
S3_PORT = port_from("BILINEAR_LAB_TEST_S3_PORT")
BUCKET = "bilinear-lab-test"


def require(what: str, present: bool) -> None:
    """Skip a test whose service is missing; in CI (`make test` installs them) fail instead."""
    import pytest

    if not present:
        if os.environ.get("CI"):
            pytest.fail(f"{what} is missing: `make services` installs it")
        pytest.skip(f"{what} is not installed (run `make services` as root)")


def postgres_available() -> bool:
    return (PG_BIN / "initdb").exists() and (PG_BIN / "pg_ctl").exists()


def wait_for_port(port: int, timeout: float) -> None:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


@contextlib.contextmanager
def postgres(port: int = PG_PORT) -> Iterator[str]:
    """A fresh PostgreSQL cluster on 127.0.0.1:`port`; yields its SQLAlchemy URL (database `lab`, user `lab`)."""
    root = os.geteuid() == 0
    directory = Path(tempfile.mkdtemp(prefix="bilinear-lab-pg-"))
    data = directory / "data"
    if root:
        shutil.chown(directory, "postgres", "postgres")

    def run(*args: str, **kwargs) -> subprocess.CompletedProcess:
        command = ["runuser", "-u", "postgres", "--", *args] if root else list(args)
        return subprocess.run(command, check=True, capture_output=True, text=True, **kwargs)

    try:
        run(str(PG_BIN / "initdb"), "-D", str(data), "-U", "lab", "--auth=trust", "-E", "UTF8", "--no-sync")
        options = f"-p {port} -h 127.0.0.1 -k {directory} -c fsync=off -c full_page_writes=off"
        run(str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(directory / "log"), "-w", "start")
        run(str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "lab", "lab")
        yield f"postgresql+psycopg://lab@127.0.0.1:{port}/lab"
    finally:
        with contextlib.suppress(subprocess.CalledProcessError, FileNotFoundError):
            run(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def s3(port: int = S3_PORT, bucket: str = BUCKET) -> Iterator[dict[str, str]]:
    """moto's S3 server on 127.0.0.1:`port` with one empty bucket; yields the environment an app (s3fs,
    botocore) needs to use it: an endpoint and fake credentials."""
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    log = tempfile.NamedTemporaryFile(prefix="bilinear-lab-moto-", suffix=".log", delete=False)  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        wait_for_port(port, 30)
        s3_client(env).create_bucket(Bucket=bucket)
        yield env
    finally:
        stop(process)
        log.close()
        os.unlink(log.name)


def s3_client(env: dict[str, str]):
    """A boto3 S3 client for the server `s3` started (`env`: what it yielded)."""
    import boto3  # a dev dependency, only where a bucket is used

    return boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_DEFAULT_REGION"],
    )
