"""A bounded store of trained checkpoints (safetensors bytes) by model id, at an fsspec URL.

Why: the registry (server.registry) lives in memory, so a restart or a sleep of the app forgets every
model the class trained. Models written here survive it, and replicas behind sticky sessions can
share one bucket: a model trained by one is found by the others (ids are deterministic, see
core.urlstate). The store is a cache: an entry may vanish at any time, and `get` then says None.

Configuration: the environment variable BILINEAR_LAB_MODEL_STORE holds the URL, e.g.
`s3://my-bucket/bilinear-lab` (with s3fs installed and credentials in the environment, as boto
reads them); any fsspec URL works. Unset, a local directory: $XDG_CACHE_HOME or ~/.cache, then
the temporary directory if the home cache is not writable (see default_store_url). A local
directory survives a restart of the server process, not a new container: where a sleeping app
wakes up on a fresh disk (Streamlit Community Cloud may), only a bucket keeps the models.

Failing loudly and fast: an S3 store gets short timeouts and one attempt (FAST_S3_OPTIONS: botocore's
retries stalled every page for 8-17 s with the store unreachable); a read or write that fails marks the
store down for DOWN_SECONDS, during which nobody waits on it again; a miss is remembered for MISS_SECONDS
(a class's boards asking for an evicted model cost one request, not one per board); `problem` says, in a
sentence for the page, what is wrong and what will not survive. The app never creates a bucket: a missing
one is a `problem` from `check()` at start-up, and every write fails at once until a read or write, at most
every MISSING_RECHECK_SECONDS, finds it created (the registry then writes the models it still holds).
`open_store` names a missing fsspec backend (s3fs, gcsfs) at start-up and falls back to the local directory.

Layout: one file `<id>.safetensors` per model under the root. Ids must match core.identity.MODEL_ID,
so no key can name a path outside the root.

LRU by bytes: after each write the least recently used entries are deleted until the total is at most
`max_bytes` (never the entry just written, so one entry larger than max_bytes stays alone). Recency is
the later of the file's modification time (as the filesystem lists it) and this process's own last use.
- Local directory: a get also sets the file's mtime, so the order survives a restart exactly.
- Object stores: an object's time cannot be changed without rewriting it, so there is no touch:
  recency is the write time, plus the reads of this process since it started. After a restart a
  model read often but written long ago is the first to go; the price is one retraining.
- Several processes sharing a store: writes are atomic (local: a temporary name in the same
  directory, then a rename; object stores: a put is atomic), so a reader never sees half a file.
  Each process evicts by its own view, so one may delete a model another has just read or written,
  and the total may briefly exceed max_bytes by what the others wrote meanwhile; a get that loses
  such a race returns None, which costs a retraining, never an error.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import posixpath
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from fsspec.core import url_to_fs
from fsspec.implementations.local import LocalFileSystem

from core.checkpoint import MAX_BYTES
from core.identity import MODEL_ID

ENV_VAR = "BILINEAR_LAB_MODEL_STORE"
DEFAULT_MAX_BYTES = 2**30  # ~150 models of d_hidden=1024 (7 MB), thousands of the usual sizes
SUFFIX = ".safetensors"
STALE_TMP_SECONDS = 3600  # a temporary file this old belongs to a writer that died: delete it
# The names filesystems give an entry's last write: local, s3fs, adlfs, gcsfs, memory (which has only that).
TIME_KEYS = ("mtime", "LastModified", "last_modified", "updated", "created")
# A temporary file of ModelStore._write_local: ".<id>.safetensors.<uuid4 hex>.tmp".
_TMP_NAME = re.compile(rf"^\.(?:[pu]-)?[0-9a-f]+{re.escape(SUFFIX)}\.[0-9a-f]{{32}}\.tmp$")

MISS_SECONDS = 5.0  # a model the store did not have is not asked for again this long (unless `fresh`)
DOWN_SECONDS = 15.0  # after a failed read or write the store is left alone this long: pages never wait twice
MISSING_RECHECK_SECONDS = 60.0  # a missing bucket is looked for again this often (someone may create it meanwhile)
# s3fs (aiobotocore): seconds to connect and to read, and one attempt: not botocore's retries, nor s3fs's own
# 5 (FAST_RETRIES, set on the filesystem: s3fs takes it from a class attribute, not an argument)
FAST_S3_OPTIONS = {"config_kwargs": {"connect_timeout": 2, "read_timeout": 5, "retries": {"max_attempts": 1}}}
FAST_RETRIES = 1
BACKENDS = {"s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs", "abfs": "adlfs"}

log = logging.getLogger("bilinear_eigen_lab")


class StoreUnavailable(OSError):
    """The store cannot be reached, or its bucket does not exist: nothing was written."""


def default_store_url() -> str:
    """BILINEAR_LAB_MODEL_STORE if set, else a local directory (created on the first put).

    $XDG_CACHE_HOME/bilinear-eigen-lab/models or ~/.cache/bilinear-eigen-lab/models, or under the
    temporary directory when that cache cannot be written (a read-only home, a container without one).
    """
    url = os.environ.get(ENV_VAR, "").strip()
    return url or default_local_url()


def default_local_url() -> str:
    """The local directory a store uses without BILINEAR_LAB_MODEL_STORE (or when its backend is missing)."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    # The XDG spec says a relative value is invalid and must be ignored.
    cache = Path(xdg) if os.path.isabs(xdg) else Path(os.path.expanduser("~")) / ".cache"
    home = cache / "bilinear-eigen-lab" / "models"
    if home.is_absolute() and _creatable(home):  # "~" stays relative when there is no home at all
        return str(home)
    return str(Path(tempfile.gettempdir()) / "bilinear-eigen-lab" / "models")


