"""``kdlab presets``: the named set-ups of the home page, what each shows, and the claim a test checks."""
from __future__ import annotations

import argparse
from typing import Any

from kdlab.base.config import to_dict
from kdlab.cli import args as cli_args
from kdlab.cli import show as fmt
from kdlab.runs.lab import run_label
from kdlab.runs.presets import get_preset, preset_names


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("presets", help="list the presets (use one with kdlab distill --preset NAME)")
    cli_args.output_flags(p)
    p.set_defaults(run=run, show=show)


def run(a: argparse.Namespace) -> dict[str, Any]:
    presets = [get_preset(name) for name in preset_names()]
    return {"presets": [{"name": p.name, "summary": p.summary, "expect": p.expect, "label": run_label(p.lab),
                         "scratch": p.lab.scratch, "seeds": p.lab.seeds, "config": to_dict(p.lab.config)}
                        for p in presets]}


def show(out: dict[str, Any]) -> str:
    return fmt.table(["preset", "expect", "set-up"], [[p["name"], p["expect"], p["label"]] for p in out["presets"]])
