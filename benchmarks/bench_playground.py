"""Playground speed and effect, as numbers (the targets of issue 11). Run from the repository root:

    python benchmarks/bench_playground.py --repeats 5

* warm run: one Playground run with its teacher in memory (the three students, snapshots included);
* cold teacher: the same run's teacher trained into an empty cache (``prepare``: training plus the grid);
* snapshot gaps: the longest wall-time gap between two snapshots of a warm run (the page redraws from them);
* T redraw: the teacher's soft-target field at a new T, figure built and serialised to JSON as Streamlit does;
* live redraw: the three student figures of one snapshot, built and serialised;
* effect: spirals, 10 labels, 3 seeds: soft - scratch and hard - scratch in points.

Warm and cold runs are interleaved (the machine is shared and noisy) and reported as medians with the load
average, in one process on one torch thread (as the app's workers run).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's kdlab, not an installed one

import torch  # noqa: E402

from kdlab.plots import playground as plots  # noqa: E402
from kdlab.runs.playground import ARMS, PlaygroundConfig, prepare, run_playground_seeds, train_arms  # noqa: E402
from kdlab.runs.teacher import MEMORY  # noqa: E402
from kdlab.stores.teacher_cache import TeacherStore  # noqa: E402


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def cpu_timed(fn):
    """(wall seconds, CPU seconds of this process, result): on a shared machine the CPU time is close to what
    the wall time would be on an idle one (one torch thread: the process never runs on two cores at once)."""
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - w0, time.process_time() - c0, out


def student_figures(setup, snap) -> list:
    pts = setup.points()
    return [plots.boundary_figure(setup.grid.xs, setup.grid.ys, snap.arms[arm].probs, setup.data.classes,
                                  plots.arm_title(arm, snap.arms[arm].test_accuracy, snap.step, snap.total_steps),
                                  labelled_xy=pts["labelled_xy"], labelled_class=pts["labelled_class"],
                                  transfer_xy=None if arm == "scratch" else pts["transfer_xy"]) for arm in ARMS]


def teacher_redraw(setup, temperature: float) -> int:
    pts = setup.points()
    fig = plots.teacher_figure(setup.grid.xs, setup.grid.ys, setup.teacher_logits, temperature,
                               setup.data.classes, test_accuracy=setup.teacher.test_accuracy, **pts)
    return len(fig.to_json())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dataset", default="spirals")
    parser.add_argument("--no-effect", action="store_true", help="skip the 3-seed effect check")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg = PlaygroundConfig(dataset=args.dataset)
    warm, cold, gaps, warm_cpu, cold_cpu = [], [], [], [], []
    for i in range(args.repeats):
        MEMORY.clear()
        with tempfile.TemporaryDirectory() as root:
            seconds, cpu, setup = cpu_timed(lambda: prepare(cfg, store=TeacherStore(root)))  # empty cache: trains
            assert setup.teacher.source == "trained"
            cold.append(seconds)
            cold_cpu.append(cpu)
            setup = prepare(cfg, store=TeacherStore(root))  # from memory
            assert setup.teacher.source == "memory"
            stamps = []
            seconds, cpu, frames = cpu_timed(lambda: [stamps.append(time.perf_counter()) or s
                                                      for s in train_arms(setup)])
            warm.append(seconds)
            warm_cpu.append(cpu)
            gaps.append(max(b - a for a, b in zip(stamps, stamps[1:])))
    t_redraw = [timed(lambda t=t: teacher_redraw(setup, t))[0] for t in (1, 2, 3, 4, 5, 8, 10, 15, 20, 30) * 3]
    redraw_bytes = teacher_redraw(setup, 4.0)
    live = [timed(lambda: sum(len(f.to_json()) for f in student_figures(setup, frames[-1])))[0] for _ in range(10)]
    live_bytes = sum(len(f.to_json()) for f in student_figures(setup, frames[-1]))
    out = {
        "load_average": os.getloadavg(),
        "warm_run_s": {"median": statistics.median(warm), "all": warm, "cpu_median": statistics.median(warm_cpu)},
        "cold_teacher_extra_s": {"median": statistics.median(cold), "all": cold,
                                 "cpu_median": statistics.median(cold_cpu)},
        "snapshots_per_run": len(frames), "max_snapshot_gap_s": max(gaps),
        "teacher_redraw_ms": {"median": 1e3 * statistics.median(t_redraw), "max": 1e3 * max(t_redraw),
                              "json_kb": redraw_bytes / 1e3},
        "live_redraw_3_students_ms": {"median": 1e3 * statistics.median(live), "json_kb": live_bytes / 1e3},
    }
    if not args.no_effect:
        with tempfile.TemporaryDirectory() as root:
            res = run_playground_seeds(PlaygroundConfig(dataset="spirals", labelled=10), [0, 1, 2],
                                       store=TeacherStore(root))
        out["effect_spirals_10_labels"] = {
            "scratch": res["arms"]["scratch"]["per_seed"], "hard": res["arms"]["hard"]["per_seed"],
            "soft": res["arms"]["soft"]["per_seed"], "teacher": res["teacher"]["per_seed"],
            "soft_minus_scratch_points": 100 * res["gain"]["soft_minus_scratch"],
            "hard_minus_scratch_points": 100 * res["gain"]["hard_minus_scratch"]}
    out["load_average_after"] = os.getloadavg()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
