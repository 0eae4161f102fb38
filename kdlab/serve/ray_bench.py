"""What Ray adds to a command: ``python -m kdlab.serve.ray_bench overhead [--repeats N]``.

Each repeat runs the same tiny digits sweep twice in this process, interleaved: here (run_sweep's own
executor), and on a private local Ray started for it and shut down after (import, start, warm-up, the
sweep, shutdown: everything ``--ray local`` adds to a command). The sweep is tiny on purpose, so the
difference is Ray's fixed cost, not training. Prints one JSON object: per-repeat seconds and the medians;
the rows of both are checked to be identical.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time


def overhead(repeats: int) -> dict:
    import torch

    from kdlab.base.config import DistillConfig, TrainConfig
    from kdlab.data import load_dataset
    from kdlab.runs.sweep import run_sweep

    torch.set_num_threads(1)  # as the tasks run: the comparison is of the same work
    base = DistillConfig(teacher="mlp:32", student="mlp:8", train=TrainConfig(epochs=1, lr=3e-3),
                         teacher_train=TrainConfig(epochs=2))
    grid = ([1.0, 4.0], [0.5, 0.9], [0])
    data = load_dataset("digits")
    run_sweep(base, *grid, data=data)  # the teacher into the cache: neither arm trains it
    t0 = time.perf_counter()
    import ray  # noqa: F401  (part of what --ray costs a command)
    import_seconds = time.perf_counter() - t0
    out = {"import_ray_s": import_seconds, "local_s": [], "ray_s": [], "start_s": [], "shutdown_s": []}
    for _ in range(repeats):
        t0 = time.perf_counter()
        local = run_sweep(base, *grid, data=data)
        out["local_s"].append(time.perf_counter() - t0)
        rows, times = _on_ray(base, grid, data)
        for key, value in times.items():
            out[key].append(value)
        if [_same(r) for r in rows] != [_same(r) for r in local]:
            raise SystemExit("the rows on Ray differ from the local rows")
    med = {k: statistics.median(v) for k, v in out.items() if isinstance(v, list)}
    out["median"] = med
    out["added_s"] = import_seconds + med["ray_s"] - med["local_s"]  # what --ray local adds to a command
    return out


def _on_ray(base, grid, data):
    from kdlab.runs.sweep import run_sweep
    from kdlab.serve.ray_backend import RayCluster, executor

    t0 = time.perf_counter()
    cluster = RayCluster.connect("local")
    cluster.warm()
    t1 = time.perf_counter()
    rows = run_sweep(base, *grid, data=data, executor=executor(cluster))
    t2 = time.perf_counter()
    cluster.close()
    t3 = time.perf_counter()
    return rows, {"ray_s": t3 - t0, "start_s": t1 - t0, "shutdown_s": t3 - t2}


def _same(row: dict) -> dict:
    return {k: v for k, v in row.items() if k != "seconds"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kdlab.serve.ray_bench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("overhead", help="what a private local Ray adds to a command")
    p.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    if args.what == "overhead":
        json.dump(overhead(max(1, args.repeats)), sys.stdout, indent=1)
        sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
