"""app.py with the lab's connection guard (ui/recovery.py): a page that dies of the MISS comes back by itself."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository, for ui.recovery

import streamlit as st

from ui.recovery import connection_guard

st.title("ForwardMsg cache")


@st.fragment
def controls() -> None:
    value = st.slider("Value", 0, 20, 10, key="value")
    st.code("\n".join(f"value {value} line {i:03d} " + "x" * 40 for i in range(200)), language=None)


controls()
connection_guard()
