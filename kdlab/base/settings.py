"""Settings tables: one row per user-facing setting, the one place that knows its name, where its value lives,
its label and help, its widget, bounds, step and rounding (docs/ARCHITECTURE.md, "One name, one owner").

A table describes the fields of one frozen dataclass, its *state* (a Lab, a sweep grid, a Temperature view),
each row by a dotted path into it. The URL (``to_params`` / ``from_params``), the Streamlit widgets
(``kdlab.ui.forms``), the CLI flags (``kdlab.cli.args``) and the stale-results check (``changed``) all read
the table, so a row added to a table appears in all four with no other edit. Pure: stdlib only.

Values have two spellings: the state's own (``None`` for "every training image") and the widget's (``0``),
joined by ``Setting.none_as``; ``get`` and ``put`` convert. Text (a URL value, a CLI argument) becomes a value
through ``parse``, which checks the kind and the widget bounds and raises ConfigError with one message.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from kdlab.base.errors import ConfigError, KdlabError

KINDS = ("choice", "spec", "float", "int", "ladder", "bool", "floats", "ints")
MAX_TEXT = 64  # longest value a link or a CLI argument may carry for one setting
_NO_NONE = object()  # none_as default: the setting is never None
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


@dataclass(frozen=True)
class Setting:
    name: str  # the one name: URL key, widget key "<prefix>.<name>", CLI flag --<name with dashes>
    path: str  # where the value lives in the state, e.g. "config.train.epochs", "config.loss_params.lam"
    label: str
    help: str = ""
    kind: str = "float"  # one of KINDS
    low: float | None = None  # widget and link bounds (the config's own rules are checked on top)
    high: float | Callable[[Any], float] | None = None  # a callable takes the state (a bound set by the data)
    step: float | None = None
    digits: int | None = None  # a float from a widget or link is rounded to this many decimals
    options: Sequence | Callable[[], Sequence] = ()  # choice, ladder, floats: the allowed values (spec: suggestions)
    none_as: Any = _NO_NONE  # the widget value that stands for the state's None (e.g. 0 = every image)
    default: Any = None  # what a missing entry of a dict stands for (a loss weight left at its default)
    group: str = ""  # the sidebar section it is drawn in
    more: bool = False  # drawn in the sidebar's "More settings" expander
    applies: Callable[[Any], bool] | None = None  # on the state: drawn, written and compared only when true
    ui: bool = True  # shown by the app (a widget and the URL); False: the CLI's alone
    cli: bool = True  # has a CLI flag
    flags: tuple[str, ...] = ()  # more CLI spellings, e.g. ("-T",)
    aliases: tuple[str, ...] = ()  # older URL keys that are still read, e.g. ("T",)
    check: Callable[[Any], Any] | None = None  # parsed text -> canonical value, or ConfigError (e.g. a model spec)
    widget: str = ""  # another widget than the kind's: "radio" (a short choice), "select" (numbers as a list),
    # "none" (in the URL, set by a page's own control, e.g. a "New sample" button)
    implies: tuple[tuple[str, Any], ...] = ()  # given as text, it also sets these (name, value) unless they are
    # given too: an old link or a command line with epochs=10 but no steps means an epoch budget

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"setting {self.name!r}: unknown kind {self.kind!r}")

    def choices(self) -> list:
        return list(self.options() if callable(self.options) else self.options)

    def upper(self, state: Any) -> float | None:
        return self.high(state) if callable(self.high) else self.high

    def applies_to(self, state: Any) -> bool:
        return self.applies is None or bool(self.applies(state))

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


Table = Sequence[Setting]


# -- values ---------------------------------------------------------------------------------------------------

def get(state: Any, s: Setting) -> Any:
    """The setting's value in the widget's spelling (``none_as`` for None)."""
    value = _get_path(state, s.path)
    if value is None:
        return s.none_as if s.none_as is not _NO_NONE else s.default
    return value


def put(state: Any, s: Setting, value: Any) -> Any:
    """``state`` with the setting set to ``value`` (widget spelling accepted)."""
    if s.none_as is not _NO_NONE and value == s.none_as:
        value = None
    return _replace_path(state, s.path.split("."), value)


def values(table: Table, state: Any) -> dict[str, Any]:
    return {s.name: get(state, s) for s in table}


# -- text: links and command lines ----------------------------------------------------------------------------

class SettingError(ConfigError):
    """A setting's text that cannot be read: ``name``, the ``text`` and ``why`` (what it accepts)."""

    def __init__(self, name: str, text: str, why: str):
        super().__init__(f"{name}={text!r}: {why}")
        self.name, self.text, self.why = name, text, why


def parse(s: Setting, text: str, state: Any = None) -> Any:
    """A value (widget spelling) from text; SettingError naming the setting and what it accepts."""
    text = str(text).strip()
    if len(text) > MAX_TEXT:
        raise SettingError(s.name, text[:MAX_TEXT] + "…", f"longer than {MAX_TEXT} characters")
    try:
        value = _PARSERS[s.kind](s, text, state)
        return s.check(value) if s.check is not None and value != s.none_as else value
    except (ValueError, KdlabError) as exc:
        raise SettingError(s.name, text, str(exc)) from None


