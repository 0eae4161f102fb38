"""Measures when the stacked trainer pays: per-student step time of K students trained as one stack
(``kdlab.training.stacked.train_stacked``) against one student trained alone (``engine.train``), for the
calibration table ``kdlab.training.stacked.CALIBRATION``.

    python -m scripts.calibrate_stacked [--repeats 5] [--steps-seconds 0.3]   (from the repository root)

One process, each stacked measurement paired with a serial one just before it, medians of the pairs'
ratios; each student has its own seed and batch order (the
worst case for the stack: no shared first-layer matmul) and the thread count ``engine.train`` picks for one
student. Prints one row per (dataset, student) and the table as Python to paste.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from kdlab.base.config import TrainConfig
from kdlab.data import load_dataset
from kdlab.training.engine import Split, train
from kdlab.training.losses import make_loss
from kdlab.training.models import build_model
from kdlab.training.stacked import Student, kl_ce_form, linear_layers, train_stacked

SPECS = {"digits": ("mlp:10", "mlp:100", "mlp:300-300", "mlp:800-800"),
         "fashion-mnist": ("mlp:10-10", "mlp:100", "mlp:300-300", "mlp:800-800")}
KS = (2, 4, 8, 16)


def serial_step(data: Split, shape, spec: str, steps: int) -> float:
    torch.manual_seed(0)
    model = build_model(spec, shape, 10)
    cfg = TrainConfig(steps=steps, schedule="constant")
    t0 = time.perf_counter()
    for _ in train(model, data, make_loss("hinton", 4.0, 0.9), cfg):
        pass
    return (time.perf_counter() - t0) / steps


def stacked_step(data: Split, shape, spec: str, steps: int, k: int, sources: int) -> float:
    form = kl_ce_form("hinton", 4.0, 0.9, teacher=True, labels=True)
    students = []
    for i in range(k):
        torch.manual_seed(i % sources)
        cfg = TrainConfig(steps=steps, schedule="constant", seed=i % sources)
        students.append(Student(build_model(spec, shape, 10), torch.arange(len(data.x)), form, True, cfg))
    t0 = time.perf_counter()
    for _ in train_stacked(students, data):
        pass
    return (time.perf_counter() - t0) / steps / k


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--steps-seconds", type=float, default=0.3, help="about how long one serial measurement runs")
    p.add_argument("--shared", action="store_true", help="one seed for all students (a sweep's seed) instead")
    a = p.parse_args()
    table = []
    for name, specs in SPECS.items():
        ds = load_dataset(name)
        split = Split(ds.x_train, ds.y_train, torch.randn(len(ds.x_train), ds.num_classes))
        for spec in specs:
            probe = serial_step(split, ds.input_shape, spec, 20)  # also warms up
            steps = max(10, int(a.steps_seconds / probe))
            ratios: dict[int, list[float]] = {k: [] for k in KS}
            serial = []
            for _ in range(a.repeats):  # each stack against a serial run just before it: drift cancels
                for k in KS:
                    serial.append(serial_step(split, ds.input_shape, spec, steps))
                    ratios[k].append(serial[-1] / stacked_step(split, ds.input_shape, spec, steps, k,
                                                               1 if a.shared else k))
            s = statistics.median(serial)
            ratios = {k: round(statistics.median(v), 2) for k, v in ratios.items()}
            with torch.device("meta"):
                macs = sum(m.in_features * m.out_features
                           for m in linear_layers(build_model(spec, ds.input_shape, ds.num_classes)))
            width = split.x[0].numel()
            print(f"{name:14s} {spec:12s} width {width:4d} macs {macs:8d}  serial {1e3 * s:6.3f} ms/step  "
                  f"serial/stacked per student: " + "  ".join(f"K={k}: {r:.2f}" for k, r in ratios.items()),
                  flush=True)
            table.append((width, macs, ratios))
    print("CALIBRATION = (  # (input width, MACs per example, {K: serial / stacked time per student})")
    for width, macs, ratios in table:
        print(f"    ({width}, {macs}, {ratios}),")
    print(")")


if __name__ == "__main__":
    main()
