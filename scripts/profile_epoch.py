"""Where a single student's epoch goes: engine.train (mlp:100, hinton T = 4, alpha = 0.9, batch 128, one
thread) with its lean step (a stack of one) and with the autograd loop (``engine.LEAN = False``), against the
matmul floor at the student's shapes (the two layers' forward and backward matmuls alone, as nn.Linear runs
them), alternating in one process; medians. ``--profile`` adds the torch profiler's table of each way.

    python -m scripts.profile_epoch [--dataset fashion-mnist] [--repeats 7] [--profile]   (from the repository root)
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from kdlab.base.config import TrainConfig
from kdlab.data import load_dataset
from kdlab.training import engine
from kdlab.training.engine import Split, train
from kdlab.training.losses import make_loss
from kdlab.training.models import build_model

BATCH, HIDDEN = 128, 100


def epoch(data, split: Split, lean: bool, steps: int | None = None) -> float:
    engine.LEAN = lean
    torch.manual_seed(0)
    model = build_model(f"mlp:{HIDDEN}", data.input_shape, data.num_classes)
    cfg = TrainConfig(epochs=1, steps=steps, batch_size=BATCH, schedule="constant")
    t0 = time.perf_counter()
    for _ in train(model, split, make_loss("hinton", temperature=4.0, alpha=0.9), cfg):
        pass
    return time.perf_counter() - t0


def floor(data) -> float:
    """One epoch of the matmuls alone: x W1ᵀ, h W2ᵀ forward; g2ᵀ h, g2 W2, g1ᵀ x backward (no input grad)."""
    d, c = data.x_train[0].numel(), data.num_classes
    x, h = torch.randn(BATCH, d), torch.randn(BATCH, HIDDEN)
    w1, w2 = torch.randn(HIDDEN, d), torch.randn(c, HIDDEN)
    g1, g2 = torch.randn(BATCH, HIDDEN), torch.randn(BATCH, c)
    t0 = time.perf_counter()
    for _ in range(-(-len(data.x_train) // BATCH)):
        F.linear(x, w1), F.linear(h, w2), g2.t() @ h, g2 @ w2, g1.t() @ x
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--profile", action="store_true")
    a = p.parse_args()
    torch.set_num_threads(1)  # what engine.train picks for this student
    data = load_dataset(a.dataset)
    split = Split(data.x_train, data.y_train, torch.randn(len(data.x_train), data.num_classes))
    times: dict[str, list[float]] = {"autograd loop": [], "lean step": [], "matmul floor": []}
    for _ in range(a.repeats):
        times["autograd loop"].append(epoch(data, split, False))
        times["lean step"].append(epoch(data, split, True))
        times["matmul floor"].append(floor(data))
    med = {k: statistics.median(v) for k, v in times.items()}
    for k, v in med.items():
        print(f"{a.dataset}: {k:14s} {v:.3f} s per epoch  {v / med['matmul floor']:.2f}x the floor")
    if a.profile:
        from torch.profiler import ProfilerActivity, profile

        for lean in (False, True):
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                epoch(data, split, lean, steps=200)
            print(f"--- {'lean step' if lean else 'autograd loop'}, 200 steps")
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))
    engine.LEAN = True


if __name__ == "__main__":
    main()
