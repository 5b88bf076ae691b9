"""Streamlit code, and only Streamlit code: what the pages share.

`resources` (st.cache_resource wrappers around the server's shared objects, keyed by model id), `state`
(a student's settings and messages in st.session_state), `models` (the student's active model and the
training run it follows), `links` (the URL as shared state), `widgets` (what every page repeats), `inputs`
(the Explain page's input picker), `board` (the class board's views and teacher controls), `lesson`
(lesson mode's questions) and `admission` (the server's page turns). The science is in `core`, what one
server shares among sessions in `server`, the figures in `render`; none of those imports streamlit.
"""
