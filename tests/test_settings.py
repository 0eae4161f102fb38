"""kdlab.base.settings: one table drives parsing, URL parameters, values and the stale check."""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

import pytest

from kdlab.base.errors import ConfigError
from kdlab.base.settings import Setting, changed, from_params, get, parse, put, to_params


@dataclass(frozen=True)
class Inner:
    n: int | None = None
    weights: dict = field(default_factory=dict)


@dataclass(frozen=True)
class State:
    t: float = 4.0
    name: str = "a"
    flag: bool = True
    inner: Inner = field(default_factory=Inner)
    temps: tuple = (1.0, 4.0)


TABLE = [
    Setting("t", "t", "T", kind="float", low=0.5, high=30.0, digits=1, aliases=("T",)),
    Setting("name", "name", "Name", kind="choice", options=("a", "b")),
    Setting("flag", "flag", "Flag", kind="bool"),
    Setting("n", "inner.n", "N", kind="int", low=0, high=100, none_as=0),
    Setting("w", "inner.weights.w", "W", kind="float", low=0, high=10, default=0.1,
            applies=lambda s: s.name == "b"),
    Setting("temps", "temps", "Ts", kind="floats", options=(1.0, 2.0, 4.0, 8.0)),
    Setting("lr", "t", "lr", kind="ladder", options=(1e-3, 3e-3, 1e-2), ui=False),
]
by = {s.name: s for s in TABLE}


def test_values_convert_between_the_state_and_widget_spellings():
    s = State()
    assert get(s, by["n"]) == 0 and get(s, by["w"]) == 0.1  # None -> 0; a missing weight -> its default
    s2 = put(put(s, by["n"], 0), by["w"], 2.5)
    assert s2.inner.n is None and s2.inner.weights == {"w": 2.5}
    assert put(s, by["n"], 7).inner.n == 7 and s.inner.n is None  # frozen states are replaced, not changed


@pytest.mark.parametrize("name, text, value", [
    ("t", "2.34", 2.3), ("t", " 30 ", 30.0), ("name", "b", "b"), ("flag", "off", False), ("flag", "YES", True),
    ("n", "12", 12), ("temps", "8, 1,1", (1.0, 8.0)), ("lr", "0.002", 3e-3), ("lr", "5e-4", 1e-3),
])
def test_parse_reads_each_kind(name, text, value):
    assert parse(by[name], text) == value


@pytest.mark.parametrize("name, text, words", [
    ("t", "0.1", "in [0.5, 30]"), ("t", "nan", "a number"), ("t", "x" * 70, "longer than 64"),
    ("name", "c", "choose one of a, b"), ("flag", "maybe", "1 or 0"), ("n", "2.5", "whole number"),
    ("temps", "3", "one of 1, 2, 4, 8"), ("lr", "-1", "number"),
])
def test_parse_refuses_with_the_settings_name(name, text, words):
    with pytest.raises(ConfigError, match=re.escape(words)) as exc:
        parse(by[name], text)
    assert str(exc.value).startswith(name)


def test_params_round_trip_and_only_applicable_settings_are_written():
    s = State(name="b", inner=Inner(n=5, weights={"w": 3.0}))
    params = to_params(TABLE, s)
    assert params == {"t": "4", "name": "b", "flag": "1", "n": "5", "w": "3", "temps": "1,4"}  # lr has no widget
    back, notices = from_params(TABLE, params, State(), State())
    assert back == s and notices == []
    assert "w" not in to_params(TABLE, State())  # w applies only when name is b


def test_bad_link_values_fall_back_one_by_one_with_a_notice():
    state, notices = from_params(TABLE, {"T": "99", "n": "3", "flag": ["1", "0"]}, State(), State(t=2.0))
    assert (state.t, state.inner.n, state.flag) == (2.0, 3, False)  # alias read; the last repeated value wins
    assert notices == ["The link's t='99' was ignored (must be a number in [0.5, 30]); using the default, 2."]


def test_settings_that_do_not_fit_give_the_fallback():
    def fits(s):
        if s.name == "b" and s.t > 10:
            raise ConfigError("b needs T <= 10")

    state, notices = from_params(TABLE, {"name": "b", "t": "20"}, State(), State(t=1.0), fits)
    assert state == State(t=1.0) and "do not fit together (b needs T <= 10)" in notices[-1]


def test_changed_compares_values_of_settings_that_apply():
    old = State()
    assert changed(TABLE, old, dataclasses.replace(old, t=4.0)) == []
    assert changed(TABLE, old, dataclasses.replace(old, t=4.5, temps=(1.0,))) == ["t", "temps", "lr"]
    assert "w" in changed(TABLE, old, dataclasses.replace(old, name="b", inner=Inner(weights={"w": 1.0})))
