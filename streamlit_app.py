"""Bilinear Eigen Lab: reproduce Figure 6 of Pearce et al. (ICLR 2025, section 4.3) live, in class.

This entry file only routes: it configures the page, initialises the student's state (from the
URL too, see ui/links.py), runs the selected page and adds the sidebar's model section. The pages
live in app_pages/, not pages/: Streamlit treats a pages/ folder as a legacy multipage app until a
session first calls st.navigation (and AppTest on every run), which would run a page without
this file.
"""

import logging
import os

import streamlit as st
import torch

from core.text import literal
from server import memory
from server.room_profile import PROFILE as room_profile
from ui import admission, lesson, links, passcode, recovery, state, widgets

log = logging.getLogger("bilinear_eigen_lab")


def shield(part: str, function) -> None:
    """The last line of defence: a message for the student, the traceback for the log."""
    try:
        function()
    except lesson.Pending:  # lesson mode: the page waits for the student's prediction, the rest still draws
        pass
    except state.Unavailable as missing:  # no model yet, or no MNIST on this server: say what and how to fix it
        log.warning("%s: %s", part, missing)
        st.warning(str(missing), icon=":material/cloud_off:")
    except Exception as error:
        log.exception("%s failed", part)
        st.error(
            f"Something went wrong on this page ({type(error).__name__}: {literal(str(error), 120)}). "
            "Your settings and model are kept; change a setting or reload the page to try again.",
            icon=":material/error:",
        )


# Process-wide start-up: set once per server (later runs find it set). One intra-op thread per
# computation: on a shared 2-core server, concurrent trainings (or any other busy process) make
# torch's default 2 threads wait for each other: the quick preset's training took up to 27 s instead
# of 5.0 s (server/jobs.py, whose ThreadChoice gives a lone training both cores where they measure faster).
THREADS = int(os.environ.get("BILINEAR_LAB_TORCH_THREADS", "1"))
if torch.get_num_threads() != THREADS:
    torch.set_num_threads(THREADS)
memory.tune_once()  # glibc: 2 malloc arenas, blocks of 4 MB or more unmapped when freed (issue 25's flood)
PAGE_PATIENCE = 5.0  # seconds a page waits for its turn (ui/admission.py) before it runs anyway
TURN_TICKET = "_page_turn_ticket"  # the session's place in line, kept until one of its runs ends
# The icon is a file of the repository (MNIST image #6, the paper's target, in the figures' blue): an
# emoji icon makes the browser fetch an image from a CDN, which fails offline.
ICON = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets", "favicon.png")
st.set_page_config(page_title="Bilinear Eigen Lab", page_icon=ICON, layout="wide")
passcode.warn_if_weak()  # once per server, in its log: a short teacher passcode is guessable


def run() -> None:
    """One run of the app for one session: its state, the navigation, the page and the sidebar."""
    state.init()
    if state.JOB_KEY in st.session_state:  # a training this session follows may have ended meanwhile
        from ui import models  # altair and pandas load with it: a cold server's first page shows its text first

        models.settle()
    shield("reading the link", links.restore)  # once per session: a link or a reload brings its settings and model
    widgets.styles()
    page = st.navigation(
        {
            "Bilinear Eigen Lab": [st.Page("app_pages/home.py", title="Home", icon=":material/home:", default=True)],
            "The experiment": [
                st.Page("app_pages/label.py", title="1 · Label", icon=":material/label:"),
                st.Page("app_pages/train.py", title="2 · Train", icon=":material/model_training:"),
                st.Page("app_pages/tensor.py", title="3 · Tensor", icon=":material/grid_on:"),
                st.Page("app_pages/eigenvectors.py", title="4 · Eigenvectors", icon=":material/insights:"),
            ],
            "Beyond the paper": [
                st.Page("app_pages/explain.py", title="5 · Explain", icon=":material/manage_search:"),
                st.Page("app_pages/truncation.py", title="6 · Truncation", icon=":material/content_cut:"),
            ],
            "The class": [st.Page("app_pages/class_board.py", title="7 · Class board", icon=":material/groups:")],
        }
    )
    room_profile.page(page.url_path or "home")  # BILINEAR_LAB_PROFILE_ROOM: the database's share, per page
    shield("writing the link", links.write)  # the URL follows every setting, also across page switches
    widgets.projector_toggle()
    lesson.sidebar()
    notices = st.container()  # above the page, filled after it: the store's and the room's outages
    shield(f"page {page.title}", page.run)
    shield("the notices", lambda: widgets.outages(notices))
    # after the page: its text is on screen before torch loads; Train draws the run's progress itself
    shield("the sidebar", lambda: widgets.model_sidebar(badge=page.url_path != "train"))
    shield("writing the link", links.write)  # the page may have changed the model
    recovery.connection_guard()  # a page whose connection dies reloads itself at this address (issue 28)


# The whole run takes turns with other sessions' runs (ui/admission.py): a class opening a page at once sees it
# one after another instead of all together at the end. The session's ticket outlives a run that a click
# interrupts (Streamlit raises past this block), so the next run keeps its place in line.
turns = admission.page_turns()
ticket = st.session_state.setdefault(TURN_TICKET, turns.ticket())
with turns.turn(PAGE_PATIENCE, ticket), room_profile.script_run():  # the profile (off by default) times the run
    run()
del st.session_state[TURN_TICKET]
