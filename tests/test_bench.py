"""The benchmark runs end to end and reports what it promises (its numbers are read by people, not asserted)."""
import statistics

import pytest

from kdlab.base.errors import ConfigError
from kdlab.cli.bench import _PerExample, _TorchvisionStyle, run_bench
from kdlab.cli.commands.bench import show


def test_bench_quotes_medians_of_every_repeat_on_digits(kdlab_cache, torch_one_thread):
    out = run_bench(dataset="digits", repeats=2, quiet=True, sweeps=("digits",))
    times = out["epochs_s"]
    assert len(times["kdlab"]) == 2 and len(times["tutorial"]) == len(times["lean_loop"]) == 1
    assert all(v > 0 for v in (*times["kdlab"], *times["tutorial"], out["cached_teacher_load_s"], out["peak_rss_mb"]))
    assert out["kdlab_epoch_s"] == statistics.median(times["kdlab"])  # the median, not the last or the best
    assert out["speedup"] == pytest.approx(statistics.median(times["tutorial"]) / statistics.median(times["kdlab"]))
    sweep = out["stacked"]["digits"]
    assert [len(v) for v in sweep["runs_s"].values()] == [2, 2]
    assert sweep["stacked_s"] == statistics.median(sweep["runs_s"]["stacked"])
    assert out["stacked"]["cells"] == 16 and sweep["max_accuracy_difference_pp"] <= 1.0
    printed = show(out).splitlines()  # what `kdlab bench` prints: the stacked ratio too (issue 14)
    assert printed[-1].startswith("16-cell sweep on digits") and f"{sweep['ratio']:.1f}x" in printed[-1]


def test_reference_datasets_reproduce_kdlabs_normalised_inputs(digits):
    x, y = digits.x_train[:50], digits.y_train[:50]
    for cls in (_PerExample, _TorchvisionStyle):
        ds = cls(x, y)
        for i in (0, 17, 49):
            image, label = ds[i]
            assert image.shape == x[i].shape and label == int(y[i])
            assert (image - x[i]).abs().max() < 0.02 * (x.max() - x.min())  # uint8 quantisation only


@pytest.mark.parametrize("repeats", [0, -1, True, 2.5, 10_001])
def test_bad_repeats_are_a_config_error_before_any_work(repeats, kdlab_cache):
    """Issue 10, failure 4: `kdlab bench --repeats 0` raised StatisticsError after training the teacher."""
    with pytest.raises(ConfigError, match="repeats"):
        run_bench(dataset="digits", repeats=repeats, quiet=True)
    assert not kdlab_cache.exists()  # nothing was trained or cached


def test_the_cli_exits_2_for_zero_repeats(kdlab_cache, capsys):
    from kdlab.cli.main import main

    assert main(["bench", "--dataset", "digits", "--repeats", "0", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "repeats" in err and "Traceback" not in err
