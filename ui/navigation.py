"""The app's pages, and a guard for deep links on a freshly started server.

Streamlit treats a `pages/` folder as a legacy multipage app until some session first runs
st.navigation; until then a link straight to /label runs pages/label.py *without* the entry file
(no state, no navigation). `ensure_routed` notices that and reruns through the entry file.
"""

from __future__ import annotations

import streamlit as st

ROUTED = "_routed_by_entry"  # set by the entry file on every run, consumed by the page


def sections() -> dict[str, list[st.Page]]:
    """The navigation menu: Home, then the four steps of the experiment."""
    return {
        "Bilinear Eigen Lab": [st.Page("pages/home.py", title="Home", icon=":material/home:", default=True)],
        "The experiment": [
            st.Page("pages/label.py", title="1 · Label", icon=":material/label:"),
            st.Page("pages/train.py", title="2 · Train", icon=":material/model_training:"),
            st.Page("pages/tensor.py", title="3 · Tensor", icon=":material/grid_on:"),
            st.Page("pages/eigenvectors.py", title="4 · Eigenvectors", icon=":material/insights:"),
        ],
    }


def route() -> st.Page:
    """Register the pages and return the one to run (called by the entry file)."""
    page = st.navigation(sections())
    st.session_state[ROUTED] = True
    return page


def ensure_routed() -> None:
    """Called first by every page: rerun through the entry file if it was bypassed."""
    if not st.session_state.pop(ROUTED, False):
        st.navigation(sections(), position="hidden")  # switches the server to st.navigation for good
        st.rerun()  # same page, now through the entry file
