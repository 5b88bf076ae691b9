"""What a shareable link carries: parsing and writing URL query values.

A teacher's link (e.g. `/eigenvectors?threshold=0.3&direction=true&model=3fa9c2e1b0d4`) opens
the same view in a new session, and a reload keeps the student's model. Query values are
untrusted text, so every parameter has a parser that returns a valid value or raises
ValueError with a user-facing reason; the app then keeps the default and says which parameter
it ignored. Writing is the inverse: values equal to their default are left out of the URL.

Model ids are core.identity's; a link only carries them.

Pure Python (no torch, no streamlit): the entry file reads links before anything heavy loads.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.identity import ID_HEX, MODEL_ID
from core.text import literal

# Streamlit's own parameters: never ours to check or drop.
RESERVED = frozenset({"embed", "embed_options"})


# --- parsers: text from the URL -> a valid value, or ValueError(reason) -------------------

Parser = Callable[[str], Any]


def integer(low: int, high: int) -> Parser:
    def parse(text: str) -> int:
        if not re.fullmatch(r"[+-]?\d{1,12}", text.strip()):
            raise ValueError(f"must be a whole number between {low} and {high}")
        value = int(text)
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")
        return value

    return parse


def number(low: float, high: float, decimals: int) -> Parser:
    """A finite float in [low, high], rounded to `decimals` places (a slider's step)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"must be a number between {low:g} and {high:g}") from None
        if not math.isfinite(value) or not low <= value <= high:
            raise ValueError(f"must be a number between {low:g} and {high:g}")
        return round(value, decimals) + 0.0  # -0 is 0: one model, one id, one link

    return parse


def one_of(values: Iterable[float]) -> Parser:
    """A float equal (up to round-off) to one of `values`; returns that exact value."""
    allowed = tuple(values)

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        for option in allowed:
            if math.isclose(value, option, rel_tol=0.0, abs_tol=1e-9):
                return option
        raise ValueError(f"must be one of {', '.join(f'{v:g}' for v in allowed)}")

    return parse


def choice(options: Mapping[str, Any]) -> Parser:
    """One of the URL words in `options`; returns the value it stands for."""

    def parse(text: str) -> Any:
        if text not in options:
            raise ValueError(f"must be one of {', '.join(options)}")
        return options[text]

    return parse


def boolean(text: str) -> bool:
    words = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
    if text.strip().lower() not in words:
        raise ValueError("must be true or false")
    return words[text.strip().lower()]


def model_id(text: str) -> str:
    if not MODEL_ID.fullmatch(text):
        raise ValueError(f"is not a model id (expected {ID_HEX} hex digits, optionally after p- or u-)")
    return text


# --- the schema ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    name: str  # in the URL
    key: str  # in st.session_state
    parse: Parser  # URL text -> value (ValueError with a reason)
    format: Callable[[Any], str] = str  # value -> URL text (parse(format(v)) == v)
    fallback: str | None = None  # what a rejected value is replaced by, in words (default: "the default <v>")


def fmt_number(value: float) -> str:
    """0.41000000000000003 -> '0.41'; 1.0 -> '1'; -0.0 -> '0'."""
    return f"{round(float(value), 6) + 0.0:g}"


def fmt_bool(value: bool) -> str:
    return "true" if value else "false"


def fmt_choice(options: Mapping[str, Any]) -> Callable[[Any], str]:
    words = {value: word for word, value in options.items()}
    return lambda value: words[value]


@dataclass(frozen=True)
class Parsed:
    values: dict[str, Any]  # session_state key -> valid value
    problems: list[str]  # one user-facing sentence per rejected or unknown parameter


CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def visible(text: str) -> str:
    """Control characters as \\xNN, so that a message echoes what the link really holds (NUL included)."""
    return CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}", text)


def parse_query(
    query: Mapping[str, str | Sequence[str]], params: Sequence[Param], defaults: Mapping[str, Any]
) -> Parsed:
    """Valid values by session_state key; each bad, unknown or repeated parameter becomes a problem sentence.

    A parameter may come with several values (`?target=1&target=2`): unless they agree, none is taken.
    `defaults` (session_state key -> default value) only words the message: "using the default".
    """
    by_name = {p.name: p for p in params}
    values: dict[str, Any] = {}
    problems: list[str] = []
    for name, given in query.items():
        if name in RESERVED:
            continue
        param = by_name.get(name)
        if param is None:
            problems.append(f"The link's parameter {literal(visible(name), 40)} is unknown and was ignored.")
            continue
        texts = [given] if isinstance(given, str) else list(given)
        default = defaults.get(param.key)
        fallback = param.fallback or (f"the default {param.format(default)}" if default is not None else "the default")
        if len(set(texts)) > 1:
            shown = ", ".join(visible(t) for t in texts[:3]) + (", …" if len(texts) > 3 else "")
            problems.append(
                f"The link gives {literal(name, 20)} {len(texts)} times ({literal(shown, 40)}) and was ignored: "
                f"which one was meant? Using {fallback} instead."
            )
            continue
        text = str(texts[0]) if texts else ""
        try:
            if CONTROL.search(text):
                raise ValueError("contains a control character, which no setting has")
            values[param.key] = param.parse(text)
        except ValueError as error:
            problems.append(
                f"The link's {literal(f'{name}={visible(text)}', 50)} was ignored: {name} {error}. "
                f"Using {fallback} instead."
            )
    return Parsed(values, problems)


def to_query(state: Mapping[str, Any], params: Sequence[Param], defaults: Mapping[str, Any]) -> dict[str, str]:
    """URL text for every parameter whose value differs from its default (missing keys skipped)."""
    query = {}
    for param in params:
        text = _text(param, state.get(param.key))
        if text is not None and text != _text(param, defaults.get(param.key)):
            query[param.name] = text
    return query


def _text(param: Param, value: Any) -> str | None:
    """The value as URL text, or None if there is none or no link can carry it."""
    if value is None:
        return None
    try:
        return param.format(value)
    except (KeyError, TypeError, ValueError):
        return None
