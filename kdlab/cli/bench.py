"""``kdlab bench``: one distillation epoch of the kdlab engine against the common tutorial loop.

Both run in this process on the same data, teacher and student architecture:

* tutorial: a per-example ``Dataset`` -> ``DataLoader(batch_size=128, shuffle=True)`` -> the teacher's
  forward pass on every batch -> the Hinton loss -> Adam;
* kdlab: ``engine.train`` on in-memory tensors with the teacher's logits precomputed once (cached).

Prints median epoch times over ``repeats``, their ratio, the cached-teacher load time and the peak RSS.

Its ``"stacked"`` section times a 16-cell sweep (T x alpha, one seed: 16 distilled students and a scratch
twin, mlp:100, 1 epoch each) per dataset, serially (every run alone through ``run_distill``) and stacked
(``kdlab.training.stacked``), alternating the two in this process; medians and their ratio.

``kdlab bench --playground`` measures the Playground instead (``run_playground_bench``, issue 11's targets).
"""
from __future__ import annotations

import os
import resource
import statistics
import sys
import time
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset as TorchDataset

from kdlab.stores.teacher_cache import TeacherStore
from kdlab.base.config import DistillConfig, TeacherConfig, TrainConfig
from kdlab.base.errors import ConfigError
from kdlab.data import load_dataset
from kdlab.runs import batch
from kdlab.runs.sweep import run_sweep
from kdlab.training.engine import Split, train
from kdlab.training.losses import make_loss
from kdlab.training.models import build_model, macs_per_example
from kdlab.training.threads import auto_threads
from kdlab.runs.teacher import MEMORY, get_teacher

STUDENT, TEACHER, BATCH = "mlp:100", "mlp:1200-1200", 128
TEACHER_TRAIN = TrainConfig(epochs=10)
MAX_REPEATS = 1000  # a full bench repeat is seconds on Fashion-MNIST; more would be hours
SWEEP_GRID = ((1.0, 2.0, 4.0, 8.0), (0.25, 0.5, 0.75, 0.9), (0,))  # 16 cells: temperatures, alphas, seeds
SWEEP_DATASETS = ("digits", "fashion-mnist")


class _PerExample(TorchDataset):
    """A lean per-example loop: images stored as uint8, each mapped back to its normalised float values
    on access (the affine map of ToTensor + Normalize), then collated by the DataLoader."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        self.low, self.scale = x.min().item(), (x.max() - x.min()).item() / 255
        self.images = ((x - self.low) / self.scale).round().to(torch.uint8).numpy()  # (N, *shape) uint8
        self.labels = y.tolist()

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return torch.from_numpy(self.images[i]).float() * self.scale + self.low, self.labels[i]


class _TorchvisionStyle(_PerExample):
    """The common tutorial way: ``datasets.FashionMNIST(transform=Compose([ToTensor(), Normalize(m, s)]))``.

    torchvision does not import beside this machine's torch wheel, so this replays, step for step, what
    torchvision 0.2x runs per item: ``MNIST.__getitem__`` (index the uint8 tensor, ``int()`` the target,
    ``Image.fromarray``), ``Compose``, ``ToTensor`` -> ``F.to_tensor`` and the ``nn.Module`` ``Normalize``
    -> ``F.normalize`` -> ``F_t.normalize``, each public function logging its API use once per call as
    torchvision does (its jit guards and type checks are skipped, so the replay is if anything cheaper).
    Its values are kdlab's normalised inputs up to uint8 quantisation, so both loops train on the same numbers.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        super().__init__(x, y)
        self.data = torch.from_numpy(self.images).reshape(len(self.images), *x.shape[-2:])  # (N, H, W) uint8
        self.targets = y.clone()  # (N,) int64, as torchvision keeps them
        mean, std = -self.low / (255 * self.scale), 1 / (255 * self.scale)  # recovers kdlab's normalisation
        self.transform = _Compose([_ToTensor(), _Normalize((mean,), (std,))])

    def __getitem__(self, index: int):
        img, target = self.data[index], int(self.targets[index])
        img = Image.fromarray(img.numpy(), mode="L")
        return self.transform(img), target


def _log_api_usage_once(fn) -> None:  # torchvision.utils._log_api_usage_once
    torch._C._log_api_usage_once(f"torchvision.transforms.functional.{fn.__name__}")


def _to_tensor(pic: Image.Image) -> torch.Tensor:  # torchvision.transforms.functional.to_tensor, PIL branch
    _log_api_usage_once(_to_tensor)
    mode_to_nptype = {"I": np.int32, "I;16": np.int16, "F": np.float32}
    img = torch.from_numpy(np.array(pic, mode_to_nptype.get(pic.mode, np.uint8), copy=True))
    img = img.view(pic.size[1], pic.size[0], len(pic.getbands()))
    img = img.permute((2, 0, 1)).contiguous()  # HWC -> CHW
    return img.to(dtype=torch.get_default_dtype()).div(255)


