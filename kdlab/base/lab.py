"""What one press of Run (or one ``kdlab distill``) sets up: a run's config, whether the scratch twin is trained,
and over how many seeds. Names and numbers only (its settings table is kdlab.runs.lab.LAB_SETTINGS)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from kdlab.base.config import DistillConfig

MAX_SEEDS = 5  # seeds of one Run press: each adds two trainings


@dataclass(frozen=True)
class Lab:
    config: DistillConfig = field(default_factory=DistillConfig)
    scratch: bool = True  # also train the same student without a teacher: the fair comparison
    seeds: int = 1  # seeds config.train.seed, +1, ...: the results show mean and spread

    def seed_configs(self) -> list[DistillConfig]:
        first = self.config.train.seed
        return [self.config.replace(train=dataclasses.replace(self.config.train, seed=first + k))
                for k in range(self.seeds)]
