"""Did distillation help? A verdict over seeds that a class can trust: a gain is called clear only when every
seed agrees and the mean exceeds the seed-to-seed spread; it is also counted in test images, since one image
of digits' 360 is 0.28 points.

A verdict's kind is data (the CLI's JSON, comparisons, tests): its English value stays, marked for the catalog,
and a front end shows it with ``t(kind)``."""
from __future__ import annotations

import statistics
from dataclasses import dataclass

from kdlab.base.i18n import N_

CLEAR_GAIN, CLEAR_LOSS = N_("clear gain"), N_("clear loss")
NO_CLEAR_DIFFERENCE, ONE_SEED = N_("no clear difference"), N_("one seed")


@dataclass(frozen=True)
class Verdict:
    kind: str  # one of the four above
    gain: float  # mean over seeds of distilled − scratch test accuracy (a fraction)
    spread: float  # sample std of the per-seed gains (0 for one seed)
    per_seed: list[float]
    test_size: int

    @property
    def images(self) -> float:
        return self.gain * self.test_size


def judge(distilled: list[float], scratch: list[float], test_size: int) -> Verdict:
    """``distilled[i]`` and ``scratch[i]`` are the test accuracies of seed i's twins."""
    gains = [d - s for d, s in zip(distilled, scratch, strict=True)]
    mean = statistics.fmean(gains)
    spread = statistics.stdev(gains) if len(gains) > 1 else 0.0
    if len(gains) == 1:
        kind = ONE_SEED
    elif all(g > 0 for g in gains) and mean > spread:
        kind = CLEAR_GAIN
    elif all(g < 0 for g in gains) and -mean > spread:
        kind = CLEAR_LOSS
    else:
        kind = NO_CLEAR_DIFFERENCE
    return Verdict(kind, mean, spread, gains, test_size)
