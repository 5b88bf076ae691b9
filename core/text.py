"""Untrusted text, shown literally: the one function for anything from a URL, a file name or a file.

`literal(value)` returns a Markdown code span. Inside a code span Markdown, HTML, LaTeX and
Streamlit's :colour[...] / :material/...: syntax are not interpreted, so a link, a heading or an
image cannot be smuggled into a message. A code span ends at a backtick or a blank line, so the
text loses its backticks, line breaks and every other control or invisible formatting character
(Unicode categories Cc, Cf, Cs, Co, Cn, Zl, Zp), and is capped in length.
"""

from __future__ import annotations

import unicodedata

DROPPED = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def literal(value: object, limit: int = 60, markdown: bool = True) -> str:
    """`value` as a Markdown code span: printable, one line, at most `limit` characters (plus "…").

    markdown=False returns the same cleaned text without the code span, for places that show plain
    text (an image caption, a file name).
    """
    text = value if isinstance(value, str) else repr(value)
    clean = "".join(
        " " if char in "\t\n\r" or unicodedata.category(char) in ("Zl", "Zp") else char
        for char in text
        if char in "\t\n\r" or unicodedata.category(char) not in DROPPED
    ).replace("`", "'")
    clean = " ".join(clean.split(" ")).strip() or "(empty)"
    if len(clean) > limit:
        clean = clean[:limit] + "…"
    return f"`{clean}`" if markdown else clean
