"""Thin Streamlit helpers for the pages: shared caches (resources), per-student state (state),
and the pieces every page repeats (widgets). The science stays in `core`, which never imports
streamlit; every `st.cache_*` lives here.
"""
