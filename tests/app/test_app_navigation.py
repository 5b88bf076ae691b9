"""Every page works as the first page of a session (a shared link, a reload) and after any other page.

A session that started on Eigenvectors and moved to Explain once lost the direction both pages
share ("KeyError: None"), because two different widgets were bound to one session-state key. Here
every ordered pair of pages runs in a fresh session with the first page opened plainly, and each
first page opened from a link carrying its own query parameters is followed by every page that
shares session state with it.
"""

from __future__ import annotations

import pytest

from tests.app.test_app import PAGES, assert_clean
from tests.app.test_app_links import open_link

SHARED_STATE = ("app_pages/label.py", "app_pages/eigenvectors.py", "app_pages/explain.py", "app_pages/train.py")
LINKS = {  # page -> a query string a teacher might share for it
    "app_pages/home.py": {"model": "0123456789ab"},  # an unknown model: a notice, then the pretrained one
    "app_pages/label.py": {"target": "7", "threshold": "0.3", "inverse": "false"},
    "app_pages/train.py": {"threshold": "0.5"},
    "app_pages/tensor.py": {"grid_t": "0.3", "grid_wd": "0"},
    "app_pages/eigenvectors.py": {"direction": "false", "view": "augmented", "k": "2", "eig": "64", "tab": "compare"},
    "app_pages/explain.py": {"direction": "true", "image": "5"},
    "app_pages/truncation.py": {"grid_t": "0.5", "grid_wd": "2"},
    "app_pages/class_board.py": {"projector": "true"},
}


@pytest.mark.parametrize("first", list(PAGES))
def test_every_page_after_every_other_in_a_fresh_session(first):
    # every second page after a plain first visit; after a link, the pages that share its settings
    pairs = [({}, second) for second in PAGES] + [(LINKS[first], second) for second in SHARED_STATE]
    for query, second in pairs:
        at = open_link(query, first)
        assert_clean(at)
        at.switch_page(second).run()
        assert_clean(at)
        assert not at.exception, f"{first}?{query} -> {second}"
