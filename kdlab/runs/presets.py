"""Named lab set-ups: one click on the home page fills every setting of the Distill page.

Every preset runs on ``digits`` (offline, seconds on a 2-core CPU); the summary says what the original
experiment used, so a class can rerun it on MNIST by changing the dataset alone.
"""
from __future__ import annotations

from dataclasses import dataclass

from kdlab.base.config import DistillConfig, TrainConfig
from kdlab.base.registry import Registry
from kdlab.runs.lab import Lab


@dataclass(frozen=True)
class Preset:
    name: str
    config: DistillConfig
    summary: str  # one line for the home page
    scratch: bool = True  # also train the same student without a teacher
    expect: str = ""  # what the preset shows ("gain", "no gain", ...): a slow test checks it over 3 seeds

    @property
    def lab(self) -> Lab:
        return Lab(self.config, self.scratch)


PRESETS: Registry[Preset] = Registry("preset")
DEFAULT_PRESET = "Default"
# lr 3e-3: on digits' 12 batches per epoch, Adam at 1e-3 is still far from converged after 10 epochs.
_QUICK = TrainConfig(epochs=10, lr=3e-3)


def _add(name: str, config: DistillConfig, summary: str, scratch: bool = True) -> None:
    config.validate()
    PRESETS.register(name)(Preset(name, config, summary, scratch))


_add(DEFAULT_PRESET, DistillConfig(train=_QUICK),
     "digits, teacher mlp:500 → student mlp:100, Hinton loss at T = 4, α = 0.9: done in a few seconds.")
_add("Source recipe", DistillConfig(loss="source", temperature=1.0, loss_params={"lam": 0.1}, train=_QUICK),
     "The source tutorial: teacher mlp:500, student mlp:100, CE + λ·KL(teacher ‖ student) with λ = 0.1, "
     "at T = 1 (its sign error fixed).")
_add("Hinton 2015", DistillConfig(teacher="mlp:1200-1200", student="mlp:800-800", temperature=20.0, alpha=0.9,
                                  train=TrainConfig(epochs=10, lr=1e-3)),
     "Hinton, Vinyals & Dean's MNIST pair: teacher 1200-1200, student 800-800, T = 20.")
_add("Small transfer set", DistillConfig(transfer_size=300, train=TrainConfig(epochs=40, lr=3e-3)),
     "The student sees only 300 training images; the teacher's soft targets carry what the rest would have taught.")
_add("Tiny student", DistillConfig(student="mlp:30", temperature=3.0, train=TrainConfig(epochs=20, lr=3e-3)),
     "A student of 30 hidden units: the paper found T between 2.5 and 4 best for students this small.")


def preset_names() -> list[str]:
    return PRESETS.names()


def get_preset(name: str) -> Preset:
    """The preset ``name``; ConfigError listing the valid names otherwise."""
    return PRESETS.get(name)
