"""Checking what the presets claim: each preset over several seeds, judged as the Distill page judges a run
(kdlab.runs.verdict), and the table of docs/RESULTS.md. Used by ``kdlab presets --measure`` and the slow test."""
from __future__ import annotations

import dataclasses
import statistics
import time
from dataclasses import dataclass

from kdlab.data import load_dataset
from kdlab.runs.batch import Run, run_all
from kdlab.runs.presets import GAIN, Preset
from kdlab.runs.verdict import CLEAR_GAIN, Verdict, judge


@dataclass(frozen=True)
class Outcome:
    preset: str
    expect: str
    verdict: Verdict
    distilled: list[float]  # test accuracy per seed
    scratch: list[float]
    omitted: dict[str, float]  # mean accuracy on the omitted classes by role (empty without one)
    seconds: float  # wall time of every seed's twins, the teacher cached

    @property
    def holds(self) -> bool:
        return (self.verdict.kind == CLEAR_GAIN) == (self.expect == GAIN)


def measure(preset: Preset, seeds: int = 3) -> Outcome:
    lab = dataclasses.replace(preset.lab, seeds=seeds)
    data = load_dataset(lab.config.dataset)
    run_all([Run("teacher", lab.config, scratch=False)], data)  # the teacher is cached before the timing starts
    t0 = time.perf_counter()
    results = run_all([Run(k, cfg, True) for k, cfg in enumerate(lab.seed_configs())], data)
    seconds = time.perf_counter() - t0
    d = [r.distilled.test_accuracy for r in results.values()]
    s = [r.scratch.test_accuracy for r in results.values()]
    omitted = {role: statistics.fmean(getattr(r, role).per_class_accuracy[c] for r in results.values()
                                      for c in lab.config.omit_classes)
               for role in ("distilled", "scratch") if lab.config.omit_classes}
    return Outcome(preset.name, preset.expect, judge(d, s, len(data.y_test)), d, s, omitted, seconds)


def markdown(outcomes: list[Outcome]) -> str:
    """The table of docs/RESULTS.md: every preset, its claim, what 3 seeds gave."""
    rows = ["| preset | claims | distilled | scratch | gain (points) | per-seed gains | test images | verdict | holds |",
            "|---|---|---|---|---|---|---|---|---|"]
    for o in outcomes:
        v = o.verdict
        rows.append(f"| {o.preset} | {o.expect} | {_spread(o.distilled)} | {_spread(o.scratch)} | "
                    f"{100 * v.gain:+.1f} ± {100 * v.spread:.1f} | {', '.join(f'{100 * g:+.1f}' for g in v.per_seed)} | "
                    f"{v.images:+.0f} of {v.test_size} | {v.kind} | {'yes' if o.holds else '**no**'} |")
    return "\n".join(rows)


def _spread(values: list[float]) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.fmean(values):.1f} ± {100 * std:.1f}"
