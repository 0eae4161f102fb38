"""The Playground's core: a teacher and three students on 2-D data, their decision regions on a grid.

On a toy set a class can watch what distillation transfers. The teacher learns from every training point and
its label (cached like every teacher). Three students of the same architecture, initial weights and batch
order then train side by side, in lockstep, on:

* ``scratch``: the ``labelled`` points alone (plain cross-entropy);
* ``hard``: the ``transfer`` points with the teacher's argmax as their label, plus the labelled points with
  their true labels (plain cross-entropy over all of them);
* ``soft``: the same points with the teacher's soft targets at T, plus the true labels of the labelled ones:
  ``alpha * T^2 * KL(teacher || student) + (1 - alpha) * CE``, where each term is the mean over the batch
  points that have it: KL over every point, CE over the labelled points of the batch (zero when it has none).
  With every point labelled this is exactly the ``hinton`` loss, and alpha = 0 is cross-entropy on the
  labels alone, as everywhere in kdlab. (A per-point mean instead would weigh a label like one soft
  target: ten labels among 2 000 transfer points, 0.6 in a batch of 128 on average, would all but vanish.)

The difference between ``hard`` and ``soft`` is the "dark knowledge": the same points and the same teacher,
only the teacher's relative probabilities are kept or thrown away.

``prepare`` gets the teacher and evaluates it once on the grid (``Setup.teacher_logits``: the page draws the
soft-target field at any T as a softmax of these, with no forward pass); ``train_arms`` yields a
``Snapshot`` of all three students every few steps (one forward pass over grid + test points per student);
``run_playground`` does both and keeps every snapshot; ``run_playground_seeds`` is the CLI's summary;
``find_setup`` is ``prepare`` for a teacher that is cached already (it never trains: the page's teacher panel).
``PLAYGROUND_SETTINGS`` is the one table of the Playground's settings: the page's widgets, its URL and the
``kdlab playground`` flags are built from it.
The three students are three engine runs advanced in lockstep (``_Lockstep``); a stacked trainer that runs
them as one batched model can replace that class without the callers changing.
"""
from __future__ import annotations

import dataclasses
import math
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from kdlab.base.record import Stats
from kdlab.base.config import TeacherConfig, TrainConfig, to_dict
from kdlab.base.errors import ConfigError
from kdlab.base.settings import Setting
from kdlab.data import Dataset, load_dataset
from kdlab.data.toys import MAX_SEED, NOISE_RANGE, POINTS_RANGE, TOYS, toy_name
from kdlab.runs.teacher import RunStopped, Teacher, find_teacher, get_teacher
from kdlab.stores.teacher_cache import TeacherStore
from kdlab.training.engine import Event, Split, step_event_interval, train
from kdlab.training.losses import LossOutput, log_softmax, make_loss, validate_loss_params
from kdlab.training.metrics import predict_logits
from kdlab.training.models import build_model, canonical_spec, parse_spec, validate_spec

ARMS = ("scratch", "hard", "soft")
LABELLED_RANGE = (5, 200)  # the few labels of the demonstration; stratified, so 5 still shows every class
STEPS_RANGE = (10, 10_000)  # 1 000 steps of mlp:16 take ~0.5 s per student on one core
GRID_RANGE = (10, 160)  # cells per side; 80 x 80 = 6 400 points is one ~0.2 ms forward pass for mlp:16
FRAMES_RANGE = (1, 200)
MAX_WIDTH, MAX_LAYERS = 256, 4  # the Playground trains live: small MLPs only
TEACHER_STEPS = 2000  # mlp:64-64 reaches 100 % test accuracy on spirals in ~1 s
TEACHER_LR = 1e-2
MAX_SECONDS = 120.0  # every run is bounded in wall time, whatever the steps say
LIVE_INTERVAL = 0.4  # seconds: a snapshot at least this often while training, for a live page (>= 2 a second)
UNLABELLED = -100  # the soft arm's label for a transfer point: F.nll_loss's ignore_index
GRID_MARGIN = 0.1  # the grid spans the data plus this share of its extent on every side


