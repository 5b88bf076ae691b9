"""Text from outside (a URL, a file name, a file's metadata) is shown literally, at every echo site.

core.text.literal puts it in a Markdown code span, where nothing is interpreted; the checks here are
on the Markdown source the app sends, which is what a browser would render.
"""

from __future__ import annotations

import json
import re
import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import save as st_save
from streamlit.testing.v1 import AppTest

from core.config import Config
from core.text import literal
from core.train import new_model
from tests.app.test_app import APP, TIMEOUT, assert_clean
from tests.app.test_app_links import open_link

HOSTILE = [
    "x\n\n# Reset: [click here](http://e.vil)",
    "`code` **bold** <script>alert(1)</script> $x^2$ :red[alarm] :material/warning:",
    "a\u202ebidi\u200bzero\x00nul\x1b[31mansi\u2028line",
    "![img](http://e.vil/a.png)" * 20,
]
TEXT = st.text(st.characters(codec="utf-8"), max_size=300) | st.sampled_from(HOSTILE)


def assert_inert(shown: str, limit: int) -> None:
    """One code span holding printable, one-line text of bounded length."""
    assert shown.startswith("`") and shown.endswith("`") and shown.count("`") == 2, shown
    inner = shown[1:-1]
    assert len(inner) <= limit + 1
    assert "\n" not in inner and "\r" not in inner
    assert all(unicodedata.category(c) not in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp") for c in inner)


@settings(max_examples=300, deadline=None)
@given(text=TEXT, limit=st.integers(1, 120))
def test_literal_is_one_inert_code_span(text, limit):
    assert_inert(literal(text, limit), limit)
    plain = literal(text, limit, markdown=False)
    assert "`" not in plain and "\n" not in plain


def spans(message: str) -> list[str]:
    return re.findall(r"`[^`]*`", message)


def assert_shown_literally(message: str, limit: int) -> None:
    """Untrusted parts only inside inert code spans: nothing outside them can link, head or script."""
    assert "\n" not in message, message
    outside = re.sub(r"`[^`]*`", "", message)
    assert "](" not in outside and "<" not in outside and "$" not in outside and ":red[" not in outside, message
    for span in spans(message):
        assert_inert(span, limit)


@settings(max_examples=12, deadline=None)
@given(text=TEXT)
def test_a_hostile_link_value_and_name_are_echoed_inertly(text):
    at = open_link({"direction": text, text[:30] or "x": "1"}, "app_pages/eigenvectors.py")
    assert_clean(at)
    notices = [w.value for w in at.warning]
    assert notices, "each bad parameter gets a notice"
    for message in notices:
        assert_shown_literally(message, 60)


def checkpoint_with_format(fmt: str) -> bytes:
    model = new_model(Config(d_hidden=4))
    tensors = {name: t.detach().contiguous() for name, t in model.state_dict().items()}
    return st_save(tensors, metadata={"format": fmt, "config": json.dumps(Config(d_hidden=4).to_dict())})


def echoed(at: AppTest) -> list[str]:
    return [e.value for e in at.error] + [w.value for w in at.warning] + [x.value for x in at.success]


def test_hostile_file_names_and_metadata_are_echoed_inertly():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    for i, text in enumerate(HOSTILE):
        name = text[:80].replace("/", "_").replace("\x00", "") + ".safetensors"  # no file name holds a NUL
        # a rejected file empties the field under a new key (ui.models.upload_key): the sidebar's only uploader
        at.sidebar.file_uploader[0].upload(name, checkpoint_with_format(text)).run()
        messages = echoed(at)
        assert any("Could not load" in m for m in messages), (i, messages)
        at.switch_page("app_pages/explain.py").run()
        at.segmented_control(key="explain_source").set_value("upload").run()
        at.file_uploader(key="explain_upload").clear().upload(
            name.replace(".safetensors", ".png"), b"not a png", "image/png"
        ).run()
        messages += echoed(at)
        assert any("Can't use" in m for m in messages), (i, messages)
        for message in messages:
            assert_shown_literally(message, 120)
        at.switch_page("app_pages/home.py").run()
