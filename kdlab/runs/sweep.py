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
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Sequence

from kdlab.base.config import DistillConfig
from kdlab.base.errors import ConfigError
from kdlab.base.settings import Setting
from kdlab.data import Dataset, load_dataset
from kdlab.runs.batch import Executor, Run, run_all
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
              should_stop: Callable[[], bool] | None = None, executor: Executor = run_all) -> list[dict[str, float]]:
    """One row per finished cell (see COLUMNS), in grid order. A stop ends the sweep early with the rows done
    so far. ``executor`` trains the cells: by default here, one after another (kdlab.serve.ray_backend has one
    that runs them on a Ray cluster)."""
    configs = validate_grid(base, temperatures, alphas, seeds)
    data = data or load_dataset(base.dataset)
    first_of_seed = {cfg.train.seed: i for i, cfg in reversed(list(enumerate(configs)))}
    runs = [Run(i, cfg, scratch=first_of_seed[cfg.train.seed] == i) for i, cfg in enumerate(configs)]
    pending: dict[Hashable, RunResult] = {}  # finished cells waiting for their seed's scratch run
    rows: dict[Hashable, dict[str, float]] = {}
    scratch: dict[int, float] = {}

    def progress(key: Hashable, role: str, event: Any) -> None:
        if on_progress is not None:
            on_progress(role, event)

    def finished(key: Hashable, result: RunResult) -> None:  # a row as soon as its cell and its seed's scratch are done
        pending[key] = result
        if result.scratch is not None:
            scratch[configs[key].train.seed] = result.scratch.test_accuracy
        for i in sorted(k for k in pending if configs[k].train.seed in scratch):
            rows[i] = _row(configs[i], pending.pop(i), scratch)
            if on_progress is not None:
                on_progress("cell", (len(rows), len(runs), rows[i]))

    for key, result in executor(runs, data, on_progress=progress, should_stop=should_stop,
                                on_result=finished).items():
        if key not in rows and key not in pending:  # an executor that returned it without reporting it
            finished(key, result)
    return [rows[i] for i in sorted(rows)]


def _row(cfg: DistillConfig, res: RunResult, scratch: dict[int, float]) -> dict[str, float]:
    seed = cfg.train.seed
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


# -- the grid's settings table (the Sweep page's widgets and URL, and the CLI's flags) -------------------------

T_OPTIONS = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 20.0, 30.0)
ALPHA_OPTIONS = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)
MAX_SEEDS = 5


@dataclass(frozen=True)
class Grid:
    temperatures: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)
    alphas: tuple[float, ...] = (0.5, 0.9)
    seeds: int = 1  # seeds 0, 1, ...: each cell is averaged

    def seed_list(self) -> list[int]:
        return list(range(self.seeds))


GRID_SETTINGS = [
    Setting("temperatures", "temperatures", "Temperatures T", "Each T is one row of the heatmaps.", "floats",
            options=T_OPTIONS),
    Setting("alphas", "alphas", "α values", "Each α is one column of the heatmaps.", "floats", options=ALPHA_OPTIONS),
    Setting("seeds", "seeds", "Seeds", "Seeds 0, 1, …: each cell is the mean over them.", "int", 1, MAX_SEEDS, 1),
]
