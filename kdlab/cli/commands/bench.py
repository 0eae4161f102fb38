"""``kdlab bench``: one distillation epoch of the engine against the tutorial-style loop."""
from __future__ import annotations

import argparse
import sys
from typing import Any

from kdlab.cli import args as cli_args


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="benchmark one distillation epoch against a tutorial-style loop")
    p.add_argument("--repeats", type=int, default=5, help="timed epochs per loop (default: 5)")
    p.add_argument("--dataset", default="fashion-mnist", help="default: fashion-mnist")
    p.add_argument("--ray", action="store_true", help="instead: a 4 x 4 x 1 sweep here, one run after another, "
                   "against a private local Ray with 2 workers (kdlab.serve.ray_bench; use --repeats 3)")
    cli_args.data_dir_flag(p)
    cli_args.output_flags(p)
    p.set_defaults(run=run, show=show)


def run(a: argparse.Namespace) -> dict[str, Any]:
    if a.ray:
        from kdlab.serve.ray_bench import run_ray_bench

        return run_ray_bench(dataset=a.dataset, data_dir=a.data_dir, repeats=a.repeats,
                             say=(lambda line: None) if a.quiet else (lambda line: sys.stderr.write(line + "\n")))
    from kdlab.cli.bench import run_bench

    return run_bench(dataset=a.dataset, data_dir=a.data_dir, repeats=a.repeats, quiet=a.quiet)


def show(out: dict[str, Any]) -> str:
    if "ray_sweep_s" in out:
        from kdlab.serve.ray_bench import show as show_ray

        return show_ray(out)
    return "\n".join([
        f"{out['dataset']}: one epoch of student {out['student']} from teacher {out['teacher']}, batch {out['batch_size']}",
        f"kdlab engine ({out['kdlab_threads']} thread): {out['kdlab_epoch_s']:.3f} s (median)",
        f"tutorial DataLoader loop: {out['tutorial_epoch_s']:.3f} s -> {out['speedup']:.1f}x slower",
        f"lean per-example loop: {out['lean_loop_epoch_s']:.3f} s -> {out['speedup_vs_lean_loop']:.1f}x slower",
        f"cached teacher load: {out['cached_teacher_load_s']:.3f} s; peak RSS {out['peak_rss_mb']:.0f} MB",
    ])
