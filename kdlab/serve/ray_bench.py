"""The Ray benchmark: what ``kdlab sweep --ray local`` gains and what it costs. Run it as ``kdlab bench --ray``
or ``python -m kdlab.serve.ray_bench [--repeats N] [--dataset NAME] [--workers N]``.

Each repeat runs the same sweep (by default 4 temperatures x 4 alphas x 1 seed on Fashion-MNIST, student mlp:100
for 3 epochs: 16 cells and one scratch twin) twice in this process, interleaved (the order alternates):

* serial: run_sweep's own executor, one run after another, as ``kdlab sweep`` runs it;
* Ray: a private local Ray with ``workers`` CPUs started for it, its workers warmed (each imports torch and
  kdlab, as every fresh command's workers must), the sweep on it, and its shutdown: everything ``--ray
  local:N`` adds to a command. Start-up is timed until the workers are warm, so the sweep's own time says
  how well two workers share the runs, and start-up plus shutdown what Ray costs a command.

The teacher is trained (or loaded) once before timing; neither arm trains it. It prints the medians, the
speed-up of the sweep itself (serial / Ray sweep), the speed-up of the whole command (serial / start + sweep
+ shutdown), what Ray's start-up and shutdown add (with the first ``import ray``), and the machine's load
averages, which say how much of the second core the Ray arm could have had. The rows of both arms are
compared on every repeat: they must be identical but for the wall times.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
from typing import Any, Callable

from kdlab.base.errors import ConfigError, KdlabError

TEMPERATURES = (1.0, 2.0, 4.0, 8.0)
ALPHAS = (0.25, 0.5, 0.75, 0.9)
STUDENT, EPOCHS, WORKERS = "mlp:100", 3, 2
TEACHER_EPOCHS = 5  # the lab's teacher (mlp:500), trained once before timing: 5 epochs take minutes, 20 a busy
#                     machine's whole time bound; the students' cost does not depend on it (its logits are cached)
MAX_REPEATS = 20  # each repeat is two sweeps: minutes


def command(dataset: str, workers: int | None = None) -> str:
    """The ``kdlab sweep`` command an arm stands for."""
    ray = f" --ray local:{workers}" if workers else ""
    grid = f"--temperatures {','.join(f'{t:g}' for t in TEMPERATURES)} --alphas {','.join(f'{a:g}' for a in ALPHAS)}"
    return (f"kdlab sweep --dataset {dataset} --teacher-epochs {TEACHER_EPOCHS} --student {STUDENT} --epochs {EPOCHS} "
            f"{grid} --seeds 1{ray}")


def run_ray_bench(dataset: str = "fashion-mnist", data_dir: str | None = None, repeats: int = 3,
                  workers: int = WORKERS, say: Callable[[str], None] = lambda line: None) -> dict[str, Any]:
    """The measurements (seconds per repeat, their medians, the ratios); KdlabError if the rows differ."""
    if isinstance(repeats, bool) or not isinstance(repeats, int) or not 1 <= repeats <= MAX_REPEATS:
        raise ConfigError(f"repeats must be a whole number in [1, {MAX_REPEATS}], got {repeats!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 64:
        raise ConfigError(f"workers must be a whole number in [1, 64], got {workers!r}")
    from kdlab.base.lab import Lab
    from kdlab.data import load_dataset
    from kdlab.runs.teacher import get_teacher
    from kdlab.serve.ray_cluster import quiet_ray_logs

    base = Lab().config.replace(dataset=dataset, student=STUDENT)  # the lab's defaults, as `kdlab sweep` has them
    base = base.replace(train=dataclasses.replace(base.train, steps=None, epochs=EPOCHS),  # an epoch budget
                        teacher_train=dataclasses.replace(base.teacher_train, epochs=TEACHER_EPOCHS,
                                                          max_seconds=3600.0))  # no part of its cache key
    data = load_dataset(dataset, data_dir)
    say(f"teacher {base.teacher} on {dataset} (trained once, then cached) ...")
    get_teacher(base.teacher_config(), data)  # neither arm trains it
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    import ray  # noqa: F401  (part of what --ray costs a command, paid once per process)
    import_s = time.perf_counter() - t0
    quiet_ray_logs()
    out: dict[str, Any] = {"dataset": dataset, "student": STUDENT, "epochs": EPOCHS, "temperatures": TEMPERATURES,
                           "alphas": ALPHAS, "workers": workers, "cpus": os.cpu_count(),
                           "import_ray_s": import_s, "serial_s": [], "ray_sweep_s": [],
                           "ray_start_s": [], "ray_shutdown_s": [], "ray_command_s": []}
    for i in range(repeats):
        arms = ("serial", "ray") if i % 2 == 0 else ("ray", "serial")  # alternate: drifting load hits both alike
        rows = {arm: _serial(base, data, out) if arm == "serial" else _on_ray(base, data, workers, out) for arm in arms}
        _check_same(rows["serial"], rows["ray"])
        say(f"repeat {i + 1}/{repeats}: serial {out['serial_s'][-1]:.1f} s, Ray sweep {out['ray_sweep_s'][-1]:.1f} s "
            f"(start {out['ray_start_s'][-1]:.1f} s, shutdown {out['ray_shutdown_s'][-1]:.1f} s); "
            f"load {os.getloadavg()[0]:.1f}")
    med = {k: statistics.median(v) for k, v in out.items() if isinstance(v, list)}
    out["median"] = med
    out["speedup"] = med["serial_s"] / med["ray_sweep_s"]
    out["command_speedup"] = med["serial_s"] / med["ray_command_s"]
    out["ray_added_s"] = out["import_ray_s"] + med["ray_start_s"] + med["ray_shutdown_s"]
    out["rows_identical"] = True
    out["cells"] = len(TEMPERATURES) * len(ALPHAS)
    out["load_before"], out["load_after"] = list(load_before), list(os.getloadavg())
    out["commands"] = {"serial": command(dataset), "ray": command(dataset, workers)}
    return out


def _serial(base, data, out: dict[str, Any]) -> list[dict]:
    from kdlab.runs.sweep import run_sweep

    t0 = time.perf_counter()
    rows = run_sweep(base, TEMPERATURES, ALPHAS, [0], data=data)
    out["serial_s"].append(time.perf_counter() - t0)
    return rows


def _on_ray(base, data, workers: int, out: dict[str, Any]) -> list[dict]:
    from kdlab.runs.sweep import run_sweep
    from kdlab.serve.ray_backend import executor
    from kdlab.serve.ray_cluster import RayCluster

    t0 = time.perf_counter()
    cluster = RayCluster.start(f"local:{workers}")
    cluster.warm(wait=True)  # start-up ends when every worker has imported torch: a fresh command pays it
    t1 = time.perf_counter()
    try:
        rows = run_sweep(base, TEMPERATURES, ALPHAS, [0], data=data, executor=executor(cluster))
    finally:
        t2 = time.perf_counter()
        cluster.close()
    t3 = time.perf_counter()
    for key, value in (("ray_start_s", t1 - t0), ("ray_sweep_s", t2 - t1), ("ray_shutdown_s", t3 - t2),
                       ("ray_command_s", t3 - t0)):
        out[key].append(value)
    return rows


def _check_same(serial: list[dict], remote: list[dict]) -> None:
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    if strip(serial) != strip(remote):
        bad = next((a, b) for a, b in zip(strip(serial), strip(remote)) if a != b) if len(serial) == len(remote) \
            else (len(serial), len(remote))
        raise KdlabError(f"the sweep's rows on Ray differ from the serial rows (first difference: {bad})")


def show(out: dict[str, Any]) -> str:
    m = out["median"]
    load = "/".join(f"{x:.1f}" for x in out["load_before"])
    return "\n".join([
        f"{out['dataset']}: a {len(out['temperatures'])} x {len(out['alphas'])} x 1 sweep, student {out['student']}, "
        f"{out['epochs']} epochs ({out['cells']} cells + 1 scratch twin); medians of {len(out['serial_s'])} repeats",
        f"serial (one run after another): {m['serial_s']:.1f} s",
        f"Ray, {out['workers']} workers: sweep {m['ray_sweep_s']:.1f} s -> {out['speedup']:.2f}x; with start-up and "
        f"shutdown {m['ray_command_s']:.1f} s -> {out['command_speedup']:.2f}x",
        f"Ray adds {out['ray_added_s']:.1f} s to a command: import {out['import_ray_s']:.1f} s, start (until its workers are warm) "
        f"{m['ray_start_s']:.1f} s, shutdown {m['ray_shutdown_s']:.1f} s",
        f"rows identical on every repeat: {'yes' if out['rows_identical'] else 'NO'}; {out['cpus']} CPUs, load "
        f"average {load} before (1/5/15 min), {out['load_after'][0]:.1f} after",
        f"as commands: {out['commands']['serial']}  vs  ... --ray local:{out['workers']}",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kdlab.serve.ray_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats of both arms (default: 3)")
    parser.add_argument("--dataset", default="fashion-mnist", help="default: fashion-mnist")
    parser.add_argument("--workers", type=int, default=WORKERS, help=f"the Ray arm's CPUs (default: {WORKERS})")
    parser.add_argument("--json", action="store_true", help="print the measurements as one JSON object")
    args = parser.parse_args(argv)
    try:
        out = run_ray_bench(args.dataset, repeats=args.repeats, workers=args.workers,
                            say=lambda line: sys.stderr.write(line + "\n"))
    except KdlabError as exc:
        sys.stderr.write(f"ray_bench: error: {exc}\n")
        return 2
    sys.stdout.write((json.dumps(out) if args.json else show(out)) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