@dataclass(frozen=True)
class PlaygroundConfig:
    """One Playground run. Names and numbers only, so it can travel through a URL."""

    dataset: str = "spirals"  # a 2-D toy: moons, circles, spirals, xor, blobs
    noise: float | None = None  # None: the toy's own default (its meaning differs per toy, see kdlab.data.toys)
    seed: int = 0  # the data draw, the teacher, the labelled and transfer points, the students' weights and order
    points: int = 2000  # training points; the teacher learns from all of them, with their labels
    labelled: int = 10  # training points whose label every student sees
    transfer: int = 2000  # training points the teacher labels for the hard and soft students (all by default)
    teacher: str = "mlp:64-64"
    student: str = "mlp:16"
    temperature: float = 4.0
    alpha: float = 0.9  # weights the soft term, as everywhere in kdlab
    steps: int = 1000  # per student, the same budget for all three
    lr: float = 3e-2  # Adam, constant: as good at 1 000 steps as 1e-2 at 2 000 (spirals, 3 seeds), in half the time
    batch_size: int = 128
    grid: int = 80  # cells per side of the plane's grid
    frames: int = 50  # snapshots at evenly spaced steps (plus step 0): what a scrubber replays

    def validate(self) -> None:
        if self.dataset not in TOYS:
            raise ConfigError(f"the Playground draws 2-D data: dataset must be one of {', '.join(TOYS)}, "
                              f"got {self.dataset!r}")
        if self.noise is not None:
            _check_number("noise", self.noise, *NOISE_RANGE)
        _check_whole("seed", self.seed, 0, MAX_SEED)
        _check_whole("points", self.points, *POINTS_RANGE)
        _check_whole("labelled", self.labelled, LABELLED_RANGE[0], min(LABELLED_RANGE[1], self.points))
        _check_whole("transfer", self.transfer, 0, self.points)
        classes = len(TOYS[self.dataset].classes)
        for role in ("teacher", "student"):
            _check_small_mlp(role, getattr(self, role), classes)
        validate_loss_params("hinton", self.temperature, self.alpha)  # T finite > 0, alpha in [0, 1]
        _check_whole("steps", self.steps, *STEPS_RANGE)
        _check_number("lr", self.lr, 1e-5, 1.0)
        _check_whole("batch_size", self.batch_size, 1, 4096)
        _check_whole("grid", self.grid, *GRID_RANGE)
        _check_whole("frames", self.frames, *FRAMES_RANGE)

    @property
    def dataset_name(self) -> str:
        """The canonical dataset name (``spirals:noise=0.3:seed=2``): one teacher cache key per drawn set."""
        return toy_name(self.dataset, self.points, self.noise, self.seed)

    def teacher_config(self) -> TeacherConfig:
        train_cfg = TrainConfig(steps=TEACHER_STEPS, lr=TEACHER_LR, batch_size=128, seed=self.seed,
                                max_seconds=MAX_SECONDS)
        return TeacherConfig(dataset=self.dataset_name, arch=self.teacher, train=train_cfg)

    def student_train(self) -> TrainConfig:
        # A constant rate: cosine decay to zero stops the soft student before it has matched the teacher
        # (spirals, 10 labels, 3 seeds, 1 000 steps at 3e-2: soft 94.7 % with cosine, 99.7 % constant; at
        # 2 000 steps at 1e-2: 91.8 % and 99.1 %; scratch 50 % either way).
        return TrainConfig(steps=self.steps, lr=self.lr, batch_size=self.batch_size, seed=self.seed,
                           schedule="constant", max_seconds=MAX_SECONDS)

    def replace(self, **changes: Any) -> "PlaygroundConfig":
        return dataclasses.replace(self, **changes)

    def resolved(self) -> "PlaygroundConfig":
        """The same run with the noise written out (None: the toy's own), as a widget or a link shows it."""
        return self if self.noise is not None or self.dataset not in TOYS else self.replace(
            noise=TOYS[self.dataset].noise)


