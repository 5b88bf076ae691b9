"""Bilinear Eigen Lab: reproduce Figure 6 of Pearce et al. (ICLR 2025, section 4.3) live, in class.

This entry file only routes: it configures the page, initialises the student's state and runs the
selected page from pages/ (the menu is in ui/navigation.py).
"""

import logging

import streamlit as st

from ui import navigation, state

st.set_page_config(page_title="Bilinear Eigen Lab", page_icon=":material/biotech:", layout="wide")
state.init()
page = navigation.route()
try:
    page.run()
except Exception as error:  # the last line of defence: a message for the student, the traceback for the log
    logging.getLogger("bilinear_eigen_lab").exception("page %s failed", page.title)
    st.error(f"Something went wrong on this page ({type(error).__name__}: {error}). Your settings and model "
             "are kept; change a setting or reload the page to try again.", icon=":material/error:")
