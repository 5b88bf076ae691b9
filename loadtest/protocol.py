"""The protocol driver: a student without a browser, Streamlit's own browser protocol over one websocket, for a
class of 30.

`python -m loadtest` drives students from headless chromium tabs, and 30 tabs drawing on the server's own
2 cores measure chromium more than the server. A real class's browsers run on the students' devices, so all
the server sees of a student is what this client does (read from Streamlit 1.67.0's frontend bundle and
checked against the frames a chromium tab sends along the path, bench/protocol_vs_browser.py). That
protocol is Streamlit's private one: the client refuses any other Streamlit (check_streamlit_version),
checked when a ProtocolStudent is made and before `python -m loadtest --protocol-sessions` starts a server.

  opening   GET the page's HTML, /_stcore/health and /_stcore/host-config, then a websocket to
            /_stcore/stream with the subprotocol "streamlit" (no XSRF token: it only guards auth cookies,
            which this app has none of), and a first BackMsg.rerun_script (ClientState) carrying the
            link's query string, the page's URL path as page_name, no page_script_hash, empty widget states
            and the browser's context_info (timezone, locale, URL, colour scheme)
  elements  every ForwardMsg.delta goes into a tree keyed by metadata.delta_path (new_element, add_block;
            a ref_hash is replaced by the cached message it names), each node stamped with its script run
            (the last new_session's metadata.run) and fragment; on script_finished the nodes that run did
            not send again are dropped (for a fragment run, only that fragment's), as the frontend does
  widgets   a widget's state is committed when it first arrives (its proto's default, or its value when
            set_value is on) and whenever the server sets it again (set_value); states of widgets that
            left the tree are dropped. Every rerun carries all current states (WidgetStates), a click adds
            the button's trigger_value; a number input sends int_value or double_value
  pages     a page switch (st.navigation's pages, from the `navigation` message) keeps only the elements
            of the main script (metadata.active_script_hash) and sends their widgets' states with the
            page's page_script_hash and an empty query string, as a sidebar link does; the app then writes
            its query string back (page_info_changed), which later reruns carry
  fragments an auto_rerun message (a fragment with run_every) starts a timer that sends a rerun with
            that fragment_id and is_auto_rerun at its interval, until a full run starts, the page changes
            or a stop_auto_rerun names it
  cache     cacheable messages are kept by hash and their hashes sent in cached_message_hashes, aged per
            script run by NewSession.config.max_cached_message_age, so the server sends refs where a
            browser would get refs
  media     the images an element names (st.image's /media/ URLs) are fetched once each, as a browser's
            <img> does, with gzip accepted (a data: URL is inline: nothing to fetch); the frontend's static
            bundle (JS, CSS, fonts) is not

Errors are what the chromium driver counts in a browser: exception elements and st.error alerts (Alert.ERROR), here
every one that arrives, also one a later run replaces; plus page_not_found and script compilation errors.

What it does not measure: painting. Its times (perf_counter, this process's clock) are those of messages
arriving: a page switch from sending the rerun to the new page's h1 delta, to the first content delta after
it, and to script_finished: the server's side of a page switch, without layout, KaTeX, Vega or images
being drawn. Ping frames are answered by the websockets library, as by a browser; a browser sends none.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any
from urllib.parse import urlsplit

from streamlit.proto.Alert_pb2 import Alert
from streamlit.proto.AppPage_pb2 import AppPage
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ClientState_pb2 import ClientState, ContextInfo
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.NumberInput_pb2 import NumberInput
from streamlit.proto.Slider_pb2 import Slider
from streamlit.proto.WidgetStates_pb2 import WidgetState
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from loadtest.session import (
    CURVES_CAPTION,
    EPOCH_TEXT,
    FINISHED,
    MODEL_IN_URL,
    TITLE,
    WAITING_TEXT,
    Session,
    progress,
    record_switch,
    record_training,
)
from loadtest.usage import Recorder

STREAMLIT_VERSION = "1.67.0"  # the Streamlit whose frontend bundle this client was read from

FINISHED_SUCCESSFULLY = ForwardMsg.FINISHED_SUCCESSFULLY
FINISHED_WITH_COMPILE_ERROR = ForwardMsg.FINISHED_WITH_COMPILE_ERROR
FINISHED_EARLY_FOR_RERUN = ForwardMsg.FINISHED_EARLY_FOR_RERUN
FINISHED_FRAGMENT_RUN_SUCCESSFULLY = ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY
MAIN = 0  # delta_path[0]: the main area's root container (the sidebar's is 1)
# what the chromium driver's tabs report (Intl and matchMedia), sent with every rerun
CONTEXT = {"timezone": "UTC", "timezone_offset": 0, "locale": "en-US", "is_embedded": False, "color_scheme": "light"}
MEDIA_CONNECTIONS = 6  # a browser's parallel HTTP/1.1 connections per host


class ProtocolError(Exception):
    """The server did not do what a browser would have waited for (in time), or closed the connection."""


class StreamlitVersionError(RuntimeError):
    """The installed Streamlit is not the one whose protocol this client speaks."""


def check_streamlit_version() -> str:
    """The installed Streamlit's version (the server runs in this Python too), if it is STREAMLIT_VERSION; else
    StreamlitVersionError: the protocol is private, and a release may change its messages without notice, so
    that a protocol student would click, wait for or count the wrong thing and measure it all the same."""
    installed = metadata.version("streamlit")
    if installed != STREAMLIT_VERSION:
        raise StreamlitVersionError(
            f"the protocol students (loadtest/protocol.py) speak Streamlit {STREAMLIT_VERSION}'s private websocket "
            f"protocol, read from its frontend bundle, but Streamlit {installed} is installed. Install "
            f"streamlit=={STREAMLIT_VERSION} (requirements.txt), or read the protocol again from {installed}'s "
            "frontend, check it with bench/protocol_vs_browser.py and update STREAMLIT_VERSION. Chromium students "
            "(no --protocol-sessions) need no such check."
        )
    return installed


@dataclass
class Node:
    """One element or block of the app as the frontend holds it."""

    path: tuple[int, ...]  # metadata.delta_path
    kind: str  # the element's type ("heading", "button", ...), or "block:<type>"
    proto: Any  # the Element or the Block
    run_id: str  # the script run that sent it
    fragment_id: str
    script_hash: str  # metadata.active_script_hash: the main script's or the page's

    @property
    def widget(self) -> Any:
        """The element's own proto (Button, NumberInput, ...), or the block."""
        return self.proto if self.is_block or not self.kind else getattr(self.proto, self.kind)

    @property
    def is_block(self) -> bool:
        return self.kind.startswith("block:")

    @property
    def text(self) -> str:
        """The text the element shows ("" for a block)."""
        return "" if self.is_block else element_text(self.proto)

    @property
    def widget_id(self) -> str:
        """The widget (or stateful block) id, "" for an element that is none."""
        own = self.widget
        return own.id if "id" in own.DESCRIPTOR.fields_by_name else ""


