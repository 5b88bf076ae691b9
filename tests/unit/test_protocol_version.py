"""The protocol driver (loadtest/protocol.py) speaks Streamlit 1.67.0's private websocket protocol: with any other
Streamlit installed it refuses to start, and says why and what to do, before a server is started."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata

import pytest

from harness.browser import ROOT
from loadtest import protocol

# `python -m loadtest` under an installed Streamlit that is not 1.67.0 (importlib.metadata answers 1.68.0)
OTHER_STREAMLIT = """
import runpy, sys
from importlib import metadata
metadata.version = lambda name: "1.68.0" if name == "streamlit" else metadata.distribution(name).version
sys.argv = ["loadtest", "--sessions", "1", "--protocol-sessions", "1", "--no-teacher", "--log-dir", sys.argv[1]]
runpy.run_module("loadtest", run_name="__main__")
"""


def test_the_installed_streamlit_is_the_one_the_protocol_was_read_from():
    assert metadata.version("streamlit") == protocol.STREAMLIT_VERSION == "1.67.0"
    assert protocol.check_streamlit_version() == "1.67.0"


def test_a_protocol_student_refuses_another_streamlit(monkeypatch):
    monkeypatch.setattr(metadata, "version", lambda name: "1.68.0")
    with pytest.raises(protocol.StreamlitVersionError) as refused:
        protocol.ProtocolStudent("http://127.0.0.1:9")
    message = str(refused.value)
    assert "Streamlit 1.67.0's private websocket protocol" in message and "Streamlit 1.68.0 is installed" in message
    assert "streamlit==1.67.0" in message


def test_the_command_line_refuses_another_streamlit_before_a_server_starts(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", OTHER_STREAMLIT, str(tmp_path / "logs")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert "python -m loadtest: the protocol students (loadtest/protocol.py) speak Streamlit 1.67.0's" in done.stderr
    assert "Streamlit 1.68.0 is installed" in done.stderr
    assert not (tmp_path / "logs").exists(), "no server was started (its log would be there)"