def _normalize(tensor: torch.Tensor, mean, std) -> torch.Tensor:  # F.normalize -> F_t.normalize
    _log_api_usage_once(_normalize)
    if not tensor.is_floating_point() or tensor.ndim < 3:
        raise TypeError("expected a float (C, H, W) image")
    tensor = tensor.clone()  # inplace=False
    mean = torch.as_tensor(mean, dtype=tensor.dtype, device=tensor.device)
    std = torch.as_tensor(std, dtype=tensor.dtype, device=tensor.device)
    if (std == 0).any():
        raise ValueError("std evaluated to zero")
    return tensor.sub_(mean.view(-1, 1, 1)).div_(std.view(-1, 1, 1))


class _ToTensor:
    def __call__(self, pic):
        return _to_tensor(pic)


class _Normalize(torch.nn.Module):
    def __init__(self, mean, std):
        super().__init__()
        self.mean, self.std = mean, std

    def forward(self, tensor):
        return _normalize(tensor, self.mean, self.std)


class _Compose:
    def __init__(self, transforms):
        self.transforms = transforms

    def __call__(self, img):
        for t in self.transforms:
            img = t(img)
        return img


def tutorial_epoch(teacher: torch.nn.Module, student: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                   dataset_cls: type[_PerExample] = _TorchvisionStyle) -> float:
    """One epoch of the reference loop: per-example dataset, DataLoader, the teacher run on every batch."""
    torch.set_num_threads(os.cpu_count() or 1)  # torch's default; kdlab's own run may have changed it
    loader = DataLoader(dataset_cls(x, y), batch_size=BATCH, shuffle=True)
    loss_fn = make_loss("hinton", temperature=4.0, alpha=0.9)
    opt = torch.optim.Adam(student.parameters(), lr=1e-3)
    t0 = time.perf_counter()
    for xb, yb in loader:
        with torch.no_grad():
            t = teacher(xb)
        out = loss_fn(student(xb), t, yb)
        opt.zero_grad()
        out.total.backward()
        opt.step()
    return time.perf_counter() - t0


def kdlab_epoch(student: torch.nn.Module, data: Split) -> float:
    cfg = TrainConfig(epochs=1, batch_size=BATCH, schedule="constant")
    t0 = time.perf_counter()
    for _ in train(student, data, make_loss("hinton", temperature=4.0, alpha=0.9), cfg):
        pass
    return time.perf_counter() - t0


def warm_up() -> None:
    """Pays once-per-process costs before timing: the first optimizer step imports torch._dynamo (~0.8 s)."""
    model = torch.nn.Linear(4, 2)
    opt = torch.optim.Adam(model.parameters(), fused=True)
    model(torch.randn(3, 4)).sum().backward()
    opt.step()


def cached_load_seconds(cfg: TeacherConfig, data, store: TeacherStore) -> float:
    MEMORY.clear()  # force the disk path: read, verify checksums, rebuild the module
    t0 = time.perf_counter()
    t = get_teacher(cfg, data, store)
    seconds = time.perf_counter() - t0
    assert t.source == "cache", t.source
    return seconds


def sweep_seconds(base: DistillConfig, data, stacked: bool) -> tuple[float, list[dict[str, float]]]:
    with batch.stacking(stacked):
        t0 = time.perf_counter()
        rows = run_sweep(base, *SWEEP_GRID, data=data)
        return time.perf_counter() - t0, rows


def stacked_section(datasets: tuple[str, ...], data_dir: str | None, repeats: int, say) -> dict[str, Any]:
    """Serial against stacked 16-cell sweeps, alternating in this process (the teacher trained or loaded first)."""
    out: dict[str, Any] = {"cells": 16, "student": STUDENT, "teacher": TEACHER, "epochs": 1, "batch_size": BATCH,
                           "grid": dict(zip(("temperatures", "alphas", "seeds"), SWEEP_GRID))}
    for name in datasets:
        data = load_dataset(name, data_dir)
        base = DistillConfig(dataset=name, teacher=TEACHER, student=STUDENT, teacher_train=TEACHER_TRAIN,
                             train=TrainConfig(epochs=1, batch_size=BATCH))
        run_sweep(base, [1.0], [0.5], [0], data=data)  # the teacher, and once-per-process costs, untimed
        times: dict[str, list[float]] = {"serial": [], "stacked": []}
        for i in range(repeats):
            if i % 2 == 0:  # the order alternates: neither way always runs second (on a warmer cache, a later minute)
                (s, serial), (t, stack) = sweep_seconds(base, data, False), sweep_seconds(base, data, True)
            else:
                (t, stack), (s, serial) = sweep_seconds(base, data, True), sweep_seconds(base, data, False)
            times["serial"].append(s)
            times["stacked"].append(t)
            say(f"{name} sweep {i + 1}/{repeats}: serial {s:.2f} s, stacked {t:.2f} s")
        diffs = [100 * abs(a[k] - b[k]) for a, b in zip(serial, stack)
                 for k in ("student_accuracy", "scratch_accuracy")]
        med = {k: statistics.median(v) for k, v in times.items()}
        out[name] = {"serial_s": med["serial"], "stacked_s": med["stacked"], "ratio": med["serial"] / med["stacked"],
                     "runs_s": times, "max_accuracy_difference_pp": max(diffs),
                     "mean_accuracy_difference_pp": statistics.fmean(diffs)}
    return out