@dataclass
class Run:
    """A script run as its messages arrived: new_session ... script_finished."""

    run_id: str
    fragment_ids: tuple[str, ...]
    page_script_hash: str
    started: float  # perf_counter when its new_session arrived
    finished: float | None = None
    status: int | None = None


@dataclass
class Switch:
    """A page switch, perf_counter times: the rerun sent, the h1 delta, the first content delta after it,
    script_finished."""

    sent: float
    heading: float | None = None
    content: float | None = None
    finished: float | None = None


@dataclass
class _Cached:
    message: ForwardMsg
    run_count: int
    fragment_id: str


@dataclass
class MessageCache:
    """The frontend's ForwardMsg cache: cacheable messages by hash, aged by the script runs that did not use
    them, so that reruns name them (cached_message_hashes) and the server sends refs instead."""

    messages: dict[str, _Cached] = field(default_factory=dict)
    run_count: int = 0

    def add(self, msg: ForwardMsg) -> None:
        if msg.metadata.cacheable and msg.hash and self.get(msg.hash) is None:
            self.messages[msg.hash] = _Cached(msg, self.run_count, msg.delta.fragment_id)

    def get(self, hash_: str) -> ForwardMsg | None:
        cached = self.messages.get(hash_)
        if cached is None:
            return None
        cached.run_count = self.run_count  # used: young again
        return cached.message

    def age(self, max_age: int, fragment_ids: tuple[str, ...]) -> None:
        """One more script run; a fragment run ages only its own fragment's messages."""
        self.run_count += 1
        for hash_, cached in list(self.messages.items()):
            if fragment_ids and cached.fragment_id not in fragment_ids:
                continue
            if self.run_count - cached.run_count > max_age:
                del self.messages[hash_]


