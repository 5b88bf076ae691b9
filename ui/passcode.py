"""The teacher's passcode: where the server reads it, and the start-up warning when it is short (light: no torch).

st.secrets["teacher_passcode"] (a root-level key) or the environment variable BILINEAR_LAB_TEACHER_PASSCODE;
neither set: no teacher controls. ui.board compares it (server.classroom.passcode_matches) behind the
server-wide limiter (server.passcode.GuessLimiter). The entry file calls `warn_if_weak` on every run: the
server's log says once, at start-up (and again if the passcode changes), that a short passcode is guessable.
"""

from __future__ import annotations

import logging
import os

import streamlit as st

from server.classroom import passcode_digest
from server.passcode import weakness

log = logging.getLogger("bilinear_eigen_lab")
PASSCODE_SECRET = "teacher_passcode"  # a root-level key of the app's secrets
PASSCODE_ENV = "BILINEAR_LAB_TEACHER_PASSCODE"


def teacher_passcode() -> str | None:
    """The teacher's passcode: st.secrets["teacher_passcode"], else $BILINEAR_LAB_TEACHER_PASSCODE; None if neither."""
    try:
        value = st.secrets.get(PASSCODE_SECRET)
    except (FileNotFoundError, KeyError):  # no secrets file at all (StreamlitSecretNotFoundError)
        value = None
    if value is None or value == "":
        value = os.environ.get(PASSCODE_ENV)
    if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
        return None
    return str(value)


@st.cache_resource(max_entries=4, show_spinner=False)
def _warned(digest: str, problem: str) -> bool:
    """Log a weak passcode's problem once per server and passcode (keyed by its digest, never the passcode)."""
    log.warning("%s", problem)
    return True


def warn_if_weak() -> str | None:
    """The current passcode's weakness (logged once per server), or None."""
    passcode = teacher_passcode()
    problem = weakness(passcode) if passcode is not None else None
    if problem is not None:
        _warned(passcode_digest(passcode), problem)
    return problem
