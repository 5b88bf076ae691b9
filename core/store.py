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

log = logging.getLogger("bilinear_eigen_lab")


def default_store_url() -> str:
    """BILINEAR_LAB_MODEL_STORE if set, else a local directory (created on the first put).

    $XDG_CACHE_HOME/bilinear-eigen-lab/models or ~/.cache/bilinear-eigen-lab/models, or under the
    temporary directory when that cache cannot be written (a read-only home, a container without one).
    """
    url = os.environ.get(ENV_VAR, "").strip()
    if url:
        return url
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    # The XDG spec says a relative value is invalid and must be ignored.
    cache = Path(xdg) if os.path.isabs(xdg) else Path(os.path.expanduser("~")) / ".cache"
    home = cache / "bilinear-eigen-lab" / "models"
    if home.is_absolute() and _creatable(home):  # "~" stays relative when there is no home at all
        return str(home)
    return str(Path(tempfile.gettempdir()) / "bilinear-eigen-lab" / "models")


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
        self.fs, self.root = url_to_fs(url)
        self.root = self.root.rstrip("/") or "/"
        self._local = isinstance(self.fs, LocalFileSystem)  # only there can we rename and set times
        self._lock = threading.Lock()
        self._used: dict[str, tuple[float, int]] = {}  # id -> (time, counter) of this process's last use
        self._last, self._count = 0.0, 0

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
        with self._lock:  # one writer at a time, so eviction never drops another thread's fresh entry
            self.fs.invalidate_cache(self.root)  # object stores cache listings; another replica may have written
            if self.fs.exists(path):
                self._mark_used(model_id, path)
                return
            if self._local:
                self._write_local(path, data)
            else:
                try:
                    self.fs.pipe_file(path, data)  # an object store's put is atomic: all or nothing
                except FileNotFoundError:  # a filesystem with real directories (sftp, smb): make the root once
                    self.fs.makedirs(self.root, exist_ok=True)  # not up front: on s3 that costs requests
                    self.fs.pipe_file(path, data)
            self._mark_used(model_id, path)
            self._evict(keep={model_id, *keep})

    def delete(self, model_id: str) -> None:
        """Remove a checkpoint (absent already: nothing happens)."""
        path = self._path(model_id)
        with self._lock:
            self._remove(path)
            self._used.pop(model_id, None)

    def get(self, model_id: str) -> bytes | None:
        """The checkpoint's bytes, or None if absent or unreadable (never raises, except for a bad id)."""
        path = self._path(model_id)
        data, problem = None, None
        try:
            data = self.fs.cat_file(path)
        except FileNotFoundError:
            pass  # never stored, or evicted since
        except Exception as e:  # backends raise their own types (botocore, aiohttp); a miss is always safe
            problem = f"could not be read ({type(e).__name__}: {e})"
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
