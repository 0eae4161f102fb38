"""``kdlab distill``: distil a student from a (cached) teacher, beside its scratch twin, over one or more seeds."""
from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import Any

from kdlab.base.record import Stats
from kdlab.cli import args as cli_args
from kdlab.cli import show as fmt
from kdlab.base.lab import Lab
from kdlab.runs.lab import LAB_SETTINGS, validate_lab
from kdlab.runs.presets import get_preset, preset_names


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("distill", help="distil a student from a (cached) teacher, beside its scratch twin",
                       description="Settings not given on the command line come from --preset, else the "
                                   "defaults shown.")
    p.add_argument("--preset", default=None, help=f"start from a preset: {', '.join(preset_names())}")
    cli_args.add_setting_flags(p, LAB_SETTINGS, Lab())
    cli_args.data_dir_flag(p)
    cli_args.output_flags(p)
    p.set_defaults(run=run, show=show)


def lab_from_args(a: argparse.Namespace) -> Lab:
    base = get_preset(a.preset).lab if a.preset else Lab()
    lab = cli_args.state_from_args(a, LAB_SETTINGS, base)
    validate_lab(lab)
    return lab


def run(a: argparse.Namespace) -> dict[str, Any]:
    from kdlab.cli.progress import Bars
    from kdlab.data import load_dataset
    from kdlab.runs.batch import Run, run_all
    from kdlab.runs.teacher import RunStopped

    lab = lab_from_args(a)
    data = load_dataset(lab.config.dataset, a.data_dir)
    runs = [Run(k, cfg, lab.scratch) for k, cfg in enumerate(lab.seed_configs())]
    with Bars(disable=a.quiet) as bars:
        results = run_all(runs, data, on_progress=lambda k, role, ev: bars.role_callback(_bar(role, k, lab), ev))
    if len(results) < len(runs):
        raise RunStopped("the run was interrupted")
    out = results[0].summary()
    out["summary"] = {role: asdict(Stats.of([getattr(r, role).test_accuracy for r in results.values()]))
                      for role in ("distilled", "scratch") if getattr(results[0], role) is not None}
    out["summary"]["seeds"] = [cfg.train.seed for cfg in lab.seed_configs()]
    return out


def _bar(role: str, k: int, lab: Lab) -> str:
    return role if lab.seeds == 1 or role == "teacher" else f"{role} (seed {lab.config.train.seed + k})"


def show(out: dict[str, Any]) -> str:
    t, s, cfg = out["teacher"], out["summary"], out["config"]
    how = "trained and cached" if t["source"] == "trained" else "from the cache"
    rows = [["teacher", cfg["teacher"], fmt.pct(t["test_accuracy"]), f"{how}, {t['seconds']:.1f} s"]]
    for role, name in (("distilled", "distilled"), ("scratch", "scratch")):
        if role in s:
            student = out["student" if role == "distilled" else "scratch"]
            rows.append([name, cfg["student"], fmt.spread(s[role]),
                         f"{student['steps']} steps, {student['seconds']:.1f} s"])
    text = fmt.table(["model", "architecture", "test accuracy", ""], rows)
    if "scratch" in s:
        gain = s["distilled"]["mean"] - s["scratch"]["mean"]
        n_test = sum(map(sum, out["student"]["confusion"]))
        text += (f"\ngain: {100 * gain:+.1f} points ({gain * n_test:+.0f} of {n_test} test images"
                 f"{', mean over ' + str(len(s['seeds'])) + ' seeds' if len(s['seeds']) > 1 else ''})")
    return text
