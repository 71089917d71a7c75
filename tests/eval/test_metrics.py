"""Wilson intervals against hand-computed values."""

import pytest

from trifinger_s2r.eval.metrics import wilson_interval


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
