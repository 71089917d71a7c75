"""Wilson intervals against hand-computed values; the lifted-episode summary."""

import pytest

from trifinger_s2r.eval.metrics import lifted_summary, wilson_interval


def test_wilson_80_interval_of_33_of_40():
    """33/40 (the paper's 83%): z = 1.2816, z^2/n = 0.04106, centre (0.825 + 0.02053) / 1.04106 = 0.8122,
    half-width 1.2816 * sqrt(0.0036094 + 0.0002566) / 1.04106 = 0.0765 -> (0.7356, 0.8887)."""
    low, high = wilson_interval(33, 40, 0.8)
    assert low == pytest.approx(0.7356, abs=2e-4) and high == pytest.approx(0.8887, abs=2e-4)


def test_interval_stays_inside_zero_one():
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == 1.0


def test_bad_counts_are_refused():
    with pytest.raises(ValueError, match="trials"):
        wilson_interval(1, 0)
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(5, 4)


def test_the_lifted_summary_counts_only_episodes_ending_lifted():
    summary = lifted_summary([True, False, False, True], [0.1, 0.9, 2.0, 0.3], [True, True, False, True])
    assert summary["lifted_share"] == 0.75
    assert summary["success_rate_lifted"] == 2 / 3
    assert summary["median_orientation_error_lifted_rad"] == 0.3


def test_the_lifted_summary_has_no_rates_where_nothing_was_lifted():
    summary = lifted_summary([False, False], [2.0, 1.0], [False, False])
    assert summary == {"lifted_share": 0.0, "success_rate_lifted": None, "median_orientation_error_lifted_rad": None}
    with pytest.raises(ValueError, match="equally long"):
        lifted_summary([True], [0.1, 0.2], [True])