def run_bench(dataset: str = "fashion-mnist", data_dir: str | None = None, repeats: int = 5,
              quiet: bool = False, sweeps: tuple[str, ...] = SWEEP_DATASETS) -> dict[str, Any]:
    if isinstance(repeats, bool) or not isinstance(repeats, int) or not 1 <= repeats <= MAX_REPEATS:
        raise ConfigError(f"repeats must be a whole number in [1, {MAX_REPEATS}] (a median needs one timing at "
                          f"least), got {repeats!r}")
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, file=sys.stderr))
    data = load_dataset(dataset, data_dir)
    store = TeacherStore()
    cfg = TeacherConfig(dataset=dataset, arch=TEACHER, train=TEACHER_TRAIN)
    say(f"teacher {TEACHER} on {dataset} (trained once, then cached) ...")
    teacher = get_teacher(cfg, data, store)
    load_s = statistics.median(cached_load_seconds(cfg, data, store) for _ in range(repeats))
    split = Split(data.x_train, data.y_train, teacher.train_logits)
    warm_up()
    new_student = lambda: build_model(STUDENT, data.input_shape, data.num_classes)  # noqa: E731
    kdlab_threads = auto_threads(macs_per_example(new_student(), data.input_shape), BATCH)
    times: dict[str, list[float]] = {"kdlab": [], "tutorial": [], "lean_loop": []}
    for i in range(repeats):
        torch.manual_seed(i)
        times["kdlab"].append(kdlab_epoch(new_student(), split))
        if i < max(1, repeats // 2):  # the reference loops are slow; fewer repeats still give a stable median
            for name, cls in (("tutorial", _TorchvisionStyle), ("lean_loop", _PerExample)):
                torch.manual_seed(i)
                times[name].append(tutorial_epoch(teacher.model, new_student(), data.x_train, data.y_train, cls))
        say(f"repeat {i + 1}/{repeats}: " + ", ".join(f"{k} {v[-1]:.3f} s" for k, v in times.items() if len(v) > i))
    med = {name: statistics.median(v) for name, v in times.items()}
    return {
        "dataset": dataset, "student": STUDENT, "teacher": TEACHER, "batch_size": BATCH,
        "kdlab_threads": kdlab_threads, "tutorial_threads": os.cpu_count(),
        "kdlab_epoch_s": med["kdlab"], "tutorial_epoch_s": med["tutorial"], "lean_loop_epoch_s": med["lean_loop"],
        "speedup": med["tutorial"] / med["kdlab"], "speedup_vs_lean_loop": med["lean_loop"] / med["kdlab"],
        "cached_teacher_load_s": load_s,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # Linux reports KiB
        "epochs_s": times,
        "stacked": stacked_section(sweeps, data_dir, repeats, say),
    }


# -- the Playground (kdlab bench --playground) -------------------------------------------------------------------

def _sent(fig) -> int:
    """Bytes of ``fig`` as st.plotly_chart sends it (``to_dict`` then JSON without validation): the page's cost."""
    import plotly.io

    return len(plotly.io.to_json(fig.to_dict(), validate=False))


def _timed(fn) -> tuple[float, float, Any]:
    """(wall seconds, CPU seconds of this process, result). On a shared machine the CPU time is close to what the
    wall time would be on an idle one: with one torch thread the process never runs on two cores at once."""
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - w0, time.process_time() - c0, out


def _student_figures(setup, snap) -> int:
    from kdlab.plots import playground as plots
    from kdlab.runs.playground import ARMS

    pts = setup.points()
    return sum(_sent(plots.boundary_figure(
        setup.grid.xs, setup.grid.ys, snap.arms[arm].probs, setup.data.classes,
        plots.arm_title(arm, snap.arms[arm].test_accuracy, snap.step), labelled_xy=pts["labelled_xy"],
        labelled_class=pts["labelled_class"], transfer_xy=None if arm == "scratch" else pts["transfer_xy"]))
        for arm in ARMS)


def _teacher_figure(setup, temperature: float) -> int:
    from kdlab.plots import playground as plots

    return _sent(plots.teacher_figure(setup.grid.xs, setup.grid.ys, setup.teacher_logits, temperature,
                                      setup.data.classes, test_accuracy=setup.teacher.test_accuracy, **setup.points()))


def run_playground_bench(dataset: str = "spirals", repeats: int = 5, effect: bool = True,
                         quiet: bool = False) -> dict[str, Any]:
    """Issue 11's numbers, in one process on one torch thread (as the app's workers run):

    * warm run: one Playground run with its teacher in memory (three students, snapshots included);
    * cold teacher: the same run's teacher trained into an empty cache (``prepare``: training plus the grid);
    * snapshot gaps: the longest wall-time gap between two snapshots of a warm run (the page redraws from them);
    * T redraw: the teacher's soft-target field at a new T, figure built and serialised as st.plotly_chart does
      (what the page's teacher panel does when T moves: no job, no forward pass);
    * live redraw: the three student figures of one snapshot, built and serialised (each poll while training);
    * effect: spirals, 10 labels, 3 seeds: soft - scratch and hard - scratch in points.

    Warm and cold runs are interleaved (the machine is shared and noisy) and reported as medians, with the load
    average before and after."""
    import tempfile

    from kdlab.runs.playground import PlaygroundConfig, prepare, run_playground_seeds, train_arms

    say = (lambda *a: None) if quiet else (lambda *a: print(*a, file=sys.stderr))
    torch.set_num_threads(1)
    warm_up()
    load_before = os.getloadavg()
    cfg = PlaygroundConfig(dataset=dataset)
    times: dict[str, list[float]] = {"warm": [], "warm_cpu": [], "cold": [], "cold_cpu": [], "gap": []}
    for i in range(repeats):
        MEMORY.clear()
        with tempfile.TemporaryDirectory() as root:
            seconds, cpu, setup = _timed(lambda: prepare(cfg, store=TeacherStore(root)))  # an empty cache: trains
            assert setup.teacher.source == "trained", setup.teacher.source
            times["cold"].append(seconds)
            times["cold_cpu"].append(cpu)
            setup = prepare(cfg, store=TeacherStore(root))  # from memory
            stamps: list[float] = []
            seconds, cpu, frames = _timed(lambda: [stamps.append(time.perf_counter()) or s for s in train_arms(setup)])
            times["warm"].append(seconds)
            times["warm_cpu"].append(cpu)
            times["gap"].append(max(b - a for a, b in zip(stamps, stamps[1:])))
        say(f"repeat {i + 1}/{repeats}: cold teacher {times['cold'][-1]:.2f} s, warm run {times['warm'][-1]:.2f} s")
    redraw = [_timed(lambda t=t: _teacher_figure(setup, t))[0] for t in (1, 2, 3, 4, 5, 8, 10, 15, 20) * 3]
    live = [_timed(lambda: _student_figures(setup, frames[-1]))[0] for _ in range(10)]
    med = {k: statistics.median(v) for k, v in times.items()}
    out: dict[str, Any] = {
        "section": "playground", "dataset": dataset, "repeats": repeats, "load_average": load_before,
        "warm_run_s": {"median": med["warm"], "all": times["warm"], "cpu_median": med["warm_cpu"]},
        "cold_teacher_extra_s": {"median": med["cold"], "all": times["cold"], "cpu_median": med["cold_cpu"]},
        "snapshots_per_run": len(frames), "max_snapshot_gap_s": max(times["gap"]),
        "teacher_redraw_ms": {"median": 1e3 * statistics.median(redraw), "max": 1e3 * max(redraw),
                              "json_kb": _teacher_figure(setup, 4.0) / 1e3},
        "live_redraw_3_students_ms": {"median": 1e3 * statistics.median(live),
                                      "json_kb": _student_figures(setup, frames[-1]) / 1e3},
    }
    if effect:
        say("effect: spirals, 10 labels, seeds 0, 1, 2 ...")
        with tempfile.TemporaryDirectory() as root:
            res = run_playground_seeds(PlaygroundConfig(dataset="spirals", labelled=10), [0, 1, 2],
                                       store=TeacherStore(root))
        out["effect_spirals_10_labels"] = {
            **{arm: res["arms"][arm]["per_seed"] for arm in ("scratch", "hard", "soft")},
            "teacher": res["teacher"]["per_seed"],
            "soft_minus_scratch_points": 100 * res["gain"]["soft_minus_scratch"],
            "hard_minus_scratch_points": 100 * res["gain"]["hard_minus_scratch"]}
    out["load_average_after"] = os.getloadavg()
    return out