def _check_whole(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{name} must be a whole number in [{low}, {high}], got {value!r}")


def _check_number(name: str, value: Any, low: float, high: float) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not low <= value <= high:
        raise ConfigError(f"{name} must be a number in [{low:g}, {high:g}], got {value!r}")


def _check_small_mlp(role: str, spec: str, classes: int) -> None:
    validate_spec(spec, (2,), classes)  # the grammar; e.g. "cnn:small needs image inputs"
    parsed = parse_spec(spec)
    widths = [int(w) for w in parsed.arg.split("-")] if parsed.family == "mlp" else []
    if parsed.family not in ("linear", "mlp") or len(widths) > MAX_LAYERS or max(widths, default=0) > MAX_WIDTH:
        raise ConfigError(f"the Playground trains small networks live: the {role} must be 'linear' or an mlp "
                          f"of at most {MAX_LAYERS} layers of width <= {MAX_WIDTH} (e.g. mlp:16), got {spec!r}")


# ---------------------------------------------------------------------------------------------------------
# The settings table: the page's widgets and URL, the CLI's flags (kdlab.base.settings)

TEACHERS = ("mlp:16-16", "mlp:32-32", "mlp:64-64", "mlp:128-128")  # suggestions: any small mlp may be typed
STUDENTS = ("linear", "mlp:4", "mlp:8", "mlp:16", "mlp:32", "mlp:64")
LEARNING_RATES = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
BATCH_SIZES = (16, 32, 64, 128, 256, 512)
T_RANGE = (0.5, 20.0)  # a slider's range: past ~10 every toy's field is nearly flat, and 4 is not lost at one end


def _network(spec: str) -> str:
    """A typed network from a link or a flag: a small one, in its one canonical spelling (mlp:016 is mlp:16)."""
    _check_small_mlp("network", spec, 2)  # every toy's input is 2-D; an mlp fits any number of classes
    return canonical_spec(spec)


def _noise_help() -> str:
    return ("How far the points stray from the toy's shape, on the toy's own scale (spirals: radians of angle; "
            "the others: a coordinate's std). Each toy's default: "
            + ", ".join(f"{name} {toy.noise:g}" for name, toy in TOYS.items()) + ".")


PLAYGROUND_SETTINGS: list[Setting] = [
    Setting("dataset", "dataset", "Data set", "Five 2-D toys: the spirals need a teacher most, the blobs least.",
            "choice", options=tuple(TOYS), group="Data"),
    Setting("noise", "noise", "Noise", _noise_help(), "float", *NOISE_RANGE, 0.05, digits=2, group="Data"),
    Setting("labelled", "labelled", "Labelled points", "Training points whose label every student sees, as many "
            "of each class as can be.", "int", LABELLED_RANGE[0], lambda c: min(LABELLED_RANGE[1], c.points), 1,
            group="Data"),
    Setting("transfer", "transfer", "Transfer points", "Training points the teacher labels for the hard and soft "
            "students (drawn from all of them, so the labelled ones may be among them).", "int", 0,
            lambda c: c.points, 50, group="Data", flags=("--unlabelled",), aliases=("unlabelled",)),
    Setting("teacher", "teacher", "Teacher", "Trained once on every training point and its label, then cached. "
            f"Pick one, or type a small mlp (at most {MAX_LAYERS} layers of width {MAX_WIDTH}).", "spec",
            options=TEACHERS, check=_network, group="Models"),
    Setting("student", "student", "Student", "The one network of all three students (same initial weights).",
            "spec", options=STUDENTS, check=_network, group="Models"),
    Setting("temperature", "temperature", "Temperature T", "Softens the teacher's outputs: softmax(logits / T). "
            "The teacher's panel follows at once; the soft student learns at this T on the next Run.", "float",
            *T_RANGE, 0.1, digits=1, group="Distillation", flags=("-T",), aliases=("T",)),
    Setting("alpha", "alpha", "α (soft weight)", "How much the soft student listens to the teacher. Its loss: "
            "α · T² · KL(teacher ‖ student) + (1 − α) · cross-entropy on the labelled points.", "float", 0.0, 1.0,
            0.05, digits=2, group="Distillation"),
    Setting("steps", "steps", "Training steps", "Optimizer steps of each student, the same for all three.", "int",
            *STEPS_RANGE, 100, group="Training"),
    Setting("seed", "seed", "Seed", "Draws the data, the labelled and transfer points, the teacher and the "
            "students' initial weights.", "int", 0, 9999, 1, group="Training"),
    Setting("points", "points", "Training points", "The teacher learns from all of them, with their labels.",
            "int", *POINTS_RANGE, 500, group="Data", more=True),
    Setting("lr", "lr", "Learning rate", "Adam's step size for the students (constant).", "ladder",
            options=LEARNING_RATES, group="Training", more=True),
    Setting("batch_size", "batch_size", "Batch size", "Points per optimizer step.", "int", 1, 4096,
            options=BATCH_SIZES, group="Training", more=True),
    Setting("grid", "grid", "Grid cells per side", "The resolution of every panel's shading.", "int",
            *GRID_RANGE, 10, group="Display", more=True),
    Setting("frames", "frames", "Snapshots", "Evenly spaced steps the replay slider stops at.", "int",
            *FRAMES_RANGE, 10, group="Display", more=True),
]


# ---------------------------------------------------------------------------------------------------------
# Setup: data, teacher, the points each student sees, the grid


@dataclass(frozen=True)
class Grid:
    xs: np.ndarray  # (G,) x of the columns
    ys: np.ndarray  # (G,) y of the rows
    points: torch.Tensor  # (G*G, 2) row-major: point iy*G + ix is (xs[ix], ys[iy])

    @property
    def size(self) -> int:
        return len(self.xs)


@dataclass
class Setup:
    config: PlaygroundConfig
    data: Dataset = field(repr=False)
    teacher: Teacher = field(repr=False)
    grid: Grid = field(repr=False)
    teacher_logits: np.ndarray = field(repr=False)  # (G, G, C) float32: the field at T is softmax(logits / T)
    labelled: torch.Tensor = field(repr=False)  # (L,) training indices, sorted
    transfer: torch.Tensor = field(repr=False)  # (U,) training indices, sorted (may include labelled ones)
    teacher_seconds: float = 0.0  # getting the teacher: training it, or loading it

    def points(self) -> dict[str, np.ndarray]:
        """What a figure marks: the labelled points with their class, the transfer points not labelled."""
        x, y = self.data.x_train.numpy(), self.data.y_train.numpy()
        unlabelled = self.transfer[~torch.isin(self.transfer, self.labelled)].numpy()
        return {"labelled_xy": x[self.labelled.numpy()], "labelled_class": y[self.labelled.numpy()],
                "transfer_xy": x[unlabelled]}  # (L, 2), (L,), (U', 2)


def validate(cfg: PlaygroundConfig) -> None:
    """Every check that needs no data: ConfigError before any work starts."""
    if not isinstance(cfg, PlaygroundConfig):
        raise ConfigError(f"expected a PlaygroundConfig, got {type(cfg).__name__}")
    cfg.validate()


def prepare(cfg: PlaygroundConfig, *, data: Dataset | None = None, store: TeacherStore | None = None,
            on_teacher: Callable[[Event], None] | None = None,
            should_stop: Callable[[], bool] | None = None) -> Setup:
    """The data, the teacher (memory -> disk -> trained once) and its logits on the grid."""
    data = _checked_data(cfg, data)
    t0 = time.perf_counter()
    teacher = get_teacher(cfg.teacher_config(), data, store, on_teacher, should_stop)
    return _setup(cfg, data, teacher, time.perf_counter() - t0)


def find_setup(cfg: PlaygroundConfig, *, data: Dataset | None = None,
               store: TeacherStore | None = None) -> Setup | None:
    """``prepare`` if the teacher is in memory or the disk cache, else None: never trains (the page's teacher
    panel draws the field before any run, without a job)."""
    data = _checked_data(cfg, data)
    t0 = time.perf_counter()
    teacher = find_teacher(cfg.teacher_config(), data, store)
    return None if teacher is None else _setup(cfg, data, teacher, time.perf_counter() - t0)


def _checked_data(cfg: PlaygroundConfig, data: Dataset | None) -> Dataset:
    validate(cfg)
    data = data if data is not None else load_dataset(cfg.dataset_name)
    if data.name != cfg.dataset_name:
        raise ValueError(f"data is {data.name!r}, the config asks for {cfg.dataset_name!r}")
    return data


def _setup(cfg: PlaygroundConfig, data: Dataset, teacher: Teacher, teacher_seconds: float) -> Setup:
    grid = make_grid(data, cfg.grid)
    logits = predict_logits(teacher.model, grid.points)  # (G*G, C)
    labelled = labelled_indices(data.y_train, cfg.labelled, data.num_classes, cfg.seed)
    transfer = (data.transfer_indices(cfg.transfer, seed=2 * cfg.seed + 1) if cfg.transfer
                else torch.zeros(0, dtype=torch.int64))
    return Setup(cfg, data, teacher, grid, logits.reshape(grid.size, grid.size, -1).numpy(), labelled, transfer,
                 teacher_seconds)


def make_grid(data: Dataset, size: int) -> Grid:
    """A square grid over every training and test point, GRID_MARGIN of the extent added on each side."""
    x = torch.cat([data.x_train, data.x_test])  # (N + M, 2)
    lo, hi = x.min(0).values, x.max(0).values  # (2,), (2,)
    centre, half = (lo + hi) / 2, float((hi - lo).max()) / 2 * (1 + 2 * GRID_MARGIN)
    xs = torch.linspace(float(centre[0]) - half, float(centre[0]) + half, size)  # (G,)
    ys = torch.linspace(float(centre[1]) - half, float(centre[1]) + half, size)  # (G,)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")  # (G, G) each
    return Grid(xs.numpy(), ys.numpy(), torch.stack([gx.reshape(-1), gy.reshape(-1)], 1).contiguous())


def labelled_indices(y: torch.Tensor, n: int, num_classes: int, seed: int) -> torch.Tensor:
    """(n,) sorted training indices, stratified: n // C of each class and one more for n % C classes the
    seed picks; within a class a seeded random draw. (A class without a label is one a scratch student can
    never predict: that would show a sampling accident, not what the teacher adds.)"""
    gen = torch.Generator().manual_seed(2 * seed)  # 2*seed + 1 draws the transfer points
    order = torch.randperm(len(y), generator=gen)  # (N,)
    extra = set(torch.randperm(num_classes, generator=gen)[: n % num_classes].tolist())
    picks = []
    for c in range(num_classes):
        quota = n // num_classes + (c in extra)
        members = order[y[order] == c]  # (N_c,) in the seeded order
        if len(members) < quota:
            raise ConfigError(f"class {c} has {len(members)} training points; {quota} labelled ones were asked for")
        picks.append(members[:quota])
    return torch.cat(picks).sort().values


# ---------------------------------------------------------------------------------------------------------
# The three students


def soft_loss(temperature: float, alpha: float) -> Callable[..., LossOutput]:
    """``hinton`` for a batch mixing labelled and unlabelled points (label UNLABELLED): alpha weights
    T^2 * KL(teacher || student) averaged over every point, 1 - alpha the CE averaged over the labelled
    points of the batch (zero when there are none). The teacher side comes as log-probabilities at T
    (``teacher_log_targets``): they are constants, computed once rather than every step."""

    def loss(student: torch.Tensor, log_p: torch.Tensor, labels: torch.Tensor) -> LossOutput:
        log_q = log_softmax(student / temperature)  # (B, C)
        soft = temperature**2 * F.kl_div(log_q, log_p, log_target=True, reduction="batchmean")
        ce_sum = F.nll_loss(log_softmax(student), labels, ignore_index=UNLABELLED, reduction="sum")
        hard = ce_sum / (labels != UNLABELLED).sum().clamp(min=1)  # no .item(): no sync per step
        return LossOutput(alpha * soft + (1 - alpha) * hard, {"hard": hard.detach(), "soft": soft.detach()})

    return loss


def teacher_log_targets(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """(N, C) log softmax(logits / T): what ``soft_loss`` takes in place of the teacher's logits."""
    return log_softmax(logits / temperature).contiguous()


def arm_splits(setup: Setup) -> dict[str, Split]:
    """The training points of each student (see the module docstring)."""
    data, teacher = setup.data, setup.teacher
    lab = setup.labelled
    both = torch.unique(torch.cat([lab, setup.transfer]))  # (K,) sorted, labelled ones included
    is_lab = torch.isin(both, lab)  # (K,) bool
    true = data.y_train[both]  # (K,)
    pseudo = teacher.train_logits[both].argmax(1).where(~is_lab, true)  # (K,) teacher's argmax, true where labelled
    masked = torch.full_like(true, UNLABELLED).where(~is_lab, true)  # (K,)
    x = data.x_train[both].contiguous()
    return {"scratch": Split(data.x_train[lab].contiguous(), data.y_train[lab]),
            "hard": Split(x, pseudo),
            "soft": Split(x, masked, teacher_log_targets(teacher.train_logits[both], setup.config.temperature))}


@dataclass(frozen=True)
class ArmFrame:
    probs: np.ndarray  # (G, G, C) float16: the student's softmax on the grid
    step: int
    train_loss: float | None  # mean over the last engine window (steps // 200 steps; None at step 0): each
    # arm's own loss, so the soft arm's (with its T^2 * KL term) is not comparable with the other two
    test_accuracy: float


@dataclass(frozen=True)
class Snapshot:
    step: int  # the furthest step of the three (they differ only if a time limit hit them apart)
    total_steps: int
    seconds: float  # since the students started
    arms: dict[str, ArmFrame]
    final: bool = False
    reason: str = ""  # for the final snapshot: "completed", "stopped" or "time limit"

    def accuracies(self) -> dict[str, float]:
        return {arm: f.test_accuracy for arm, f in self.arms.items()}


def frame_steps(total: int, frames: int) -> list[int]:
    """The steps at which snapshots are planned: 0, then every k steps, and the last step. k is a multiple of
    the engine's step-event interval, the granularity at which the lockstep can pause."""
    grain = step_event_interval(total)
    k = grain * max(1, math.ceil(total / (frames * grain)))
    return sorted({*range(0, total, k), total})


class _Arm:
    """One student: its model and the engine's event stream, advanced to a step on demand."""

    def __init__(self, name: str, model: nn.Module, events: Iterator[Event]):
        self.name, self.model, self.events = name, model, events
        self.step, self.reason, self.loss = 0, "", None

    def advance(self, to_step: int) -> None:
        while not self.reason and self.step < to_step:
            event = next(self.events)
            if event.kind == "step":
                self.step, self.loss = event.step, event.metrics["train_loss"]
            elif event.kind == "done":
                self.step, self.reason = event.step, event.reason or "completed"


class _Lockstep:
    """The three students as three engine runs paused at the same steps. Same initial weights (the seed is
    set before each is built), same engine seed (so each arm's batch order is fixed by its own data).

    This is the seam for a stacked trainer (all three as one batched model, one backward a step): what
    ``train_arms`` needs is ``advance``, ``step``, ``done``, ``logits`` and, per arm, ``name``, ``step``,
    ``reason`` and ``loss``."""

    def __init__(self, setup: Setup, should_stop: Callable[[], bool] | None):
        cfg, data = setup.config, setup.data
        losses = {"scratch": make_loss("hinton", alpha=0.0), "hard": make_loss("hinton", alpha=0.0),
                  "soft": soft_loss(cfg.temperature, cfg.alpha)}
        self.arms = []
        for name, split in arm_splits(setup).items():
            torch.manual_seed(cfg.seed)
            model = build_model(cfg.student, data.input_shape, data.num_classes)
            self.arms.append(_Arm(name, model, train(model, split, losses[name], cfg.student_train(),
                                                     should_stop=should_stop)))

    def advance(self, to_step: int) -> None:
        for arm in self.arms:
            arm.advance(to_step)

    @property
    def step(self) -> int:
        """The step every running student has reached (the last step once all are done)."""
        return min((a.step for a in self.arms if not a.reason), default=max(a.step for a in self.arms))

    @property
    def done(self) -> bool:
        return all(arm.reason for arm in self.arms)

    def logits(self, probe: torch.Tensor) -> dict[str, torch.Tensor]:
        """(P, C) logits of every student on ``probe``: one forward pass each."""
        return {arm.name: predict_logits(arm.model, probe) for arm in self.arms}


def train_arms(setup: Setup, *, should_stop: Callable[[], bool] | None = None) -> Iterator[Snapshot]:
    """Train the three students in lockstep, yielding a Snapshot at step 0, at the planned steps (see
    ``frame_steps``), whenever LIVE_INTERVAL seconds passed without one, and a final one (``final=True``)."""
    cfg = setup.config
    lock = _Lockstep(setup, should_stop)
    probe = torch.cat([setup.grid.points, setup.data.x_test])  # (G*G + M, 2): one forward pass per snapshot
    grain = step_event_interval(cfg.steps)  # the engine pauses (yields a step event) this often
    t0 = last = time.perf_counter()
    yield _snapshot(setup, lock, probe, cfg.steps, 0.0)
    for target in frame_steps(cfg.steps, cfg.frames)[1:]:
        while not lock.done and lock.step < target:
            lock.advance(min(target, lock.step + grain))
            if lock.step < target and time.perf_counter() - last >= LIVE_INTERVAL:  # a slow stretch: keep it live
                last = time.perf_counter()
                yield _snapshot(setup, lock, probe, cfg.steps, last - t0)
        if lock.done:
            break
        if target < cfg.steps:  # the last step's snapshot is the final one, below
            last = time.perf_counter()
            yield _snapshot(setup, lock, probe, cfg.steps, last - t0)
    while not lock.done:  # the last steps, then the engine's done events
        lock.advance(cfg.steps + 1)
    yield _snapshot(setup, lock, probe, cfg.steps, time.perf_counter() - t0, final=True)


def _snapshot(setup: Setup, lock: _Lockstep, probe: torch.Tensor, total: int, seconds: float,
              final: bool = False) -> Snapshot:
    g, n_grid = setup.grid.size, setup.grid.size**2
    arms = {}
    all_logits = lock.logits(probe)
    for arm in lock.arms:
        logits = all_logits[arm.name]  # (G*G + M, C)
        probs = torch.softmax(logits[:n_grid], 1).reshape(g, g, -1).to(torch.float16).numpy()  # (G, G, C)
        acc = (logits[n_grid:].argmax(1) == setup.data.y_test).float().mean().item()
        arms[arm.name] = ArmFrame(probs, arm.step, arm.loss, acc)
    reason = ""
    if final:
        reasons = {a.reason for a in lock.arms}
        reason = next((r for r in ("stopped", "time limit") if r in reasons), "completed")
    return Snapshot(max(a.step for a in lock.arms), total, seconds, arms, final, reason)


# ---------------------------------------------------------------------------------------------------------
# Whole runs


@dataclass
class PlaygroundResult:
    setup: Setup
    frames: list[Snapshot]  # in order; the last is final
    seconds: float  # the students' training, snapshots included

    @property
    def final(self) -> Snapshot:
        return self.frames[-1]

    def summary(self) -> dict[str, Any]:
        t, final = self.setup.teacher, self.final
        return {"config": to_dict(self.setup.config), "dataset": self.setup.data.name,
                "teacher": {"test_accuracy": t.test_accuracy, "source": _source(t), "key": t.key,
                            "seconds": self.setup.teacher_seconds},
                "arms": {arm: {"test_accuracy": f.test_accuracy, "train_loss": f.train_loss, "steps": f.step}
                         for arm, f in final.arms.items()},
                "reason": final.reason, "seconds": self.seconds, "frames": len(self.frames)}


def _source(teacher: Teacher) -> str:
    """"trained" or "cache" (memory or disk), as ``kdlab distill --json`` reports it."""
    return "trained" if teacher.source == "trained" else "cache"


def run_playground(cfg: PlaygroundConfig, *, data: Dataset | None = None, store: TeacherStore | None = None,
                   on_snapshot: Callable[[Snapshot], None] | None = None,
                   on_teacher: Callable[[Event], None] | None = None,
                   on_setup: Callable[[Setup], None] | None = None,
                   should_stop: Callable[[], bool] | None = None) -> PlaygroundResult:
    """One Playground run, every snapshot kept. A stop before the teacher is ready raises RunStopped.
    ``on_teacher`` gets the teacher's training events when it is not cached yet, ``on_setup`` the Setup once
    the teacher is ready (what a live page needs to draw the snapshots that follow)."""
    setup = prepare(cfg, data=data, store=store, on_teacher=on_teacher, should_stop=should_stop)
    if on_setup is not None:
        on_setup(setup)
    t0 = time.perf_counter()
    frames = []
    for snap in train_arms(setup, should_stop=should_stop):
        frames.append(snap)
        if on_snapshot is not None:
            on_snapshot(snap)
    return PlaygroundResult(setup, frames, time.perf_counter() - t0)


def run_playground_seeds(cfg: PlaygroundConfig, seeds: Sequence[int], *, store: TeacherStore | None = None,
                         should_stop: Callable[[], bool] | None = None,
                         on_result: Callable[[int, PlaygroundResult], None] | None = None,
                         on_progress: Callable[[int, str, Any], None] | None = None) -> dict[str, Any]:
    """The three arms over ``seeds`` (each seed: its own data draw, teacher, labels and students), as the
    JSON of ``kdlab playground --json``: accuracies are fractions (mean, sample std, per seed). A stop raises
    RunStopped. ``on_progress(seed, "teacher", Event)`` and ``on_progress(seed, "students", Snapshot)``."""
    seeds = list(dict.fromkeys(seeds))  # in order, once each
    if not seeds or len(seeds) > 10:
        raise ConfigError(f"give 1 to 10 seeds, got {len(seeds)}")
    for s in seeds:
        _check_whole("seed", s, 0, MAX_SEED)
    validate(cfg)
    t0 = time.perf_counter()
    results = []
    for s in seeds:
        tell = (lambda what, s=s: (lambda x: on_progress(s, what, x))) if on_progress else (lambda what: None)
        result = run_playground(cfg.replace(seed=s), store=store, should_stop=should_stop,
                                on_teacher=tell("teacher"), on_snapshot=tell("students"))
        if result.final.reason == "stopped":
            raise RunStopped("the Playground run was stopped; nothing to report")
        results.append(result)
        if on_result is not None:
            on_result(s, result)
    per_arm = {arm: [r.final.arms[arm].test_accuracy for r in results] for arm in ARMS}
    teachers = [r.setup.teacher for r in results]
    teacher = Stats.of([t.test_accuracy for t in teachers])
    return {
        "config": {k: v for k, v in to_dict(cfg).items() if k != "seed"}, "seeds": seeds,
        "arms": {arm: asdict(Stats.of(v)) for arm, v in per_arm.items()},
        "gain": {f"{arm}_minus_scratch": statistics.fmean(a - b for a, b in zip(per_arm[arm], per_arm["scratch"]))
                 for arm in ("hard", "soft")},
        "datasets": [r.setup.data.name for r in results],
        "teacher": {"test_accuracy": teacher.mean, "std": teacher.std, "per_seed": teacher.per_seed,
                    "source": [_source(t) for t in teachers]},
        "reasons": [r.final.reason for r in results],
        "seconds": time.perf_counter() - t0,
    }


