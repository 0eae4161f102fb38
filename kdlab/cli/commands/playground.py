"""``kdlab playground``: the Playground's three students (scratch, hard pseudo-labels, soft targets) on a 2-D toy,
over one or more seeds; the flags come from the Playground's settings table (the page's widgets and URL too)."""
from __future__ import annotations

import argparse
from typing import Any

from kdlab.cli import args as cli_args
from kdlab.cli import show as fmt
from kdlab.runs.playground import ARMS, PLAYGROUND_SETTINGS, PlaygroundConfig, validate

ARM_NAMES = {"scratch": "scratch (labels alone)", "hard": "hard pseudo-labels", "soft": "soft targets"}
MAX_SEEDS = 10


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("playground", help="three students on 2-D data: from scratch, from the teacher's hard "
                                          "pseudo-labels, from its soft targets",
                       description="The Playground page's run from the command line: a teacher trained on "
                                   "every label (cached), then three students of one architecture over the "
                                   "same seeds. Accuracies in the JSON are fractions.")
    cli_args.add_setting_flags(p, PLAYGROUND_SETTINGS, PlaygroundConfig().resolved())
    p.add_argument("--seeds", type=int, default=1,
                   help=f"seeds seed, seed + 1, ...: each its own data draw, teacher and students, 1..{MAX_SEEDS} "
                        "(default: 1)")
    cli_args.output_flags(p)
    p.set_defaults(run=run, show=show)


def config_from_args(a: argparse.Namespace) -> PlaygroundConfig:
    cfg = cli_args.state_from_args(a, PLAYGROUND_SETTINGS, PlaygroundConfig())  # noise None: the toy's own
    validate(cfg)
    return cfg


def run(a: argparse.Namespace) -> dict[str, Any]:
    from kdlab.base.errors import ConfigError
    from kdlab.cli.progress import Bars
    from kdlab.runs.playground import run_playground_seeds
    from kdlab.training.engine import Event

    cfg = config_from_args(a).resolved()  # the noise written out in the JSON (the toy's own if not given)
    if not 1 <= a.seeds <= MAX_SEEDS:
        raise ConfigError(f"--seeds must be in [1, {MAX_SEEDS}], got {a.seeds}")

    def progress(seed: int, what: str, x: Any) -> None:
        name = f"{what} (seed {seed})"
        if name not in bars.bars:  # a new seed or phase: the bars of the last one are done
            for bar in bars.bars.values():
                bar.close()
            bars.bars.clear()
        bars.role_callback(name, x if what == "teacher" else Event("step", 1, x.step, x.total_steps))

    with Bars(disable=a.quiet) as bars:
        return run_playground_seeds(cfg, range(cfg.seed, cfg.seed + a.seeds), on_progress=progress)


def show(out: dict[str, Any]) -> str:
    c = out["config"]
    t = out["teacher"]
    head = (f"{out['datasets'][0].split(':')[0]}: {c['labelled']} labelled of {c['points']} training points, "
            f"{c['transfer']} transfer points; teacher {c['teacher']} -> students {c['student']}, "
            f"T = {c['temperature']:g}, α = {c['alpha']:g}, {c['steps']} steps; seeds "
            f"{', '.join(map(str, out['seeds']))}")
    trained = sum(source == "trained" for source in t["source"])
    cached = f"{trained} trained, {len(t['source']) - trained} from the cache"
    rows = [["teacher", fmt.spread({**t, "mean": t["test_accuracy"]}), cached]]
    rows += [[ARM_NAMES[arm], fmt.spread(out["arms"][arm]),
              "" if arm == "scratch" else f"{100 * out['gain'][arm + '_minus_scratch']:+.1f} points"]
             for arm in ARMS]
    text = fmt.table(["model", "test accuracy (mean ± std, per seed)", "vs scratch"], rows)
    notes = [f"note: seed {s} ended early ({r})" for s, r in zip(out["seeds"], out["reasons"]) if r != "completed"]
    return "\n".join([head, text, *notes, f"{out['seconds']:.1f} s"])
