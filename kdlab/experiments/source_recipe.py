"""Experiment 4, the project's source recipe (CE + 0.1·KL at T = 1, its sign error fixed) against
Hinton's loss at a few temperatures."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Hashable

from kdlab.data import Dataset
from kdlab.runs.distill import RunResult, scratch_config
from kdlab.experiments.core import DIGITS_TEACHER, Run, Settings, arm, register, stats_only


@dataclass(frozen=True, kw_only=True)
class SourceRecipe(Settings):
    lam: float = 0.1  # the source document's weight of its (T = 1) KL term
    temperatures: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)  # hinton at these, against the source recipe


SOURCE_RECIPE = {
    # the source's architectures (teacher mlp:500, student mlp:100) on a 1000-image transfer set, where the
    # teacher's contribution is large enough to compare recipes
    "fashion-mnist": SourceRecipe(teacher="mlp:500", teacher_epochs=3, student="mlp:100", transfer_size=1000,
                                  steps=2000, lr=3e-3, batch_size=32),
    "digits": SourceRecipe(**DIGITS_TEACHER, student="mlp:100", transfer_size=300, steps=600, lr=3e-3,
                           batch_size=32),
}
SOURCE_RECIPE["mnist"] = SOURCE_RECIPE["fashion-mnist"]


def _plan_source_recipe(s: SourceRecipe, data: Dataset, seeds: list[int]) -> list[Run]:
    runs = []
    for seed in seeds:
        runs.append(Run(("source", seed), s.config(data, seed, loss="source", temperature=1.0, alpha=0.0,
                                                   loss_params={"lam": s.lam}), scratch=True))
        runs += [Run(("hinton", t, seed), s.config(data, seed, temperature=float(t)), scratch=False)
                 for t in s.temperatures]
    return runs


def _report_source_recipe(s: SourceRecipe, data: Dataset, seeds: list[int],
                          runs: dict[Hashable, RunResult]) -> dict[str, Any]:
    """The project's source tutorial distils with CE(y) + 0.1·KL(teacher ‖ student) at T = 1 (its sign error
    fixed): a small weight on the teacher's unsoftened outputs, which are almost one-hot, so the student learns
    little more than the labels. Hinton's loss softens both sides with a temperature, weights the soft term
    by α·T², and so passes on the teacher's similarities between classes. Same teacher, student, transfer set
    and budget for every arm."""
    src = [runs[("source", seed)] for seed in seeds]
    arms = {"scratch": arm([r.scratch for r in src], scratch_config(src[0].config)),
            "source": arm([r.distilled for r in src], src[0].config)}
    by_t = []
    for t in s.temperatures:
        rs = [runs[("hinton", t, seed)] for seed in seeds]
        arms[f"hinton T={t:g}"] = a = arm([r.distilled for r in rs], rs[0].config)
        by_t.append({"temperature": t, **stats_only(a)})
    return {"arms": arms, "by_temperature": by_t, "best_arm": max(arms, key=lambda k: arms[k]["mean"])}


register("source-recipe", "The source recipe against Hinton's loss", SOURCE_RECIPE, _plan_source_recipe,
          _report_source_recipe,
          {"source": "the project's source tutorial (teacher mlp:500, student mlp:100, CE + 0.1·KL at T = 1); "
                     "it publishes no accuracies to compare with"})
