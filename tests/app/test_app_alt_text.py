"""Every image the app draws says what it shows, in numbers, to a screen reader (its alt text)."""

from __future__ import annotations

import re

from tests.app.test_app import PAGES, assert_clean, open_page


def alts(at) -> list[tuple[str, str]]:
    """(caption, alt) of every image now on the page."""
    return [(img.caption, img.alt) for element in at.image for img in element.proto.imgs]


def check(at, where: str) -> int:
    assert_clean(at)
    found = alts(at)
    for caption, alt in found:
        assert len(alt) >= 20, f"{where}: {caption!r} has alt {alt!r}"
        for number in re.findall(r"[+−-]?\d+\.\d+", caption):  # every number in the caption is in the alt text
            assert number.lstrip("+−-") in alt, f"{where}: {number} of {caption!r} missing from {alt!r}"
    return len(found)


def test_every_image_on_every_page_and_view_has_an_alt_text():
    shown = 0
    for page in PAGES:
        shown += check(open_page(page), page)
    at = open_page("app_pages/eigenvectors.py")
    for direction in ("true", "false"):
        at.segmented_control(key="eig_direction").set_value(direction).run()
        shown += check(at, f"eigenvectors {direction}")
    at.segmented_control(key="eig_matrix").set_value("augmented").run()
    shown += check(at, "eigenvectors augmented")
    at.session_state["eig_tab"] = "Compare weight decays"
    at.run()
    shown += check(at, "compare weight decays")
    assert shown > 50, "the pages drew their images"
