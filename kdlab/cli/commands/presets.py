"""``kdlab presets``: the named set-ups of the home page, what each shows; ``--measure`` checks every claim."""
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
    p.add_argument("--measure", action="store_true", help="run every preset over --seeds seeds and check its claim")
    p.add_argument("--seeds", type=int, default=3, help="seeds per preset with --measure (default: 3)")
    cli_args.output_flags(p)
    p.set_defaults(run=run, show=show)


def run(a: argparse.Namespace) -> dict[str, Any]:
    presets = [get_preset(name) for name in preset_names()]
    out = {"presets": [{"name": p.name, "summary": p.summary, "expect": p.expect, "label": run_label(p.lab),
                        "scratch": p.lab.scratch, "seeds": p.lab.seeds, "config": to_dict(p.lab.config)}
                       for p in presets]}
    if a.measure:
        from kdlab.base.lab import MAX_SEEDS
        from kdlab.base.errors import ConfigError
        from kdlab.runs.claims import markdown, measure

        if not 2 <= a.seeds <= MAX_SEEDS:
            raise ConfigError(f"--seeds must be in [2, {MAX_SEEDS}] to measure a spread, got {a.seeds}")
        outcomes = [measure(p, a.seeds) for p in presets]
        for entry, o in zip(out["presets"], outcomes):
            entry["measured"] = {"distilled": o.distilled, "scratch": o.scratch, "verdict": o.verdict.kind,
                                 "gain": o.verdict.gain, "spread": o.verdict.spread, "holds": o.holds,
                                 "omitted_class_accuracy": o.omitted, "seconds": o.seconds}
        out["markdown"] = markdown(outcomes)
    return out


def show(out: dict[str, Any]) -> str:
    if "markdown" in out:
        return out["markdown"]
    return fmt.table(["preset", "expect", "set-up"], [[p["name"], p["expect"], p["label"]] for p in out["presets"]])
