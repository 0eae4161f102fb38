"""A grid of distillation runs over temperature × alpha × seed for one teacher/student pair.

The teacher is trained (or loaded) once; the scratch student depends only on the seed, so it is trained
once per seed and its accuracy reused across every (T, alpha) cell of that seed.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import itertools
import math
import statistics
from typing import Any, Callable, Hashable, Sequence

from kdlab.base.config import DistillConfig
from kdlab.base.errors import ConfigError
from kdlab.data import Dataset, load_dataset
from kdlab.runs.batch import Run, run_all
from kdlab.runs.distill import RunResult, validate

MAX_CELLS = 60  # a sweep is one job on one worker: bound its length
COLUMNS = ("temperature", "alpha", "seed", "student_accuracy", "scratch_accuracy", "gain", "agreement", "seconds")
ProgressFn = Callable[[str, Any], None]  # ("cell", (done, total, row)) or (role, engine Event)


def grid(temperatures: Sequence[float], alphas: Sequence[float],
         seeds: Sequence[int]) -> list[tuple[float, float, int]]:
    """Every (T, alpha, seed), seed-major so each seed's scratch run comes first."""
    return [(float(t), float(a), int(s)) for s, t, a in itertools.product(seeds, temperatures, alphas)]


def validate_grid(base: DistillConfig, temperatures: Sequence[float], alphas: Sequence[float],
                  seeds: Sequence[int]) -> list[DistillConfig]:
    """The configs of the sweep; ConfigError for an empty or oversized grid or an invalid cell."""
    if not temperatures or not alphas or not seeds:
        raise ConfigError("a sweep needs at least one temperature, one alpha and one seed")
    cells = grid(sorted(set(temperatures)), sorted(set(alphas)), sorted(set(seeds)))
    if len(cells) > MAX_CELLS:
        raise ConfigError(f"the sweep has {len(cells)} runs; at most {MAX_CELLS} are allowed (drop some values)")
    configs = [base.replace(temperature=t, alpha=a, train=dataclasses.replace(base.train, seed=s)) for t, a, s in cells]
    for cfg in configs:
        validate(cfg)
    return configs


def run_sweep(base: DistillConfig, temperatures: Sequence[float], alphas: Sequence[float], seeds: Sequence[int], *,
              data: Dataset | None = None, on_progress: ProgressFn | None = None,
              should_stop: Callable[[], bool] | None = None) -> list[dict[str, float]]:
    """One row per finished cell (see COLUMNS), each reported as a "cell" progress event. A stop ends the sweep
    early with the rows reported so far."""
    configs = validate_grid(base, temperatures, alphas, seeds)
    data = data or load_dataset(base.dataset)
    first_of_seed = {cfg.train.seed: i for i, cfg in reversed(list(enumerate(configs)))}
    runs = [Run(i, cfg, scratch=first_of_seed[cfg.train.seed] == i) for i, cfg in enumerate(configs)]
    rows: list[dict[str, float]] = []
    scratch: dict[int, float] = {}

    def progress(key: Hashable, role: str, event: Any) -> None:
        if on_progress is not None:
            on_progress(role, event)

    by_seed: dict[int, list[Run]] = {}
    for run in runs:
        by_seed.setdefault(run.config.train.seed, []).append(run)
    for seed_runs in by_seed.values():  # a seed's cells train together: stacked by run_all where that pays
        results = run_all(seed_runs, data, on_progress=progress, should_stop=should_stop)
        for run in seed_runs:  # rows in grid order; a stop asked for after a row was reported ends the sweep there
            if run.key not in results or rows and should_stop is not None and should_stop():
                return rows
            rows.append(_row(run.config, results[run.key], scratch))
            if on_progress is not None:
                on_progress("cell", (len(rows), len(runs), rows[-1]))
    return rows


def _row(cfg: DistillConfig, res: RunResult, scratch: dict[int, float]) -> dict[str, float]:
    seed = cfg.train.seed
    if res.scratch is not None:
        scratch[seed] = res.scratch.test_accuracy
    return {"temperature": cfg.temperature, "alpha": cfg.alpha, "seed": seed,
            "student_accuracy": res.distilled.test_accuracy, "scratch_accuracy": scratch[seed],
            "gain": res.distilled.test_accuracy - scratch[seed], "agreement": res.distilled.agreement,
            "seconds": res.distilled.seconds}


def pivot(rows: Sequence[dict[str, float]], value: str) -> tuple[list[float], list[float], list[list[float | None]]]:
    """(temperatures, alphas, z) with z[i][j] the mean of ``value`` over seeds at (T_i, alpha_j); None if absent."""
    temps = sorted({r["temperature"] for r in rows})
    alphas = sorted({r["alpha"] for r in rows})
    z = [[_mean([r[value] for r in rows if r["temperature"] == t and r["alpha"] == a]) for a in alphas] for t in temps]
    return temps, alphas, z


def to_csv(rows: Sequence[dict[str, float]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _mean(values: list[float]) -> float | None:
    values = [v for v in values if v is not None and math.isfinite(v)]
    return statistics.fmean(values) if values else None
