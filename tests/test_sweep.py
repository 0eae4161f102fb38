"""kdlab.runs.sweep: the T x alpha x seed grid, its scratch reuse, stopping, pivot and CSV."""
import pytest

from kdlab.base.config import DistillConfig, TrainConfig
from kdlab.base.errors import ConfigError
from kdlab.runs.sweep import MAX_CELLS, grid, pivot, run_sweep, to_csv, validate_grid

BASE = DistillConfig(teacher="mlp:32", student="mlp:8", train=TrainConfig(epochs=1, lr=3e-3),
                     teacher_train=TrainConfig(epochs=2))


def test_grid_is_seed_major():
    assert grid([1, 4], [0.5], [0, 1]) == [(1.0, 0.5, 0), (4.0, 0.5, 0), (1.0, 0.5, 1), (4.0, 0.5, 1)]


@pytest.mark.parametrize("temps, alphas, seeds, match", [
    ([], [0.5], [0], "at least one"),
    ([1.0], [0.5], list(range(MAX_CELLS + 1)), "at most"),
    ([-1.0], [0.5], [0], "temperature"),
    ([1.0], [1.5], [0], "alpha"),
])
def test_bad_grids_are_refused_before_any_work(temps, alphas, seeds, match):
    with pytest.raises(ConfigError, match=match):
        validate_grid(BASE, temps, alphas, seeds)


def test_sweep_rows_reuse_one_scratch_per_seed(digits, torch_one_thread, kdlab_cache):
    events = []
    rows = run_sweep(BASE, [1.0, 4.0], [0.5], [0], data=digits, on_progress=lambda role, ev: events.append(role))
    assert [(r["temperature"], r["alpha"], r["seed"]) for r in rows] == [(1.0, 0.5, 0), (4.0, 0.5, 0)]
    assert rows[0]["scratch_accuracy"] == rows[1]["scratch_accuracy"]
    assert all(abs(r["gain"] - (r["student_accuracy"] - r["scratch_accuracy"])) < 1e-9 for r in rows)
    assert events.count("cell") == 2 and events.count("scratch") > 0
    temps, alphas, z = pivot(rows, "student_accuracy")
    assert temps == [1.0, 4.0] and alphas == [0.5] and z[1][0] == rows[1]["student_accuracy"]
    lines = to_csv(rows).splitlines()
    assert lines[0].startswith("temperature,alpha,seed,student_accuracy") and len(lines) == 3


def test_a_stopped_sweep_returns_the_rows_done(digits, torch_one_thread, kdlab_cache):
    from kdlab.runs import batch

    done = []
    with batch.stacking(False):  # one cell after another, so the stop lands between cells (test_stacked: stacked)
        rows = run_sweep(BASE, [1.0, 2.0, 4.0], [0.5], [0], data=digits,
                         on_progress=lambda role, ev: done.append(role == "cell"),
                         should_stop=lambda: sum(done) >= 1)
    assert len(rows) == 1
