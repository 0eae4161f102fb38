"""``kdlab teacher``: train a teacher once (or load it from the cache) and report it."""
from __future__ import annotations

import argparse
import time
from typing import Any

from kdlab.base.config import TeacherConfig
from kdlab.cli import args as cli_args
from kdlab.cli import show as fmt
from kdlab.runs.lab import TEACHER_SETTINGS


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("teacher", help="train (or load from the cache) a teacher")
    cli_args.add_setting_flags(p, TEACHER_SETTINGS, TeacherConfig())
    cli_args.data_dir_flag(p)
    cli_args.output_flags(p)
    p.set_defaults(run=run, show=show)


def run(a: argparse.Namespace) -> dict[str, Any]:
    from kdlab.cli.progress import Bars
    from kdlab.data import load_dataset
    from kdlab.runs.teacher import get_teacher

    cfg = cli_args.state_from_args(a, TEACHER_SETTINGS, TeacherConfig())
    cfg.validate()
    data = load_dataset(cfg.dataset, a.data_dir)
    t0 = time.perf_counter()
    with Bars(disable=a.quiet) as bars:
        t = get_teacher(cfg, data, on_event=bars.callback("teacher"))
    return {"source": "cache" if t.source == "memory" else t.source, "test_accuracy": t.test_accuracy,
            "params": t.meta["params"], "seconds": time.perf_counter() - t0, "key": t.key,
            "warnings": t.warnings, "dataset": cfg.dataset, "arch": cfg.arch}


def show(out: dict[str, Any]) -> str:
    how = "trained and cached" if out["source"] == "trained" else "from the cache"
    lines = [f"teacher {out['arch']} on {out['dataset']}: {fmt.pct(out['test_accuracy'])} test accuracy, "
             f"{out['params']:,} parameters; {how} in {out['seconds']:.1f} s (key {out['key']})"]
    return "\n".join(lines + [f"warning: {w}" for w in out["warnings"]])
