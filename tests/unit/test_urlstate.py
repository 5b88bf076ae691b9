"""core.urlstate: what a link may carry, model ids, and the app's parameter table (ui.links)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as hs

from core import identity, urlstate
from core.config import Config
from core.grid import GRID_THRESHOLDS, GRID_WEIGHT_DECAYS
from core.tensor import DIRECTIONS
from core.urlstate import Param, boolean, choice, integer, model_id, number, one_of, parse_query, to_query
from ui import links, state


def test_config_ids_are_stable_short_and_distinct():
    assert identity.config_id(Config()) == identity.config_id(Config())
    assert identity.MODEL_ID.fullmatch(identity.config_id(Config()))
    ids = {
        identity.config_id(Config(threshold=t, weight_decay=wd)) for t in GRID_THRESHOLDS for wd in GRID_WEIGHT_DECAYS
    }
    assert len(ids) == len(GRID_THRESHOLDS) * len(GRID_WEIGHT_DECAYS)
    assert identity.config_id(Config(seed=1)) != identity.config_id(Config(seed=2))


def test_content_ids_carry_their_kind_and_depend_on_every_part():
    stopped = identity.content_id("stopped", b"weights", b"config")
    uploaded = identity.content_id("uploaded", b"weights", b"config")
    assert stopped.startswith("p-") and uploaded.startswith("u-") and stopped[2:] == uploaded[2:]
    assert identity.content_id("stopped", b"weights", b"config2") != stopped
    assert identity.content_id("stopped", b"weight", b"sconfig") != stopped, "parts are length-prefixed"
    assert all(identity.MODEL_ID.fullmatch(i) for i in (stopped, uploaded))
    with pytest.raises(ValueError):
        identity.content_id("trained", b"x")


@pytest.mark.parametrize(
    "parse, text, expected",
    [
        (integer(0, 59_999), "6", 6),
        (integer(0, 59_999), " 42 ", 42),
        (number(0, 1, 2), "0.333", 0.33),
        (number(0, 1, 2), "1", 1.0),
        (one_of((0.3, 0.4)), "0.30000000000000004", 0.3),
        (boolean, "False", False),
        (choice({"a": 1}), "a", 1),
        (model_id, "0123456789ab", "0123456789ab"),
        (model_id, "u-0123456789ab", "u-0123456789ab"),
    ],
)
def test_parsers_accept_valid_text(parse, text, expected):
    assert parse(text) == expected


@pytest.mark.parametrize(
    "parse, text",
    [
        (integer(0, 59_999), "-1"),
        (integer(0, 59_999), "60000"),
        (integer(0, 9), "1.5"),
        (integer(0, 9), "1e3"),
        (integer(0, 9), ""),
        (number(0, 1, 2), "nan"),
        (number(0, 1, 2), "inf"),
        (number(0, 1, 2), "1.01"),
        (number(0, 1, 2), "abc"),
        (one_of((0.3, 0.4)), "0.35"),
        (one_of((0.3,)), "x"),
        (boolean, "maybe"),
        (choice({"a": 1}), "b"),
        (model_id, "0123456789AB"),
        (model_id, "x-0123456789ab"),
        (model_id, "123"),
        (model_id, "0123456789ab; drop"),
    ],
)
def test_parsers_reject_bad_text_with_a_reason(parse, text):
    with pytest.raises(ValueError) as error:
        parse(text)
    assert str(error.value)


PARAMS = (
    Param("t", "threshold", number(0, 1, 2), urlstate.fmt_number),
    Param("i", "index", integer(0, 10)),
    Param("m", "model", model_id, fallback="the pretrained model"),
)
DEFAULTS = {"threshold": 0.4, "index": 0, "model": "0" * 12}


def test_parse_query_keeps_good_values_and_names_every_bad_one():
    parsed = parse_query({"t": "0.3", "i": "eleven", "m": "nope", "zz": "1", "embed": "true"}, PARAMS, DEFAULTS)
    assert parsed.values == {"threshold": 0.3}
    assert len(parsed.problems) == 3, "bad i, bad m, unknown zz; embed is Streamlit's"
    assert "`i=eleven`" in parsed.problems[0] and "the default 0" in parsed.problems[0]
    assert "the pretrained model" in parsed.problems[1]
    assert "`zz`" in parsed.problems[2]


def test_untrusted_text_is_clipped_and_cannot_break_the_markdown():
    parsed = parse_query({"i": "`" + "9" * 100}, PARAMS, DEFAULTS)
    assert "``" not in parsed.problems[0] and "…" in parsed.problems[0] and len(parsed.problems[0]) < 200


def test_to_query_leaves_defaults_out_and_round_trips():
    state_ = {"threshold": 0.41000000000000003, "index": 0, "model": "u-0123456789ab"}
    query = to_query(state_, PARAMS, DEFAULTS)
    assert query == {"t": "0.41", "m": "u-0123456789ab"}
    assert parse_query(query, PARAMS, DEFAULTS).values == {"threshold": 0.41, "model": "u-0123456789ab"}


@given(hs.dictionaries(hs.text(max_size=8), hs.text(max_size=30), max_size=6))
def test_any_query_parses_without_raising_and_only_to_valid_values(query):
    parsed = parse_query(query, links.PARAMS, links.DEFAULTS)
    for param in links.PARAMS:
        if param.key in parsed.values:
            value = parsed.values[param.key]
            assert param.parse(param.format(value)) == value, "what restore applies, write gives back"
    assert len(parsed.problems) + len(parsed.values) <= len(query)


def test_the_apps_parameters_match_the_widgets():
    direction = next(p for p in links.PARAMS if p.name == "direction")
    assert [direction.parse(name) for name in DIRECTIONS] == list(DIRECTIONS), "every direction has a link word"
    for param in links.PARAMS:
        if param.key == links.JOB_LINK_KEY:
            assert param.key not in links.DEFAULTS, "no run by default: the parameter appears only while one trains"
            continue
        default = links.DEFAULTS[param.key]
        assert param.parse(param.format(default)) == default, f"{param.name}: its default survives a round trip"
    assert len({p.name for p in links.PARAMS}) == len(links.PARAMS)
    assert links.DEFAULTS[links.MODEL_KEY] == identity.config_id(Config())
    assert math.isclose(state.WIDGET_DEFAULTS["grid_threshold"], Config().threshold)


def test_a_value_no_link_can_carry_is_left_out():
    params = (Param("v", "view", choice({"compare": "Compare"}), urlstate.fmt_choice({"compare": "Compare"})),)
    assert to_query({"view": "something else"}, params, {"view": "Compare"}) == {}
    assert to_query({"view": "Compare"}, params, {"view": "Other"}) == {"v": "compare"}
