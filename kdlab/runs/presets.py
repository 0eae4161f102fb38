"""Named lab set-ups that tell distillation's story: one click on the home page fills every setting.

Each preset says what it shows (``expect``) and a slow test (tests/test_presets.py) runs it over 3 seeds and
checks the claim with the same verdict the Distill page gives (kdlab.runs.verdict); ``kdlab presets --measure``
prints the table of docs/RESULTS.md. Every preset runs on ``digits`` (offline, seconds on a 2-core CPU).
"""
from __future__ import annotations

from dataclasses import dataclass

from kdlab.base.config import DistillConfig, TrainConfig
from kdlab.base.lab import Lab
from kdlab.base.registry import Registry

GAIN, NO_GAIN = "gain", "no gain"  # a clear gain over the scratch twin on 3 seeds, or none (a loss included)


@dataclass(frozen=True)
class Preset:
    name: str
    config: DistillConfig
    summary: str  # one line for the home page: what to look for
    expect: str  # GAIN or NO_GAIN, checked over 3 seeds
    smaller_gain_than: str = ""  # another preset whose gain this one's stays below (the source recipe's)
    scratch: bool = True  # also train the same student without a teacher

    @property
    def lab(self) -> Lab:
        return Lab(self.config, self.scratch)


PRESETS: Registry[Preset] = Registry("preset")
DEFAULT_PRESET = "Default"
# Batch 32 and Adam at 3e-3 for 1 000 steps: the budget of the small-transfer experiment on digits (RESULTS.md);
# the scratch twin is flat beyond it, so the budget does not handicap it.
_BUDGET = TrainConfig(steps=1000, lr=3e-3, batch_size=32)


def _add(preset: Preset) -> None:
    preset.config.validate()
    PRESETS.register(preset.name)(preset)


_add(Preset(DEFAULT_PRESET, DistillConfig(transfer_size=50, train=_BUDGET), expect=GAIN, summary=(
    "Few labels: the student sees 50 of the 1 437 training images. From scratch it learns 50 labels; distilled it "
    "also learns the teacher's soft targets on them, which say how much each image resembles every digit.")))
_add(Preset("Omitted class", DistillConfig(loss="soft-only", temperature=8.0, alpha=1.0, omit_classes=(3,),
                                           use_labels=False, train=_BUDGET), expect=GAIN, summary=(
    "No 3 in the transfer set (Hinton 2015 §3). The scratch student never predicts a 3; the distilled one learns "
    "from soft targets alone and still gets most 3s right: other digits' soft targets say what looks like a 3.")))
_add(Preset("Tiny student", DistillConfig(student="mlp:10-10", temperature=3.0, transfer_size=300, train=_BUDGET),
            expect=GAIN, summary=(
    "A student of 10 + 10 hidden units on 300 images, at T = 3: a student this small does best at a middling "
    "temperature (try T = 20 on the Sweep page).")))
_add(Preset("Source recipe", DistillConfig(loss="source", temperature=1.0, loss_params={"lam": 0.1}, transfer_size=50,
                                           train=_BUDGET), expect=GAIN, smaller_gain_than=DEFAULT_PRESET, summary=(
    "The source tutorial's recipe (CE + 0.1·KL at T = 1, its sign error fixed) on the Default's 50 images: "
    "it helps, but far less than Hinton's softened targets.")))
_add(Preset("Every label", DistillConfig(train=_BUDGET), expect=NO_GAIN, summary=(
    "The twist: with all 1 437 labelled images a small student barely needs a teacher; here the scratch student "
    "even does a little better.")))


def preset_names() -> list[str]:
    return PRESETS.names()


def get_preset(name: str) -> Preset:
    """The preset ``name``; ConfigError listing the valid names otherwise."""
    return PRESETS.get(name)
