"""Multi-run experiments after Hinton, Vinyals & Dean (2015), "Distilling the Knowledge in a Neural Network":
the settings where distillation visibly helps (a small transfer set, an omitted class, temperature against
student size), the project's source recipe, and the paper's MNIST headline.

Each experiment is a *plan* (a pure function: settings and seeds -> the student runs to make) and a *report*
(the finished runs -> its JSON section). ``run_experiment`` executes the plan through ``run_distill`` on one
loaded dataset; the teacher comes from the cache, so it is trained once across arms, seeds and experiments.

Every number in a report is measured; the paper's numbers sit under ``"paper"`` and are labelled as such.
Accuracies are fractions in [0, 1]; ``std`` is the sample standard deviation over seeds (0 for one seed).
"""

from kdlab.experiments import core
from kdlab.experiments.core import (
    EXPERIMENTS, MAX_SEEDS, Experiment, Settings, bias_curve, check_request, experiment_names, override,
    run_experiment,
)

# Each module registers its experiment when imported; this order is the order of the CLI and the app.
from kdlab.experiments import small_transfer, omitted_class, temperature_size, source_recipe  # noqa: F401,I001
from kdlab.experiments import hinton_mnist  # noqa: F401

__all__ = ["core", "EXPERIMENTS", "MAX_SEEDS", "Experiment", "Settings", "bias_curve", "check_request",
           "experiment_names", "override", "run_experiment"]
