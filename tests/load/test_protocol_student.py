"""Protocol students (loadtest/protocol.py) against a real `streamlit run`, with no browser.

Two protocol students take `python -m loadtest`'s path at its smallest (run as a program: 1 epoch of the quick
preset, a seed each, no teacher, no chromium): both must see "Training finished" and reach Explain with no error
element. A driver that cannot see an error cannot fail, so two more students open what must show one: the app
through a link whose threshold leaves no image labelled true (the Label page's st.error), and a two-line app that
raises (Streamlit's exception element). Each error must be counted.
"""

from __future__ import annotations

import asyncio

import pytest

from harness.browser import run_loadtest, streamlit_server
from loadtest.protocol import ProtocolStudent  # the driver's own tests: the two that must count an error

pytestmark = pytest.mark.browser  # a real server, in the browser tests' process (Makefile)


@pytest.fixture(scope="module")
def classroom(tmp_path_factory):
    options = "--sessions 2 --protocol-sessions 2 --epochs 1 --no-teacher --timeout 120"
    return run_loadtest(tmp_path_factory.mktemp("protocol_classroom"), *options.split())


def errors_on_opening(url: str, path: str = "", query: str = "") -> tuple[list[tuple[str, str]], list[str]]:
    """A protocol student opens `url`/`path`?`query`: the error elements that arrived, and those still shown."""

    async def visit() -> tuple[list[tuple[str, str]], list[str]]:
        student = ProtocolStudent(url, timeout=60)
        try:
            await student.open(path, query)
            return student.errors, student.error_elements()
        finally:
            await student.close()

    return asyncio.run(visit())


def test_two_protocol_students_train_and_reach_explain(classroom):
    for session in classroom["sessions"]:
        name = f"session {session['index']}"
        assert session["kind"] == "protocol", name
        assert session["errors"] == [], f"{name}: {session['errors']}"
        assert [t["outcome"] for t in session["trainings"]] == ["trained"], f"{name}: {session['trainings']}"
        assert session["completed"], name
        explain = session["switches"][-1]
        assert explain["step"] == "Tensor→Explain" and explain["heading"] is not None, f"{name}: {explain}"
        assert explain["heading"] <= explain["run_done"], f"{name}: the h1 arrived before the run finished"


def test_a_protocol_student_counts_the_error_a_link_shows(tmp_path):
    with streamlit_server(tmp_path / "streamlit.log") as (url, _):
        errors, shown = errors_on_opening(url, "label", "threshold=1")
    assert any("No image is labelled true" in text for _, text in errors), errors
    assert any("No image is labelled true" in text for text in shown), shown


def test_a_protocol_student_counts_an_exception(tmp_path):
    script = tmp_path / "raises.py"
    script.write_text('import streamlit as st\n\nst.title("Raises")\nraise ValueError("on purpose")\n')
    with streamlit_server(tmp_path / "streamlit.log", script=script) as (url, _):
        errors, shown = errors_on_opening(url)
    assert [text for _, text in errors] == shown and len(shown) == 1, errors
    assert "ValueError" in shown[0], shown
