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
    p.add_argument("--playground", nargs="?", const="spirals", default=None, metavar="TOY",
                   help="benchmark the Playground instead, on a 2-D toy (default: spirals): a run with its teacher "
                        "cached and cold, the snapshots' gaps, the T and live redraws, the effect over 3 seeds")
    p.add_argument("--no-effect", action="store_true", help="with --playground: skip the 3-seed effect check")
    p.add_argument("--ray", action="store_true", help="instead: a 4 x 4 x 1 sweep here, one run after another, "
                   "against a private local Ray with 2 workers (kdlab.serve.ray_bench; use --repeats 3)")
    cli_args.data_dir_flag(p)
    cli_args.output_flags(p)
    p.set_defaults(run=run, show=show)


def run(a: argparse.Namespace) -> dict[str, Any]:
    if a.playground is not None:
        return _run_playground(a)
    if a.ray:
        from kdlab.serve.ray_bench import run_ray_bench

        return run_ray_bench(dataset=a.dataset, data_dir=a.data_dir, repeats=a.repeats,
                             say=(lambda line: None) if a.quiet else (lambda line: sys.stderr.write(line + "\n")))
    from kdlab.cli.bench import run_bench

    return run_bench(dataset=a.dataset, data_dir=a.data_dir, repeats=a.repeats, quiet=a.quiet)


def show(out: dict[str, Any]) -> str:
    if out.get("section") == "playground":
        return _show_playground(out)
    if "ray_sweep_s" in out:
        from kdlab.serve.ray_bench import show as show_ray

        return show_ray(out)
    return "\n".join([
        f"{out['dataset']}: one epoch of student {out['student']} from teacher {out['teacher']}, batch {out['batch_size']}",
        f"kdlab engine ({out['kdlab_threads']} thread): {out['kdlab_epoch_s']:.3f} s (median)",
        f"tutorial DataLoader loop: {out['tutorial_epoch_s']:.3f} s -> {out['speedup']:.1f}x slower",
        f"lean per-example loop: {out['lean_loop_epoch_s']:.3f} s -> {out['speedup_vs_lean_loop']:.1f}x slower",
        f"cached teacher load: {out['cached_teacher_load_s']:.3f} s; peak RSS {out['peak_rss_mb']:.0f} MB",
        *_show_stacked(out.get("stacked", {})),
    ])


def _show_stacked(st: dict[str, Any]) -> list[str]:
    """One line per dataset of the stacked section: the 16-cell sweep serial against stacked, and their ratio."""
    return [f"{st['cells']}-cell sweep on {name} ({st['student']}, {st['epochs']} epoch): serial {d['serial_s']:.2f} s, "
            f"stacked {d['stacked_s']:.2f} s -> {d['ratio']:.1f}x (accuracies differ by at most "
            f"{d['max_accuracy_difference_pp']:.1f} points)"
            for name, d in st.items() if isinstance(d, dict) and "ratio" in d]


# -- the Playground section (kdlab bench --playground) -------------------------------------------------------

def _run_playground(a: argparse.Namespace) -> dict[str, Any]:
    from kdlab.base.errors import ConfigError
    from kdlab.cli.bench import run_playground_bench
    from kdlab.data.toys import TOYS

    if a.playground not in TOYS:
        raise ConfigError(f"--playground takes a 2-D toy: one of {', '.join(TOYS)}; got {a.playground!r}")
    if a.repeats < 1:
        raise ConfigError(f"--repeats must be at least 1, got {a.repeats}")
    return run_playground_bench(dataset=a.playground, repeats=a.repeats, effect=not a.no_effect, quiet=a.quiet)


def _show_playground(out: dict[str, Any]) -> str:
    w, c, t, live = (out[k] for k in ("warm_run_s", "cold_teacher_extra_s", "teacher_redraw_ms",
                                      "live_redraw_3_students_ms"))
    lines = [
        f"Playground on {out['dataset']}, one torch thread, medians of {out['repeats']} (load average "
        f"{out['load_average'][0]:.1f} before, {out['load_average_after'][0]:.1f} after):",
        f"one run, teacher in memory (3 students, {out['snapshots_per_run']} snapshots): {w['median']:.2f} s wall "
        f"(min {min(w['all']):.2f}), {w['cpu_median']:.2f} s CPU (target 3 s)",
        f"cold teacher, trained into an empty cache: {c['median']:.2f} s wall (min {min(c['all']):.2f}), "
        f"{c['cpu_median']:.2f} s CPU more (target 3 s)",
        f"longest gap between two snapshots: {out['max_snapshot_gap_s']:.2f} s (the page polls every 0.5 s)",
        f"teacher field at a new T, figure and JSON: {t['median']:.0f} ms (max {t['max']:.0f}; {t['json_kb']:.0f} KB; "
        "target 150 ms)",
        f"three student figures of one snapshot, JSON: {live['median']:.0f} ms ({live['json_kb']:.0f} KB)",
    ]
    if (e := out.get("effect_spirals_10_labels")) is not None:
        per = lambda arm: ", ".join(f"{100 * v:.1f}" for v in e[arm])  # noqa: E731
        lines.append(f"effect, spirals, 10 labels, seeds 0-2: soft - scratch {e['soft_minus_scratch_points']:+.1f} "
                     f"points (target +30), hard - scratch {e['hard_minus_scratch_points']:+.1f}; scratch "
                     f"{per('scratch')}, hard {per('hard')}, soft {per('soft')}")
    return "\n".join(lines)