def open_store(url: str, max_bytes: int = DEFAULT_MAX_BYTES) -> ModelStore:
    """The store at `url`, checked once (`check`); if its fsspec backend is missing or the URL is unusable, the
    local directory instead, with a `problem` that names what to install."""
    try:
        store = ModelStore(url, max_bytes)
    except (ImportError, ValueError) as error:  # fsspec: "Install s3fs to access S3", an unknown protocol
        protocol = url.split("://", 1)[0] if "://" in url else url
        package = BACKENDS.get(protocol)
        needs = f"needs the package {package}, which is not installed" if package else f"cannot be used ({error})"
        local = default_local_url()
        log.error("model store %s %s: models go to %s instead", url, needs, local)
        store = ModelStore(local, max_bytes)
        store.fallback = (
            f"The model store {url} {needs}, so models are kept in this server's own directory instead: they "
            "survive a restart of this server, not a new container, and the class's other servers do not see them."
        )
        return store
    store.check()
    return store


def _creatable(directory: Path) -> bool:
    """Whether `directory` is, or could be made, a writable directory; creates nothing."""
    for path in (directory, *directory.parents):
        if path.exists():
            return path.is_dir() and os.access(path, os.W_OK | os.X_OK)
    return False


def _timestamp(info: Mapping[str, Any]) -> float:
    """Seconds since the epoch of an entry's last write, whatever the filesystem calls it; 0.0 (the oldest) if none."""
    for key in TIME_KEYS:
        value = info.get(key)
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                continue
        if isinstance(value, datetime):
            # A naive time from a remote store is UTC, not this server's zone.
            return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return 0.0


class _Entry(NamedTuple):
    model_id: str
    size: int  # bytes
    recency: tuple[float, int, str]  # (last use, this process's use count, id): sorts oldest first


