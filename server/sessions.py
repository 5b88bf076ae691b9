"""Which sessions still have an open tab, and which model each uses (no Streamlit: the runtime's check is given).

The training pool asks `connected(token)` to stop a run whose followers all closed their tabs (server.jobs),
and the model stores ask `in_use()` so that eviction never drops a model a student has on screen
(server.registry). A token is a session's anonymous id (ui.models.session_token); `is_open` is Streamlit's
`Runtime.is_active_session` in the app, which turns False as soon as a tab's websocket closes. A token whose
session was never seen counts as connected: without a runtime (AppTest, a script) nothing is cancelled.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class Sessions:
    """Thread-safe: session token -> (Streamlit session id, the id of the model it shows)."""

    def __init__(self, is_open: Callable[[str], bool] | None = None) -> None:
        self._is_open = is_open
        self._lock = threading.Lock()
        self._sessions: dict[str, str] = {}  # token -> session id
        self._models: dict[str, str] = {}  # token -> active model id

    def seen(self, token: str, session_id: str | None) -> None:
        """A script run of this token's session (its id, None without a runtime)."""
        if session_id is None:
            return
        with self._lock:
            self._sessions[token] = session_id

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