def format_value(s: Setting, value: Any) -> str:
    if s.kind == "bool":
        return "1" if value else "0"
    if s.kind in ("floats", "ints"):
        return ",".join(f"{v:g}" for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def to_params(table: Table, state: Any) -> dict[str, str]:
    """The URL query parameters of ``state``: every setting that applies to it."""
    return {s.name: format_value(s, get(state, s)) for s in table if s.ui and s.applies_to(state)}


def from_params(table: Table, params: Mapping[str, Any], base: Any, fallback: Any,
                fits: Callable[[Any], None] | None = None) -> tuple[Any, list[str]]:
    """(state, notices) from URL ``params`` over ``base``. Reading never fails: a missing value keeps the base's,
    a bad one takes ``fallback``'s with a one-line notice, and settings that do not fit together (``fits``
    raises ConfigError) give ``fallback`` whole."""
    state, notices, given = base, [], set()
    for s in table:
        key = next((k for k in (s.name, *s.aliases) if k in params), None)
        if key is None or not s.ui:
            continue
        given.add(s.name)
        raw = params[key]
        raw = raw[-1] if isinstance(raw, (list, tuple)) and raw else raw  # a repeated key: the last one wins
        try:
            state = put(state, s, parse(s, raw, state))
        except SettingError as exc:
            default = get(fallback, s)
            state = put(state, s, default)
            notices.append(f"The link's {exc.name}={exc.text!r} was ignored ({exc.why}); "
                           f"using the default, {format_value(s, default)}.")
    state = apply_implied(table, state, given)
    if fits is not None:
        try:
            fits(state)
        except ConfigError as exc:
            return fallback, notices + [f"The link's settings do not fit together ({exc}); using the defaults."]
    return state, notices


def apply_implied(table: Table, state: Any, given: set[str]) -> Any:
    """``state`` with what the ``given`` settings imply for the settings that were not given."""
    by_name = {s.name: s for s in table}
    for s in table:
        if s.name in given:
            for name, value in s.implies:
                if name not in given and name in by_name:
                    state = put(state, by_name[name], value)
    return state


def changed(table: Table, old: Any, new: Any) -> list[str]:
    """Names of the settings whose values differ between two states (compared as values, not as text)."""
    return [s.name for s in table if (s.applies_to(old) or s.applies_to(new)) and get(old, s) != get(new, s)]


# -- parsers by kind --------------------------------------------------------------------------------------------

def _number(s: Setting, text: str, state: Any, integer: bool = False) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    low, high = s.low, s.upper(state)
    inside = math.isfinite(value) and (low is None or value >= low) and (high is None or value <= high)
    if not inside or (integer and value != int(value)):
        kind = "a whole number" if integer else "a number"
        raise ValueError(f"must be {kind} in [{_g(low)}, {_g(high)}]")
    if integer:
        return int(value)
    return round(value, s.digits) if s.digits is not None else value


def _member(s: Setting, value: Any) -> Any:
    """A number with a list of stops (a batch size on a slider) must be one of them."""
    if s.choices() and value not in s.choices():
        raise ValueError(f"choose one of {', '.join(map(str, s.choices()))}")
    return value


def _g(x: float | None) -> str:
    return "-inf" if x is None else f"{x:g}"


def _choice(s: Setting, text: str, state: Any) -> Any:
    options = s.choices()
    for option in options:
        if text == format_value(s, option):
            return option
    raise ValueError(f"choose one of {', '.join(map(str, options))}")


def _ladder(s: Setting, text: str, state: Any) -> float:
    """A number snapped to the nearest stop (on a log scale: the stops of a learning rate are 1e-4, 3e-4, ...)."""
    stops = s.choices()
    value = _number(dataclasses.replace(s, low=min(stops) / 10, high=max(stops) * 10), text, state)
    if value <= 0:
        raise ValueError(f"must be > 0; one of {', '.join(f'{v:g}' for v in stops)}")
    return min(stops, key=lambda stop: abs(math.log(stop / value)))


def _bool(s: Setting, text: str, state: Any) -> bool:
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    raise ValueError("must be 1 or 0")


def _list(s: Setting, text: str, state: Any, integer: bool) -> tuple:
    items = [t for t in text.replace(" ", "").split(",") if t]
    one = dataclasses.replace(s, kind="int" if integer else "float")
    parsed = tuple(sorted({_number(one, t, state, integer) for t in items}))
    allowed = s.choices()
    if allowed and any(v not in allowed for v in parsed):
        raise ValueError(f"each value must be one of {', '.join(f'{v:g}' for v in allowed)}")
    return parsed


_PARSERS: dict[str, Callable[[Setting, str, Any], Any]] = {
    "choice": _choice, "spec": lambda s, text, state: text, "float": _number,
    "int": lambda s, text, state: _member(s, _number(s, text, state, integer=True)), "ladder": _ladder,
    "bool": _bool,
    "floats": lambda s, text, state: _list(s, text, state, integer=False),
    "ints": lambda s, text, state: _list(s, text, state, integer=True),
}


# -- dotted paths into frozen dataclasses (and a dict at the end) -------------------------------------------------

def _get_path(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = obj.get(part) if isinstance(obj, Mapping) else getattr(obj, part)
    return obj


def _replace_path(obj: Any, parts: list[str], value: Any) -> Any:
    head, rest = parts[0], parts[1:]
    if isinstance(obj, Mapping):
        inner = value if not rest else _replace_path(obj[head], rest, value)
        out = dict(obj)
        if inner is None:
            out.pop(head, None)  # a dict of optional weights: None removes the key
        else:
            out[head] = inner
        return out
    inner = value if not rest else _replace_path(getattr(obj, head), rest, value)
    return dataclasses.replace(obj, **{head: inner})
