"""Wall time and results of the experiments before and after stacking, alternating in one process:

* before: every student alone through engine.train's autograd loop (``engine.LEAN = False``), run_all serial;
* after: the defaults (run_all stacks where ``stacked_pays``; single students take the lean step).

    python -m scripts.experiments_ab [--dataset fashion-mnist] [--seeds 3] [--repeats 1] [NAME ...]

(from the repository root; with the teachers cached, as docs/RESULTS.md times them: the first call of each
experiment below trains or loads its teacher untimed). Prints per experiment the medians, their ratio, and the
largest difference of an arm's mean accuracy and of any per-seed accuracy between the two ways, in points.
"""
from __future__ import annotations

import argparse
import statistics
import time

from kdlab import experiments as ex
from kdlab.data import load_dataset
from kdlab.runs import batch
from kdlab.runs.teacher import RunStopped
from kdlab.training import engine


def run(name: str, data, seeds: int, after: bool) -> tuple[float, dict]:
    engine.LEAN = after
    with batch.stacking(None if after else False):
        t0 = time.perf_counter()
        out = ex.run_experiment(name, dataset=data.name, seeds=seeds, data=data)
        return time.perf_counter() - t0, out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("names", nargs="*", default=ex.experiment_names())
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--repeats", type=int, default=1)
    a = p.parse_args()
    data = load_dataset(a.dataset)
    totals = {"before": 0.0, "after": 0.0}
    for name in a.names:
        try:  # its teacher, trained or loaded untimed; the students stop at once
            ex.run_experiment(name, dataset=a.dataset, seeds=1, data=data, max_seconds=0.01)
        except RunStopped:
            pass
        times: dict[str, list[float]] = {"before": [], "after": []}
        outs = {}
        for _ in range(a.repeats):
            for way in ("before", "after"):
                seconds, outs[way] = run(name, data, a.seeds, way == "after")
                times[way].append(seconds)
        med = {k: statistics.median(v) for k, v in times.items()}
        for k in totals:
            totals[k] += med[k]
        arms_b, arms_a = outs["before"]["arms"], outs["after"]["arms"]
        mean_diff = max(100 * abs(arms_b[k]["mean"] - arms_a[k]["mean"]) for k in arms_b)
        seed_diff = max(100 * abs(x - y) for k in arms_b for x, y in zip(arms_b[k]["per_seed"], arms_a[k]["per_seed"]))
        print(f"{a.dataset} {name:17s} before {med['before']:7.1f} s  after {med['after']:7.1f} s  "
              f"ratio {med['before'] / med['after']:4.2f}  arm means differ by <= {mean_diff:.2f} pp, "
              f"per-seed by <= {seed_diff:.2f} pp", flush=True)
        for arm, b in arms_b.items():
            print(f"    {arm:18s} before {100 * b['mean']:5.1f}  after {100 * arms_a[arm]['mean']:5.1f}")
    print(f"{a.dataset} all: before {totals['before']:.1f} s, after {totals['after']:.1f} s, "
          f"ratio {totals['before'] / totals['after']:.2f}")


if __name__ == "__main__":
    main()
