"""The benchmark runs end to end and reports what it promises (its numbers are read by people, not asserted)."""
import pytest

from kdlab.base.errors import ConfigError
from kdlab.cli.bench import _PerExample, _TorchvisionStyle, run_bench


def test_bench_runs_on_digits(kdlab_cache, torch_one_thread):
    out = run_bench(dataset="digits", repeats=1, quiet=True, sweeps=("digits",))
    for key in ("kdlab_epoch_s", "tutorial_epoch_s", "lean_loop_epoch_s", "speedup", "cached_teacher_load_s",
                "peak_rss_mb"):
        assert out[key] > 0, key
    assert out["speedup"] == out["tutorial_epoch_s"] / out["kdlab_epoch_s"]
    sweep = out["stacked"]["digits"]
    assert sweep["serial_s"] > 0 and sweep["stacked_s"] > 0 and sweep["ratio"] == sweep["serial_s"] / sweep["stacked_s"]
    assert out["stacked"]["cells"] == 16 and sweep["max_accuracy_difference_pp"] <= 1.0


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
