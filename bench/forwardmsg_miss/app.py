"""The smallest app that loses its connection to "Cached ForwardMsg MISS" (issue 28); see docs/forwardmsg_cache.md.

One fragment holds a slider and one element larger than `global.minCachedMessageSize` (10 kB by default) whose
content depends only on the slider's value, so the same bytes, with the same hash, come back when the value does.
Press the slider's arrow keys quickly, up and back down: each press reruns only the fragment. `reproduce.py` drives
it in chromium and counts the pages that died.
"""

import streamlit as st

st.title("ForwardMsg cache")


@st.fragment
def controls() -> None:
    value = st.slider("Value", 0, 20, 10, key="value")
    # ~12 kB of text that depends only on the value: cacheable, and identical whenever the value comes back
    st.code("\n".join(f"value {value} line {i:03d} " + "x" * 40 for i in range(200)), language=None)


controls()