def element_text(element: Any) -> str:
    """The text an element shows (markdown, headings, alerts, progress, ...), "" for other elements."""
    kind = element.WhichOneof("type")
    own = getattr(element, kind) if kind else None
    if kind in ("markdown", "heading", "alert", "text"):
        return own.body
    if kind == "progress":
        return own.text
    if kind == "exception":
        return f"{own.type}: {own.message}"
    if kind == "metric":
        return f"{own.label} {own.body}"
    return ""


def error_text(element: Any) -> str | None:
    """What the chromium driver counts as an error element: an exception box or an st.error alert."""
    kind = element.WhichOneof("type")
    if kind == "exception":
        return element_text(element)
    if kind == "alert" and element.alert.format == Alert.ERROR:
        return element.alert.body
    return None


def committed_state(node: Node) -> WidgetState | None:
    """The state the frontend commits for a widget element it mounts, or is told to set (set_value): its
    value (or default) in the field the server's widget registers (register_widget's value_type). None for
    a widget without one (buttons send a trigger only when clicked) or of a kind this app does not use."""
    own, kind = node.widget, node.kind
    state = WidgetState(id=own.id)
    if kind == "checkbox":  # st.checkbox and st.toggle
        state.bool_value = own.value if own.set_value else own.default
    elif kind == "number_input":
        if not own.set_value and not own.HasField("default"):
            return None  # value=None: empty until typed into
        value = own.value if own.set_value else own.default
        if own.data_type == NumberInput.INT:
            state.int_value = int(value)
        else:
            state.double_value = value
    elif kind == "slider" and own.type == Slider.SELECT_SLIDER:  # formatted options, default as indices
        state.string_array_value.data[:] = (
            own.raw_value if own.set_value else [own.options[int(i)] for i in own.default]
        )
    elif kind == "slider":
        state.double_array_value.data[:] = own.value if own.set_value else own.default
    elif kind in ("radio", "selectbox"):
        if own.set_value and own.HasField("raw_value"):
            state.string_value = own.raw_value
        elif not own.set_value and own.HasField("default"):
            state.string_value = own.options[own.default]
        else:
            return None
    elif kind == "button_group":  # st.segmented_control, st.pills
        state.string_array_value.data[:] = (
            own.raw_values if own.set_value else [own.options[i].content for i in own.default]
        )
    elif kind in ("text_input", "text_area"):
        if not own.set_value and not own.HasField("default"):
            return None
        state.string_value = own.value if own.set_value else own.default
    elif kind == "file_uploader":
        state.file_uploader_state_value.SetInParent()
    else:
        return None
    return state


async def http_get(url: str, timeout: float) -> tuple[int, int]:
    """GET `url` as a browser would (gzip accepted, so the server compresses as it would for one):
    (status, bytes received). Plain asyncio streams: one connection per request."""
    parts = urlsplit(url)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query

    async def get() -> tuple[int, int]:
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            writer.write(
                f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nAccept-Encoding: gzip, deflate\r\n"
                "Connection: close\r\n\r\n".encode()
            )
            await writer.drain()
            data = await reader.read()
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        status = data.split(b" ", 2)[1] if data.startswith(b"HTTP/") else b"0"
        return int(status), len(data)

    return await asyncio.wait_for(get(), timeout)


