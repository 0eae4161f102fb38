"""Command-line flags from settings tables (kdlab.base.settings): a setting's flag, help, default and choices
come from its row, so the CLI never restates a default or a list of names.

On the command line a number is only checked for its kind: the widget bounds of a row (T in [0.5, 30]) are for
links and sliders, and the config's own rules (T > 0) are checked when the state is validated."""
from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from kdlab.base.settings import Setting, Table, apply_implied, format_value, get, parse, put


def add_setting_flags(p: argparse.ArgumentParser, table: Table, defaults: Any, skip: tuple[str, ...] = ()) -> None:
    """One flag per row (``--name``, plus its extra spellings); every default is None, meaning "not given"."""
    for s in table:
        if not s.cli or s.name in skip:
            continue
        shown = format_value(s, get(defaults, s))
        text = f"{s.label}{'. ' + s.help if s.help else ''} (default: {shown or 'none'})"
        if s.kind == "choice" and s.choices():
            text += f"; one of: {', '.join(map(str, s.choices()))}"
        if s.kind == "bool":
            on = [s.flag] + [f for f in s.flags if not f.startswith("--no-")]
            off = [f"--no-{s.name.replace('_', '-')}"] + [f for f in s.flags if f.startswith("--no-")]
            p.add_argument(*on, dest=s.name, action="store_const", const="1", default=None, help=text)
            p.add_argument(*off, dest=s.name, action="store_const", const="0", default=None, help=argparse.SUPPRESS)
        elif s.kind == "ints":
            p.add_argument(s.flag, *s.flags, dest=s.name, action="append", default=None, metavar="N",
                           help=text + " (repeat the flag, or give a comma-separated list)")
        else:
            p.add_argument(s.flag, *s.flags, dest=s.name, default=None, metavar=_metavar(s), help=text)


def state_from_args(a: argparse.Namespace, table: Table, base: Any) -> Any:
    """``base`` with every flag that was given; a bad value is a ConfigError naming the flag's setting."""
    state, given = base, set()
    for s in table:
        raw = getattr(a, s.name, None)
        if raw is None:
            continue
        given.add(s.name)
        text = ",".join(raw) if isinstance(raw, list) else raw
        state = put(state, s, parse(_unbounded(s), text, state))
    return apply_implied(table, state, given)


def _unbounded(s: Setting) -> Setting:
    if s.kind == "ladder":  # a slider snaps to its stops; a typed --lr 0.05 means 0.05
        return dataclasses.replace(s, kind="float", low=None, high=None, digits=None)
    if s.kind in ("float", "int", "floats", "ints"):  # options of a number are a slider's stops
        return dataclasses.replace(s, low=None, high=None, options=())
    return s


def _metavar(s: Setting) -> str:
    return {"float": "X", "int": "N", "ladder": "X", "floats": "X,Y,...", "spec": "SPEC"}.get(s.kind, "NAME")


def output_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bars on stderr")


def data_dir_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", default=None, help="folder with the dataset's files (else KDLAB_DATA_DIR)")