class ModelStore:
    """Checkpoint bytes by model id at an fsspec URL, least recently used evicted past max_bytes.

    Thread-safe: puts, evictions and the bookkeeping take one lock; a get reads outside it, so a
    slow read never holds up another session.
    """

    def __init__(self, url: str, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, not {max_bytes}")
        self.url, self.max_bytes = url, max_bytes
        options = FAST_S3_OPTIONS if url.split("://", 1)[0] in ("s3", "s3a") else {}
        self.fs, self.root = url_to_fs(url, **options)
        self.root = self.root.rstrip("/") or "/"
        protocol = url.split("://", 1)[0] if "://" in url else "file"
        # an object store's bucket (the root's first part): checked, never created; other roots are directories
        self._bucket = self.root.strip("/").split("/")[0] if protocol in BACKENDS else None
        if options and hasattr(self.fs, "retries"):
            self.fs.retries = FAST_RETRIES  # s3fs's own retry loop (a class attribute, 5)
        self._local = isinstance(self.fs, LocalFileSystem)  # only there can we rename and set times
        self._lock = threading.Lock()
        self._used: dict[str, tuple[float, int]] = {}  # id -> (time, counter) of this process's last use
        self._last, self._count = 0.0, 0
        self._misses: dict[str, float] = {}  # id -> when the store last said it had no such model
        self._down_until, self._down_why = 0.0, ""  # the store failed: left alone until then
        self._missing_root = False  # check() found no bucket (or root directory) on a remote store
        self._missing_checked = -math.inf  # when check() last looked for it
        self.fallback = ""  # open_store: why this local store stands in for the configured one

    @property
    def local(self) -> bool:
        """Whether the store is a directory on this server's disk."""
        return self._local

    @property
    def problem(self) -> str | None:
        """A sentence for the page while the store is unreachable, missing or replaced; None when it works."""
        if self.fallback:
            return self.fallback
        if self._missing_root:
            return (
                f"The model store {self.url} does not exist (the app never creates a bucket: check its name, or "
                "create it). Models trained now live in this server's memory only and will not survive a restart; "
                f"the app looks for the bucket again every {MISSING_RECHECK_SECONDS:.0f} s and then writes the "
                "models it still holds."
            )
        if self._down_why:  # from the failure until the next request that succeeds
            return (
                f"The model store {self.url} cannot be reached ({self._down_why}). Models trained now live in this "
                "server's memory until it answers again (they are written then): until then they will not survive "
                "a restart nor reach the class's other servers."
            )
        return None

    def check(self) -> bool:
        """Start-up: does an object store's bucket exist (a directory is created on the first put)? False, and a
        `problem`, if it is missing or unreachable."""
        if self._bucket is None:
            return True  # a directory: made on the first put
        was_missing, self._missing_checked = self._missing_root, time.monotonic()
        try:
            self.fs.invalidate_cache(self._bucket)
            self.fs.ls(self._bucket)  # not `exists`: s3fs's says False for an unreachable server too
        except FileNotFoundError:
            if not was_missing:
                log.error("model store %s: the bucket does not exist; the app does not create it", self.url)
            self._missing_root = True
            return False
        except PermissionError:  # credentials that may read and write models but not list the bucket: try them
            pass
        except Exception as e:  # unreachable: botocore, aiohttp and the like raise their own types
            self._down(e)
            return False
        if was_missing:
            log.warning("model store %s: the bucket exists now; models are written there again", self.url)
        self._missing_root = False
        return True

    def _missing(self) -> bool:
        """Whether the bucket is missing, looked for again if check() last did so MISSING_RECHECK_SECONDS ago."""
        if self._missing_root and time.monotonic() - self._missing_checked >= MISSING_RECHECK_SECONDS:
            self.check()
        return self._missing_root

    def _down(self, error: BaseException) -> None:
        first = time.monotonic() >= self._down_until
        self._down_until, self._down_why = time.monotonic() + DOWN_SECONDS, type(error).__name__
        if first:
            log.error("model store %s cannot be reached (%s: %s)", self.url, type(error).__name__, error)

    def __repr__(self) -> str:
        return f"ModelStore({self.url!r}, max_bytes={self.max_bytes})"

    def _path(self, model_id: str) -> str:
        # fullmatch: MODEL_ID ends in `$`, which .match would let through before a trailing newline.
        if not isinstance(model_id, str) or not MODEL_ID.fullmatch(model_id):
            raise ValueError(f"not a model id: {model_id!r}")
        return posixpath.join(self.root, model_id + SUFFIX)

    def put(self, model_id: str, data: bytes, keep: Collection[str] = ()) -> None:
        """Store a checkpoint, then evict the least recently used past max_bytes (never this one, nor
        those in `keep`: pinned, in use or recent, as the caller knows them).

        An id already present is only marked recently used: a model is deterministic per id.
        Raises ValueError for a bad id or data over core.checkpoint.MAX_BYTES; a filesystem error
        propagates (the caller still has the model in memory).
        """
        path = self._path(model_id)
        if len(data) > MAX_BYTES:
            raise ValueError(f"{len(data)} bytes is more than a checkpoint's limit of {MAX_BYTES}")
        if self._missing() or time.monotonic() < self._down_until:
            raise StoreUnavailable(self.problem or f"the model store {self.url} is unavailable")
        with self._lock:  # one writer at a time, so eviction never drops another thread's fresh entry
            try:
                self.fs.invalidate_cache(self.root)  # object stores cache listings; another replica may have written
                if self.fs.exists(path):
                    self._mark_used(model_id, path)
                    self._down_why = ""
                    return
                if self._local:
                    self._write_local(path, data)
                else:
                    try:
                        self.fs.pipe_file(path, data)  # an object store's put is atomic: all or nothing
                    except FileNotFoundError as e:
                        if self._bucket is not None:  # no bucket: never created here (a typo would make a new one)
                            self._missing_root, self._missing_checked = True, time.monotonic()
                            raise StoreUnavailable(f"the model store {self.url} does not exist") from e
                        self.fs.makedirs(self.root, exist_ok=True)  # a filesystem with real directories (sftp, smb)
                        self.fs.pipe_file(path, data)
                self._misses.pop(model_id, None)
                self._mark_used(model_id, path)
                self._evict(keep={model_id, *keep})
                self._down_why = ""
            except (StoreUnavailable, ValueError):
                raise
            except Exception as e:
                if not self._local:  # a local disk error (full, read-only) is not an unreachable store
                    self._down(e)
                raise

    def delete(self, model_id: str) -> None:
        """Remove a checkpoint (absent already: nothing happens)."""
        path = self._path(model_id)
        with self._lock:
            self._remove(path)
            self._used.pop(model_id, None)
            self._misses.pop(model_id, None)

    def get(self, model_id: str, fresh: bool = False) -> bytes | None:
        """The checkpoint's bytes, or None if absent or unreadable (never raises, except for a bad id).

        At once None while the store is down or missing, and for an id missed less than MISS_SECONDS ago
        (unless `fresh`: another replica has just written it)."""
        path = self._path(model_id)
        now = time.monotonic()
        if self._missing() or now < self._down_until:
            return None
        if not fresh and now - self._misses.get(model_id, -math.inf) < MISS_SECONDS:
            return None
        data, problem = None, None
        try:
            if not self._local:  # a listing cached here (a put's eviction) would hide what another replica wrote since
                self.fs.invalidate_cache(path)
            data = self.fs.cat_file(path)
        except FileNotFoundError:
            self._remember_miss(model_id, now)  # never stored, or evicted since
        except Exception as e:  # backends raise their own types (botocore, aiohttp); a miss is always safe
            problem = f"could not be read ({type(e).__name__}: {e})"
            if not self._local:
                self._down(e)
        if problem is None:
            self._down_why = ""  # the store answered (a miss is an answer)
        with self._lock:
            if data is not None:
                self._mark_used(model_id, path)
            elif model_id in self._used and problem is None:
                problem = "has vanished (evicted by another process?)"  # this process had stored or read it
            if data is None:
                self._used.pop(model_id, None)
        if problem:
            log.warning("model store %s: %s %s", self.url, model_id, problem)
        elif data is None:
            log.debug("model store %s: no %s", self.url, model_id)  # a plain miss is routine: not a warning
        return data

    def _remember_miss(self, model_id: str, now: float) -> None:
        with self._lock:
            if len(self._misses) > 1000:  # bounded: forget the ones whose time is up
                self._misses = {i: t for i, t in self._misses.items() if now - t < MISS_SECONDS}
            self._misses[model_id] = now

    def ids(self) -> list[str]:
        """The stored ids, least recently used first (as this process sees it)."""
        with self._lock:
            return [e.model_id for e in sorted(self._entries(), key=lambda e: e.recency)]

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries())

    # --- under the lock -------------------------------------------------------------------

    def _mark_used(self, model_id: str, path: str) -> None:
        # Strictly increasing, 1 µs apart (several float ulps), so two uses never tie, here or in a file's mtime.
        self._last = max(time.time(), self._last + 1e-6)
        self._count += 1
        self._used[model_id] = (self._last, self._count)
        if self._local:
            # OSError: evicted meanwhile, or a read-only directory; the in-process order still holds.
            with contextlib.suppress(OSError):
                os.utime(path, (self._last, self._last))  # the recency a restart will read back

    def _write_local(self, path: str, data: bytes) -> None:
        """Write to a temporary name in the same directory, then rename: readers see all or nothing."""
        os.makedirs(self.root, exist_ok=True)
        tmp = posixpath.join(self.root, f".{posixpath.basename(path)}.{uuid.uuid4().hex}.tmp")
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())  # the rename must not land before the data (a crash would leave it empty)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.remove(tmp)
            raise

    def _entries(self) -> list[_Entry]:
        """The stored checkpoints, from one fresh listing; removes stale temporary files on the way."""
        self.fs.invalidate_cache(self.root)
        try:
            listing = self.fs.ls(self.root, detail=True)
        except FileNotFoundError:  # nothing written yet: the directory is created on the first put
            return []
        entries, now = [], time.time()
        for info in listing:
            name = posixpath.basename(str(info["name"]).rstrip("/"))
            model_id = name.removesuffix(SUFFIX)
            if info.get("type", "file") == "file" and name.endswith(SUFFIX) and MODEL_ID.fullmatch(model_id):
                used, count = self._used.get(model_id, (0.0, 0))
                entries.append(
                    _Entry(model_id, int(info.get("size") or 0), (max(_timestamp(info), used), count, model_id))
                )
            elif self._local and _TMP_NAME.match(name) and now - _timestamp(info) > STALE_TMP_SECONDS:
                self._remove(info["name"])
        present = {e.model_id for e in entries}
        self._used = {i: u for i, u in self._used.items() if i in present}  # bounded by what is stored
        return entries

    def _evict(self, keep: Collection[str]) -> None:
        entries = self._entries()
        total = sum(e.size for e in entries)
        for entry in sorted(entries, key=lambda e: e.recency):
            if total <= self.max_bytes:
                break
            if entry.model_id not in keep:
                self._remove(posixpath.join(self.root, entry.model_id + SUFFIX))
                self._used.pop(entry.model_id, None)
                total -= entry.size

    def _remove(self, path: str) -> None:
        try:
            self.fs.rm_file(path)
        except FileNotFoundError:
            pass  # another replica evicted it first
        except OSError as e:
            log.warning("model store %s: could not delete %s (%s)", self.url, path, e)
