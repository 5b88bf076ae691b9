"""Which sessions still have an open tab, and which model each uses (no Streamlit: the runtime's check is given).

The training pool asks `connected(token)` to stop a run whose followers all closed their tabs (server.jobs),
and the model stores ask `in_use()` so that eviction never drops a model a student has on screen
(server.registry). A token is a session's anonymous id (ui.models.session_token); `is_open` is Streamlit's
`Runtime.is_active_session` in the app, which turns False as soon as a tab's websocket closes. A token whose
session was never seen counts as connected: without a runtime (AppTest, a script) nothing is cancelled.

A reload or another tab is a new session, so what one student may keep is bounded per browser: `owner(token)`
is the browser a session ran in (a key derived from the browser's XSRF cookie, which all its tabs and reloads
share; ui.models.browser_key), or the token itself where there is none.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable


def browser_key(cookie: object) -> str | None:
    """An anonymous key for a browser from Streamlit's XSRF cookie (`2|mask|masked token|timestamp`): a salted
    SHA-256 of the token, which the browser keeps across tabs and reloads while the mask changes on every
    page load; never the token itself. None for anything else."""
    parts = cookie.split("|") if isinstance(cookie, str) else []
    if len(parts) < 3 or parts[0] != "2":
        return None
    try:
        mask, masked = bytes.fromhex(parts[1]), bytes.fromhex(parts[2])
    except ValueError:
        return None
    if not mask or not masked:
        return None
    token = bytes(b ^ mask[i % len(mask)] for i, b in enumerate(masked))  # the websocket masking, undone
    return "b-" + hashlib.sha256(b"bilinear-eigen-lab/browser\x00" + token).hexdigest()[:16]


class Sessions:
    """Thread-safe: session token -> (Streamlit session id, the id of the model it shows)."""

    def __init__(self, is_open: Callable[[str], bool] | None = None) -> None:
        self._is_open = is_open
        self._lock = threading.Lock()
        self._sessions: dict[str, str] = {}  # token -> session id
        self._models: dict[str, str] = {}  # token -> active model id
        self._browsers: dict[str, str] = {}  # token -> the browser's key

    def seen(self, token: str, session_id: str | None, browser: str | None = None) -> None:
        """A script run of this token's session (its id, None without a runtime; its browser's key, if known)."""
        with self._lock:
            if session_id is not None:
                self._sessions[token] = session_id
            if browser:
                self._browsers[token] = browser

    def owner(self, token: str) -> str:
        """Who a session's models and runs count against: its browser, else the session itself."""
        with self._lock:
            return self._browsers.get(token, token) if token else token

    def using(self, token: str, model_id: str) -> None:
        """The token's session made `model_id` its active model."""
        with self._lock:
            self._models[token] = model_id

    def connected(self, token: str) -> bool:
        """Whether the token's tab is open (True when unknown)."""
        with self._lock:
            session_id = self._sessions.get(token)
        return session_id is None or self._is_open is None or self._is_open(session_id)

    def in_use(self) -> set[str]:
        """The model ids that open tabs use now; forgets the models of tabs that closed (not their tokens:
        a closed tab stays closed for `connected`, a few dozen bytes each)."""
        with self._lock:
            models = dict(self._models)
        closed = {token for token in models if not self.connected(token)}
        if closed:
            with self._lock:
                for token in closed:
                    self._models.pop(token, None)
        return {model_id for token, model_id in models.items() if token not in closed}