class ProtocolStudent:
    """One browser tab's worth of Streamlit protocol, for one student (see the module's docstring).

    `open()` loads the app at a path and query string and waits for the first run; `switch_page`,
    `click` and `set_number` act as a student's clicks and key presses do, each waiting for the full script
    run it caused; `watch` sees every element as it arrives (timestamps of their own), `texts` and
    `errors` read what the app shows. One asyncio task reads the websocket; the fragments' timers are tasks
    of their own."""

    def __init__(self, url: str, timeout: float = 60.0) -> None:
        check_streamlit_version()
        parts = urlsplit(url)
        self.base = f"{parts.scheme}://{parts.netloc}"
        self.timeout = timeout
        self.tree: dict[tuple[int, ...], Node] = {}
        self.widgets: dict[str, WidgetState] = {}  # id -> state, in the order the widgets arrived
        self.block_values: dict[str, bool] = {}  # a stateful expander's / popover's last `expanded` / `open`
        self.pages: list[AppPage] = []
        self.main_script_hash = ""
        self.page_script_hash = ""  # the page of the last full run
        self.url_path = ""  # the address bar's path: the current page's url_pathname
        self.query = ""  # the address bar's query string
        self.runs: list[Run] = []
        self.errors: list[tuple[str, str]] = []  # (page, text) of every error element or message that arrived
        self.problems: list[str] = []  # protocol trouble: a missing cached message, a media fetch that failed
        self.media: dict[str, int] = {}  # fetched URL -> HTTP status
        self.closed: str | None = None  # why the websocket closed
        self._cache = MessageCache()
        self._max_age = 2
        self._new_session_seen = False
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task | None = None
        self._timers: dict[str, tuple[float, asyncio.Task]] = {}  # fragment id -> (interval, task)
        self._tasks: set[asyncio.Task] = set()  # media fetches
        self._media_slots = asyncio.Semaphore(MEDIA_CONNECTIONS)
        self._watchers: list[Callable[[Node, float], None]] = []
        self._changed = asyncio.Condition()

    # ------------------------------------------------------------------ connection

    async def open(self, path: str = "", query: str = "") -> float:
        """Load the app at `path` (a page's URL path, "" for the default page) with `query` (a link's query
        string), as a browser's first visit does; returns the seconds to the first run's script_finished."""
        start = time.perf_counter()
        location = f"{self.base}/{path}" + (f"?{query}" if query else "")
        status, _ = await http_get(location, self.timeout)
        if status != 200:
            raise ProtocolError(f"GET {location}: HTTP {status}")
        await asyncio.gather(
            http_get(f"{self.base}/_stcore/health", self.timeout),
            http_get(f"{self.base}/_stcore/host-config", self.timeout),
        )
        self._ws = await connect(
            f"{self.base.replace('http', 'ws', 1)}/_stcore/stream",
            subprotocols=["streamlit"],
            origin=self.base,
            compression=None,  # the server does not enable it (server.enableWebsocketCompression)
            max_size=None,  # a page's messages can be large (Vega specs)
            ping_interval=None,  # a browser sends no pings (it answers the server's)
            proxy=None,
            open_timeout=self.timeout,
        )
        self._reader = asyncio.create_task(self._read())
        self.url_path, self.query = path, query
        sent = await self._send_rerun(page_name=path, widgets=[])
        await self.wait_run(sent)
        return time.perf_counter() - start

    async def close(self) -> None:
        for _, task in self._timers.values():
            task.cancel()
        for task in self._tasks:
            task.cancel()
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await self._reader

    async def _read(self) -> None:
        try:
            async for raw in self._ws:
                now = time.perf_counter()
                msg = ForwardMsg()
                msg.ParseFromString(raw)
                self._handle(msg, now)
                async with self._changed:
                    self._changed.notify_all()
        except ConnectionClosed as closed:
            self.closed = f"websocket closed: {closed}"
        except Exception as error:  # a message this client cannot handle: every wait fails with it
            self.closed = f"client failed on a message: {type(error).__name__}: {error}"
        finally:
            self.closed = self.closed or "websocket closed"
            async with self._changed:
                self._changed.notify_all()

    async def until(self, condition: Callable[[], Any], what: str, timeout: float | None = None) -> Any:
        """Wait until `condition()` is truthy (checked after every message); returns its value."""
        async with self._changed:
            try:
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: condition() or self.closed), timeout or self.timeout
                )
            except TimeoutError:
                raise ProtocolError(f"no {what} within {timeout or self.timeout:.0f} s") from None
        value = condition()
        if not value:
            raise ProtocolError(f"{self.closed} while waiting for {what}")
        return value

    # ------------------------------------------------------------------ what the server sends

    def _handle(self, msg: ForwardMsg, now: float) -> None:
        kind = msg.WhichOneof("type")
        if kind == "ref_hash":
            cached = self._cache.get(msg.ref_hash)
            if cached is None:
                self.problems.append(f"cached message {msg.ref_hash} missing")
                return
            resolved = ForwardMsg()
            resolved.CopyFrom(cached)
            resolved.metadata.CopyFrom(msg.metadata)
            msg, kind = resolved, resolved.WhichOneof("type")
        else:
            self._cache.add(msg)
        if kind == "new_session":
            self._new_session(msg, now)
        elif kind == "delta":
            self._delta(msg, now)
        elif kind == "script_finished":
            self._script_finished(msg, now)
        elif kind == "navigation":
            self.pages = list(msg.navigation.app_pages)
            # the page st.navigation ran: a run opened by URL path starts with the main script's hash, and the
            # frontend's later reruns (a fragment's st.rerun too) name the page, as here
            self.page_script_hash = msg.navigation.page_script_hash
            page = self.page(hash_=msg.navigation.page_script_hash)
            self.url_path = "" if page is None or page.is_default else page.url_pathname
        elif kind == "page_info_changed":
            self.query = msg.page_info_changed.query_string
        elif kind == "auto_rerun":
            self._schedule(msg.auto_rerun.fragment_id, msg.auto_rerun.interval)
        elif kind == "stop_auto_rerun":
            for fragment_id in msg.stop_auto_rerun.fragment_ids:
                self._unschedule(fragment_id)
        elif kind == "page_not_found":
            self.errors.append((msg.page_not_found.page_name, "page not found"))
        elif kind == "session_event" and msg.session_event.HasField("script_compilation_exception"):
            error = msg.session_event.script_compilation_exception
            self.errors.append((self.page_name(), f"{error.type}: {error.message}"))

    def _new_session(self, msg: ForwardMsg, now: float) -> None:
        new = msg.new_session
        run = Run(msg.metadata.run.script_run_id, tuple(msg.metadata.run.fragment_ids), new.page_script_hash, now)
        self.runs = [*self.runs[-49:], run]
        self._new_session_seen = True
        self.main_script_hash = new.main_script_hash
        self._max_age = new.config.max_cached_message_age
        if not run.fragment_ids:  # a full run: the frontend drops every fragment timer
            self.page_script_hash = new.page_script_hash
            for fragment_id in list(self._timers):
                self._unschedule(fragment_id)

    def _delta(self, msg: ForwardMsg, now: float) -> None:
        delta, path = msg.delta, tuple(msg.metadata.delta_path)
        which = delta.WhichOneof("type")
        if which not in ("new_element", "add_block"):
            return  # transient elements (spinners)
        proto = delta.new_element if which == "new_element" else delta.add_block
        kind = proto.WhichOneof("type") or ""
        kind = kind if which == "new_element" else f"block:{kind}"
        run = self.runs[-1] if self.runs else Run("", (), "", now)
        node = Node(path, kind, proto, run.run_id, delta.fragment_id, msg.metadata.active_script_hash)
        old = self.tree.get(path)
        if old is not None and old.kind != kind and old.kind.startswith("block:"):  # its children go with it
            for key in [key for key in self.tree if key[: len(path)] == path and key != path]:
                del self.tree[key]
        self.tree[path] = node
        if which == "new_element":
            self._element(node)
        else:
            self._block(node)
        for watcher in list(self._watchers):
            watcher(node, now)

    def _element(self, node: Node) -> None:
        error = error_text(node.proto)
        if error is not None:
            self.errors.append((self.page_name(), error))
        widget_id = node.widget_id
        if widget_id and (widget_id not in self.widgets or getattr(node.widget, "set_value", False) is True):
            state = committed_state(node)
            if state is not None:
                self.widgets[widget_id] = state
        if node.kind == "imgs":
            for image in node.proto.imgs.imgs:
                if image.url and not image.url.startswith("data:") and image.url not in self.media:  # inline: no GET
                    self.media[image.url] = 0
                    task = asyncio.create_task(self._fetch(image.url))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)

    def _block(self, node: Node) -> None:
        """A stateful expander or popover: the frontend commits its state only when the server changes it
        (an effect on `expanded` / `open` that skips the first render)."""
        block, kind = node.proto, node.kind
        if not block.id or kind not in ("block:expandable", "block:popover"):
            return
        value = block.expandable.expanded if kind == "block:expandable" else block.popover.open
        if block.id in self.block_values and self.block_values[block.id] != value:
            self.widgets[block.id] = WidgetState(id=block.id, bool_value=value)
        self.block_values[block.id] = value

    def _script_finished(self, msg: ForwardMsg, now: float) -> None:
        status, identity = msg.script_finished, msg.metadata.run
        run = next((r for r in reversed(self.runs) if r.run_id == identity.script_run_id), None)
        if run is None:  # no run identity: the last one
            run = self.runs[-1] if self.runs else None
        if run is not None:
            run.finished, run.status = now, status
        if status == FINISHED_WITH_COMPILE_ERROR:
            self.errors.append((self.page_name(), "script compile error"))
        if not msg.metadata.HasField("run"):
            return
        fragment_ids = tuple(identity.fragment_ids)
        full = self._last_full()
        if status in (FINISHED_SUCCESSFULLY, FINISHED_FRAGMENT_RUN_SUCCESSFULLY) and (
            fragment_ids or (full is not None and full.run_id == identity.script_run_id)
        ):
            stale = [
                path
                for path, node in self.tree.items()
                if node.run_id != identity.script_run_id and (not fragment_ids or node.fragment_id in fragment_ids)
            ]
            for path in stale:
                del self.tree[path]
            active = {node.widget_id for node in self.tree.values()} | {
                node.proto.id for node in self.tree.values() if node.is_block
            }
            self.widgets = {key: state for key, state in self.widgets.items() if key in active}
        if status != FINISHED_EARLY_FOR_RERUN and self._new_session_seen:
            self._cache.age(self._max_age, fragment_ids)

    def _last_full(self) -> Run | None:
        return next((run for run in reversed(self.runs) if not run.fragment_ids), None)

    # ------------------------------------------------------------------ fragments and media

    def _schedule(self, fragment_id: str, interval: float) -> None:
        if not fragment_id:
            return
        current = self._timers.get(fragment_id)
        if current is not None and current[0] == interval:
            return
        self._unschedule(fragment_id)
        self._timers[fragment_id] = (interval, asyncio.create_task(self._auto_rerun(fragment_id, interval)))

    def _unschedule(self, fragment_id: str) -> None:
        timer = self._timers.pop(fragment_id, None)
        if timer is not None:
            timer[1].cancel()

    async def _auto_rerun(self, fragment_id: str, interval: float) -> None:
        """setInterval: a rerun of the fragment every `interval` s, whatever runs meanwhile."""
        loop = asyncio.get_running_loop()
        due = loop.time() + interval
        while not self.closed:
            await asyncio.sleep(max(0.0, due - loop.time()))
            due += interval
            with contextlib.suppress(ConnectionClosed):
                await self._send_rerun(fragment_id=fragment_id, auto=True)

    async def _fetch(self, url: str) -> None:
        async with self._media_slots:
            try:
                self.media[url], _ = await http_get(url if "://" in url else self.base + url, self.timeout)
            except (OSError, TimeoutError, ValueError) as error:
                self.media[url] = -1
                self.problems.append(f"GET {url}: {type(error).__name__} {error}")
                return
        if self.media[url] != 200:
            self.problems.append(f"GET {url}: HTTP {self.media[url]}")

    # ------------------------------------------------------------------ what a student does

    async def _send_rerun(
        self,
        *,
        page_script_hash: str | None = None,
        page_name: str = "",
        widgets: list[WidgetState] | None = None,
        fragment_id: str = "",
        auto: bool = False,
    ) -> float:
        """Send a BackMsg.rerun_script as the frontend's sendRerunBackMsg does; returns when it was sent."""
        state = ClientState(
            query_string=self.query,
            page_script_hash=self.page_script_hash if page_script_hash is None else page_script_hash,
            page_name=page_name,
            fragment_id=fragment_id,
            is_auto_rerun=auto,
            cached_message_hashes=list(self._cache.messages),
            context_info=ContextInfo(url=f"{self.base}/{self.url_path}", **CONTEXT),
        )
        state.widget_states.SetInParent()
        state.widget_states.widgets.extend(self.widgets.values() if widgets is None else widgets)
        self._new_session_seen = False
        sent = time.perf_counter()
        await self._ws.send(BackMsg(rerun_script=state).SerializeToString())
        return sent

    def last_run_after(self, sent: float, page_script_hash: str | None = None) -> Run | None:
        """The first full run that started after `sent` (on that page, if given) and finished successfully."""
        return next(
            (
                run
                for run in self.runs
                if run.started >= sent
                and not run.fragment_ids
                and run.status == FINISHED_SUCCESSFULLY
                and (page_script_hash is None or run.page_script_hash == page_script_hash)
            ),
            None,
        )

    async def wait_run(self, sent: float, page_script_hash: str | None = None) -> Run:
        """Wait for the full script run a rerun sent at `sent` caused (one interrupted by a later rerun does not
        count: the run after it does)."""
        return await self.until(lambda: self.last_run_after(sent, page_script_hash), "script run finished")

    async def wait_idle(self) -> None:
        """Until no script run is in progress (as the frontend's status, after the last run's script_finished)."""
        await self.until(lambda: self.runs and self.runs[-1].status is not None, "idle app")

    def page(self, name: str | None = None, hash_: str | None = None) -> AppPage | None:
        """A page of st.navigation by (part of) its title, as a sidebar link's text, or by its hash."""
        return next(
            (p for p in self.pages if (name is not None and name in p.page_name) or p.page_script_hash == hash_), None
        )

    def page_name(self) -> str:
        page = self.page(hash_=self.runs[-1].page_script_hash if self.runs else self.page_script_hash)
        return page.page_name if page is not None else self.url_path or "?"

    async def switch_page(self, link: str, heading: str) -> Switch:
        """Click the sidebar link `link` (part of a page's title); time the rerun to the new page's h1
        containing `heading`, the first content element after it, and the run's script_finished."""
        page = self.page(name=link)
        if page is None:
            raise ProtocolError(f"no page {link!r} among {[p.page_name for p in self.pages]}")
        for fragment_id in list(self._timers):
            self._unschedule(fragment_id)
        self.tree = {path: node for path, node in self.tree.items() if node.script_hash == self.main_script_hash}
        active = {node.widget_id for node in self.tree.values()}
        switch = Switch(sent=0.0)
        h1: list[tuple[int, ...]] = []

        def watch(node: Node, now: float) -> None:
            if node.path[0] != MAIN or self.runs[-1].page_script_hash != page.page_script_hash:
                return
            if not h1:
                if node.kind == "heading" and node.widget.tag == "h1" and heading in node.widget.body:
                    h1.append(node.path)
                    switch.heading = now
            elif switch.content is None and node.path > h1[0] and node.text.strip():
                switch.content = now

        self._watchers.append(watch)
        try:
            self.query = ""  # a sidebar link keeps no query parameter (but those bound to widgets)
            switch.sent = await self._send_rerun(
                page_script_hash=page.page_script_hash,
                widgets=[state for key, state in self.widgets.items() if key in active],
            )
            run = await self.wait_run(switch.sent, page.page_script_hash)
        finally:
            self._watchers.remove(watch)
        if switch.heading is None:
            raise ProtocolError(f"page {page.page_name!r} showed no h1 containing {heading!r}")
        switch.finished = run.finished
        return switch

    def find(self, key: str, kind: str | None = None) -> Node | None:
        """The widget whose key is `key` (its id ends with it), of element type `kind` if given."""
        return next(
            (
                node
                for node in self.tree.values()
                if node.widget_id.endswith(f"-{key}") and (kind is None or node.kind == kind)
            ),
            None,
        )

    async def click(self, key: str, wait: bool = True) -> float:
        """Press the button with key `key`: every widget's state and the button's trigger; waits for the run
        it causes unless `wait` is false. Returns when the rerun was sent."""
        node = self.find(key)
        if node is None or node.kind not in ("button", "download_button"):
            raise ProtocolError(f"no button {key!r} on page {self.page_name()!r}")
        if node.widget.disabled:
            raise ProtocolError(f"button {key!r} is disabled")
        sent = await self._send_rerun(
            widgets=[*self.widgets.values(), WidgetState(id=node.widget_id, trigger_value=True)]
        )
        if wait:
            await self.wait_run(sent)
        return sent

    async def set_number(self, key: str, value: float) -> float | None:
        """Type `value` into the number input with key `key` and press Enter; waits for the run. None (and no
        rerun) when it already shows that value, as the frontend sends nothing then."""
        node = self.find(key, "number_input")
        if node is None:
            raise ProtocolError(f"no number input {key!r} on page {self.page_name()!r}")
        state = self.widgets[node.widget_id]
        integer = node.widget.data_type == NumberInput.INT
        if (state.int_value if integer else state.double_value) == value and state.WhichOneof("value"):
            return None
        new = WidgetState(id=node.widget_id)
        if integer:
            new.int_value = int(value)
        else:
            new.double_value = float(value)
        self.widgets[node.widget_id] = new
        sent = await self._send_rerun()
        await self.wait_run(sent)
        return sent

    # ------------------------------------------------------------------ what the student sees

    def watch(self, callback: Callable[[Node, float], None]) -> Callable[[], None]:
        """Call `callback(node, perf_counter)` for every element or block as it arrives; returns the undo."""
        self._watchers.append(callback)
        return lambda: self._watchers.remove(callback)

    def nodes(self, container: int | None = MAIN) -> list[Node]:
        """The elements now shown, in page order, in one root container (None: all)."""
        return [self.tree[path] for path in sorted(self.tree) if container is None or path[0] == container]

    def texts(self, container: int | None = MAIN) -> list[str]:
        return [text for node in self.nodes(container) if (text := node.text)]

    def search(self, pattern: re.Pattern[str], container: int | None = MAIN) -> re.Match[str] | None:
        """The first match of `pattern` in the texts now shown."""
        return next((m for text in self.texts(container) if (m := pattern.search(text))), None)

    def error_elements(self) -> list[str]:
        """Error elements now shown (anywhere), as a browser's DOM would hold them."""
        return [text for node in self.nodes(None) if not node.is_block and (text := error_text(node.proto))]

    def images(self) -> int:
        """Images now shown in the main area (each of an st.image list counts)."""
        return sum(len(node.proto.imgs.imgs) for node in self.nodes() if node.kind == "imgs")


