"""``kdlab sweep``: the app's Sweep on the command line: distil one teacher/student pair over a grid of
temperatures x alphas x seeds (each seed's scratch twin trained once), here or on a Ray cluster (``--ray``)."""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any, Callable, Hashable

from kdlab.base.config import to_dict
from kdlab.base.errors import ConfigError, KdlabError
from kdlab.base.lab import Lab
from kdlab.cli import args as cli_args
from kdlab.cli import ray_option
from kdlab.cli import show as fmt
from kdlab.runs.lab import LAB_SETTINGS
from kdlab.runs.batch import Fractions
from kdlab.runs.presets import get_preset, preset_names
from kdlab.runs.sweep import GRID_SETTINGS, MAX_SEEDS, Grid, pivot, validate_grid

GRID_SET = ("temperature", "alpha", "seed", "seeds", "scratch")  # the lab's settings the grid sets


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="distil over a grid of temperatures x alphas x seeds (the app's Sweep)",
                       description="Every cell distils the same teacher/student pair at one (T, alpha, seed); each "
                                   "seed's scratch twin is trained once and its accuracy shared by the seed's cells. "
                                   "Settings not given come from --preset, else the defaults shown.")
    cli_args.add_setting_flags(p, GRID_SETTINGS, Grid())
    p.add_argument("--preset", default=None, help=f"start from a preset: {', '.join(preset_names())}")
    cli_args.add_setting_flags(p, LAB_SETTINGS, Lab(), skip=GRID_SET)
    ray_option.add_flag(p)
    p.add_argument("--csv", default=None, metavar="FILE", help="also write the rows to FILE as CSV")
    cli_args.data_dir_flag(p)
    cli_args.output_flags(p)
    p.set_defaults(run=run, show=show)


def settings_from_args(a: argparse.Namespace) -> tuple[Lab, Grid]:
    """The lab (its pair and training) and the grid; ConfigError for a bad value or an oversized grid."""
    lab = cli_args.state_from_args(a, LAB_SETTINGS, get_preset(a.preset).lab if a.preset else Lab())
    grid = cli_args.state_from_args(a, GRID_SETTINGS, Grid())
    if not 1 <= grid.seeds <= MAX_SEEDS:  # the app's widget bound: a sweep's cells multiply by it
        raise ConfigError(f"seeds must be a whole number in [1, {MAX_SEEDS}], got {grid.seeds}")
    validate_grid(lab.config, grid.temperatures, grid.alphas, grid.seed_list())  # every cell, before any work
    return lab, grid


def run(a: argparse.Namespace) -> dict[str, Any]:
    from kdlab.data import load_dataset
    from kdlab.runs.sweep import run_sweep, to_csv
    from kdlab.runs.teacher import RunStopped

    lab, grid = settings_from_args(a)
    _check_writable(a.csv)
    t0 = time.perf_counter()
    with ray_option.executor(a.ray) as executor:  # an unreachable cluster is refused here, before any work
        data = load_dataset(lab.config.dataset, a.data_dir)
        with _Watch(executor, quiet=a.quiet) as watched:
            rows = run_sweep(lab.config, grid.temperatures, grid.alphas, grid.seed_list(), data=data,
                             on_progress=watched.cell, executor=watched)
    if len(rows) < len(grid.temperatures) * len(grid.alphas) * grid.seeds:
        raise RunStopped(f"the sweep was interrupted after {len(rows)} runs")
    if a.csv:
        _write(a.csv, to_csv(rows))
    temps, alphas, z = pivot(rows, "gain")
    t = watched.teacher
    return {"rows": rows, "grid": {"temperatures": temps, "alphas": alphas, "seeds": grid.seed_list()},
            "mean_gain": z, "config": _fixed(lab),
            "teacher": {"arch": t.config.arch, "test_accuracy": t.test_accuracy, "source": t.source, "key": t.key},
            "ray": a.ray, "csv": a.csv, "seconds": time.perf_counter() - t0}


