"""The Train page's "Show the code" shows the loop a student can read, says the app runs a faster one with
the same law, and opens that one's source only on request (issue 22)."""

import inspect

import core.train
from core import reference_train
from tests.app.test_app import open_page


def test_show_the_code_is_the_reference_loop_with_the_fast_one_behind_it():
    at = open_page("app_pages/train.py")
    at.session_state["show_code"] = True  # a click on the expander, which reruns the page
    at.run()
    assert not at.exception
    shown = [c.value.strip() for c in at.code]  # st.code drops the last newline
    assert inspect.getsource(reference_train.train).strip() in shown
    assert not any("class NoisyEmbedding" in code for code in shown), "the fast loop stays closed"
    assert any("faster loop that follows the same law" in c.value for c in at.caption)
    assert any(e.label == "Show `core.train`" for e in at.expander)

    at.session_state["show_code_core.train"] = True
    at.run()
    assert not at.exception
    assert inspect.getsource(core.train).strip() in [c.value.strip() for c in at.code]
