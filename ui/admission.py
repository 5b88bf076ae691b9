"""The server's page turns (server.turns.PageTurns), made once per server process.

Here, not in ui.resources: the entry file takes its turn before any page, so it must not wait for
ui.resources' imports, altair among them.
"""

from __future__ import annotations

import logging
import os

import streamlit as st

from server.turns import PageTurns

PAGE_SLOTS = 2
log = logging.getLogger("bilinear_eigen_lab")


@st.cache_resource(show_spinner=False)
def page_turns() -> PageTurns:
    """The server's page turns: BILINEAR_LAB_PAGE_SLOTS scripts at once;
    PAGE_SLOTS by default and on a value that is not a whole number >= 1 (logged)."""
    value = os.environ.get("BILINEAR_LAB_PAGE_SLOTS", str(PAGE_SLOTS))
    try:
        return PageTurns(int(value))
    except ValueError:
        log.error("BILINEAR_LAB_PAGE_SLOTS=%r is not a whole number >= 1; using %d", value, PAGE_SLOTS)
        return PageTurns(PAGE_SLOTS)