def _fixed(lab: Lab) -> dict[str, Any]:
    """The settings every cell shares: the lab's config without what the grid sets."""
    cfg = to_dict(lab.config)
    del cfg["temperature"], cfg["alpha"], cfg["train"]["seed"]
    return cfg


class _Watch:
    """The sweep's executor, watched: a teacher bar while the teacher trains, then one bar over the student
    trainings (kdlab.runs.batch.Fractions: right when several train at once, on Ray); and the teacher
    of the results, for the report."""

    def __init__(self, inner: Callable, quiet: bool):
        from kdlab.cli.progress import Bars

        self.inner, self.bars = inner, Bars(disable=quiet)
        self.bar: Any = None
        self.total = 0
        self.done = Fractions()
        self.teacher = None

    def __call__(self, runs, data, *, on_progress=None, **kw) -> dict:
        self.total = sum(1 + r.scratch for r in runs)

        def progress(key: Hashable, role: str, event: Any) -> None:
            if role == "teacher":
                self.bars.role_callback(role, event)
            else:
                self._student(self.done.update(key, role, event))
            if on_progress is not None:
                on_progress(key, role, event)

        results = self.inner(runs, data, on_progress=progress, **kw)
        if results:
            self.teacher = next(iter(results.values())).teacher
        return results

    def _student(self, done: float) -> None:
        if self.bar is None:
            from tqdm import tqdm

            if (teacher := self.bars.bars.pop("teacher", None)) is not None:
                teacher.close()  # trained: its bar makes room for the sweep's
            self.bar = tqdm(total=self.total, desc="sweep", file=sys.stderr, leave=False, disable=self.bars.disable,
                            bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]")
        self.bar.update(min(self.total, done) - self.bar.n)

    def cell(self, role: str, payload: Any) -> None:
        if role == "cell" and self.bar is not None:
            done, total, _ = payload
            self.bar.set_description_str(f"sweep, {done}/{total} cells")  # a few dozen times a sweep

    def __enter__(self) -> "_Watch":
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.close()
        self.bars.__exit__()


def _check_writable(path: str | None) -> None:
    """Before the sweep: a typo in --csv must not cost its runs."""
    if not path:
        return
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder) or os.path.isdir(path) or not os.access(folder, os.W_OK):
        raise KdlabError(f"--csv {path}: cannot write there (the folder must exist and be writable)")


def _write(path: str, text: str) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)  # a reader never sees half a file
    except OSError as exc:
        raise KdlabError(f"--csv {path}: {exc.strerror or exc}") from None


def show(out: dict[str, Any]) -> str:
    g, t, cfg = out["grid"], out["teacher"], out["config"]
    where = f" on Ray ({out['ray']})" if out["ray"] else ""
    head = (f"{cfg['dataset']}: {cfg['teacher']} ({fmt.pct(t['test_accuracy'])}) -> {cfg['student']}, "
            f"{len(out['rows'])} runs over {len(g['seeds'])} seed(s){where} in {out['seconds']:.1f} s")
    rows = [[f"{temp:g}", *[("" if v is None else f"{100 * v:+.1f}") for v in line]]
            for temp, line in zip(g["temperatures"], out["mean_gain"])]
    table = fmt.table(["T \\ alpha", *[f"{a:g}" for a in g["alphas"]]], rows)
    lines = [head, "mean gain of the distilled student over its scratch twin (points):", table]
    cells = [(v, temp, a) for temp, line in zip(g["temperatures"], out["mean_gain"])
             for a, v in zip(g["alphas"], line) if v is not None]
    if cells:
        gain, temp, a = max(cells)
        lines.append(f"best: T={temp:g} alpha={a:g}, {100 * gain:+.1f} points")
    if out["csv"]:
        lines.append(f"rows written to {out['csv']}")
    return "\n".join(lines)
