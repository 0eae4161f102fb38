"""Many student runs on one dataset: the seam that sweeps and experiments share, and where faster ways to
train many students (stacked, on a cluster) plug in without their callers changing."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Hashable, Sequence

from kdlab.base.config import DistillConfig
from kdlab.data import Dataset
from kdlab.runs.distill import RunResult, run_distill
from kdlab.runs.teacher import RunStopped
from kdlab.stores.teacher_cache import TeacherStore
from kdlab.training.engine import Event

RunProgress = Callable[[Hashable, str, Event], None]  # (run key, role, event); role as in run_distill
RunDone = Callable[[Hashable, RunResult], None]  # (run key, its result) as each run finishes


@dataclass(frozen=True)
class Run:
    key: Hashable  # how the caller finds this run's result, e.g. (T, alpha, seed)
    config: DistillConfig
    scratch: bool  # also train the same student without a teacher


def run_all(runs: Sequence[Run], data: Dataset, *, store: TeacherStore | None = None,
            on_progress: RunProgress | None = None, should_stop: Callable[[], bool] | None = None,
            keep_stopped: bool = False, on_result: RunDone | None = None) -> dict[Hashable, RunResult]:
    """The results of ``runs`` by key, in order; ``on_result`` hears of each as it finishes. A stop ends the
    batch early: the runs finished before it are returned, and the one it interrupted too (its students
    marked "stopped") if ``keep_stopped``; a caller tells a short result from a full one by length. Any
    function with this signature is an ``Executor``: callers that take one (run_sweep, run_experiment) run
    their batch on it instead, e.g. on a Ray cluster."""
    results: dict[Hashable, RunResult] = {}
    for run in runs:
        tagged = None if on_progress is None else functools.partial(on_progress, run.key)
        try:
            result = run_distill(run.config, scratch=run.scratch, data=data, store=store, on_progress=tagged,
                                 should_stop=should_stop)
        except RunStopped:
            break
        if any(s is not None and s.reason == "stopped" for s in (result.distilled, result.scratch)):
            if keep_stopped:
                results[run.key] = result
            break
        results[run.key] = result
        if on_result is not None:
            on_result(run.key, result)
    return results


Executor = Callable[..., dict[Hashable, RunResult]]  # run_all's signature: (runs, data, *, store, on_progress,
#                                                       should_stop, on_result)
