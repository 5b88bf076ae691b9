"""Thin Streamlit helpers for the pages: shared caches (resources), per-student state (state),
the active model (models), the URL as shared state (links), the Explain page's inputs (inputs),
derived tables (analysis) and the pieces every page repeats (widgets). The science stays in
`core`, which never imports streamlit; every `st.cache_*` lives here.
"""
