"""tqdm progress bars on stderr for the CLI, fed by engine events."""
from __future__ import annotations

import sys

from tqdm import tqdm

from kdlab.training.engine import Event


class Bars:
    """One bar per role (teacher, distilled, scratch), created on the role's first event."""

    def __init__(self, disable: bool = False):
        self.disable = disable
        self.bars: dict[str, tqdm] = {}

    def role_callback(self, role: str, event: Event) -> None:
        bar = self.bars.get(role)
        if bar is None:
            bar = self.bars[role] = tqdm(total=event.total_steps, desc=role, unit="step", file=sys.stderr,
                                         disable=self.disable, leave=False)
        bar.update(event.step - bar.n)
        if event.kind == "epoch":
            shown = {k: f"{v:.3f}" for k, v in event.metrics.items() if k in ("train_loss", "test_accuracy")}
            bar.set_postfix(epoch=event.epoch, **shown)

    def callback(self, role: str):
        return lambda event: self.role_callback(role, event)

    def __enter__(self) -> "Bars":
        return self

    def __exit__(self, *exc) -> None:
        for bar in self.bars.values():
            bar.close()