class ProtocolTab:
    """A protocol student (ProtocolStudent above) taking the same steps with the same records: the
    server's side of a student whose browser runs on a device of its own. Nothing is painted: a page switch's
    `shown` is None; its `heading`, `content` and `run_done` are the h1 delta's arrival, the first content
    delta's after it and script_finished's, in seconds after the rerun was sent; a training's times run from
    the Train click's rerun to the deltas carrying the queue message, the first epoch and "Training finished"."""

    kind = "protocol"

    def __init__(self, client: ProtocolStudent) -> None:
        self.client = client
        self.errors_read = 0  # client.errors already counted

    @classmethod
    async def open(cls, url: str, timeout: float) -> ProtocolTab:
        """Load the app (the HTML, the websocket, the first run) and check that the Home page is rendered."""
        client = ProtocolStudent(url, timeout)
        try:
            await client.open()
            if not any(node.kind == "heading" and TITLE in node.text for node in client.nodes()):
                raise ProtocolError(f"the Home page showed no heading {TITLE!r}")
        except BaseException:
            await client.close()
            raise
        return cls(client)

    async def switch_to(
        self, session: Session, recorder: Recorder, step: str, link: str, heading: str, timeout: float
    ) -> float:
        start = recorder.now()
        switch = await self.client.switch_page(link, heading)
        end = recorder.now()

        def after(t: float | None) -> float | None:
            return None if t is None else t - switch.sent

        progress(session, f"{step}: h1 delta {after(switch.heading):.2f} s, finished {after(switch.finished):.2f} s")
        return record_switch(
            session, step, start, end, after(switch.heading), after(switch.content), None, after(switch.finished)
        )

    async def check_errors(self, session: Session, where: str) -> None:
        """The error elements that arrived since the last check, each text once (a fragment may resend one)."""
        new = self.client.errors[self.errors_read :]
        self.errors_read += len(new)
        session.errors += [f"{where}: {text}" for text in dict.fromkeys(text for _, text in new)]
        session.problems += self.client.problems[len(session.problems) :]

    async def set_up_training(
        self, session: Session, recorder: Recorder, epochs: int, timeout: float, step: str, seed: int | None = None
    ) -> None:
        """As a browser does, but opening "Advanced and classroom options", a plain expander, sends nothing."""
        await self.switch_to(session, recorder, step, "Train", "Train", timeout)
        await self.client.click("quick_preset")
        await self.client.set_number("epochs", epochs)
        await self.client.set_number("seed", session.seed if seed is None else seed)

    async def train_and_wait(self, session: Session, recorder: Recorder, timeout: float, what: str = "") -> dict:
        """Press Train and wait for the "Training finished" (or load) message's delta, watching every delta of
        the main area for the queue message and the first epoch's progress on the way."""
        seen: dict[str, float | None] = dict.fromkeys(("finished", "epoch_first", "waiting_last"))
        message: dict[str, str | float | None] = {"waiting": None, "finished": None, "clock": None}

        def watch(node: Node, now: float) -> None:
            if node.path[0] != MAIN or message["finished"] is not None:
                return
            text = node.text
            waiting = WAITING_TEXT.search(text)
            if waiting:
                message["waiting"] = message["waiting"] or waiting.group(0)
                seen["waiting_last"] = now
            if seen["epoch_first"] is None and EPOCH_TEXT.search(text):
                seen["epoch_first"] = now
            if FINISHED.search(text):
                seen["finished"], message["finished"], message["clock"] = now, text, time.time()

        stop_watching = self.client.watch(watch)
        try:
            clicked = recorder.now()
            sent = await self.client.click("train_button", wait=False)
            await self.client.until(lambda: message["finished"], '"Training finished"', timeout)
        finally:
            stop_watching()
        finished = recorder.now()
        await self.client.wait_idle()
        model = MODEL_IN_URL.search(f"?{self.client.query}")
        caption = self.client.search(CURVES_CAPTION)
        return record_training(
            session,
            what,
            "trained" if "Training finished" in message["finished"] else "reused",
            clicked,
            finished,
            {key: None if value is None else value - sent for key, value in seen.items()},
            message["clock"],
            message["waiting"],
            model.group(1) if model else None,
            int(caption.group(2)) if caption else None,
        )

    async def images(self) -> int:
        return self.client.images()

    async def close(self) -> None:
        await self.client.close()
