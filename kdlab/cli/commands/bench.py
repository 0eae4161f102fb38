"""``kdlab bench``: one distillation epoch of the engine against the tutorial-style loop."""
from __future__ import annotations

import argparse
from typing import Any

from kdlab.cli import args as cli_args


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="benchmark one distillation epoch against a tutorial-style loop")
    p.add_argument("--repeats", type=int, default=5, help="timed epochs per loop (default: 5)")
    p.add_argument("--dataset", default="fashion-mnist", help="default: fashion-mnist")
    cli_args.data_dir_flag(p)
    cli_args.output_flags(p)
    p.set_defaults(run=run, show=show)


def run(a: argparse.Namespace) -> dict[str, Any]:
    from kdlab.cli.bench import run_bench

    return run_bench(dataset=a.dataset, data_dir=a.data_dir, repeats=a.repeats, quiet=a.quiet)


def show(out: dict[str, Any]) -> str:
    return "\n".join([
        f"{out['dataset']}: one epoch of student {out['student']} from teacher {out['teacher']}, batch {out['batch_size']}",
        f"kdlab engine ({out['kdlab_threads']} thread): {out['kdlab_epoch_s']:.3f} s (median)",
        f"tutorial DataLoader loop: {out['tutorial_epoch_s']:.3f} s -> {out['speedup']:.1f}x slower",
        f"lean per-example loop: {out['lean_loop_epoch_s']:.3f} s -> {out['speedup_vs_lean_loop']:.1f}x slower",
        f"cached teacher load: {out['cached_teacher_load_s']:.3f} s; peak RSS {out['peak_rss_mb']:.0f} MB",
    ])
