"""bench/selfplay_stats.py on hand-computed values."""

from __future__ import annotations

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))

from selfplay_stats import (  # noqa: E402
    format_interval,
    mean_rank_correlation,
    paired_differences,
    rank_correlation,
    sign_test,
    sign_test_p,
    t_interval,
)


def test_t_interval_by_hand():
    # mean 2, sd 1, n 3: half width t(0.975, 2) * 1 / sqrt(3) = 4.302653 / 1.732051 = 2.484138
    mean, low, high = t_interval([1.0, 2.0, 3.0])
    assert mean == 2.0
    assert low == pytest.approx(2.0 - 2.484138, abs=1e-5)
    assert high == pytest.approx(2.0 + 2.484138, abs=1e-5)
    # two seeds: t(0.975, 1) = 12.7062; sd of (0.30, 0.34) = 0.028284; / sqrt(2) = 0.02
    mean, low, high = t_interval([0.30, 0.34])
    assert (mean, high - mean) == pytest.approx((0.32, 12.7062 * 0.02), abs=1e-4)
    assert t_interval([0.5]) == (0.5, 0.5, 0.5)
    with pytest.raises(ValueError):
        t_interval([])


def test_paired_differences_use_the_seeds_both_arms_have():
    arm = {0: 0.40, 1: 0.35, 2: 0.30}
    reference = {0: 0.32, 2: 0.33, 3: 0.5}
    assert paired_differences(arm, reference) == pytest.approx([0.08, -0.03])


def test_sign_test_by_hand():
    arm = {"a": True, "b": True, "c": False, "d": False, "e": True}
    reference = {"a": True, "b": False, "c": True, "d": False, "x": False}
    assert sign_test(arm, reference) == (1, 1)  # b won, c lost; a and d tie; e, x unshared
    # 9 wins, 1 loss: P(X <= 1 or X >= 9 | n=10, 1/2) = 2 * 11 / 1024 = 0.021484375
    assert sign_test_p(9, 1) == pytest.approx(0.021484375)
    assert sign_test_p(5, 5) == pytest.approx(1.0)
    assert sign_test_p(0, 0) == 1.0


def test_format_interval():
    assert format_interval(0.3214, 0.3, 0.35, percent=True) == "32.1 [30.0, 35.0]"
    assert format_interval(0.5, 0.25, 0.75, percent=False) == "0.50 [0.25, 0.75]"


def test_rank_correlation_by_hand():
    # ranks of x: 1 2 3 4; of y: 1 3 2 4 -> d^2 = 0 1 1 0 -> rho = 1 - 6*2 / (4*15) = 0.8
    rho, p = rank_correlation([0.1, 0.2, 0.3, 0.4], [10.0, 30.0, 20.0, 40.0])
    assert rho == pytest.approx(0.8) and 0.0 < p < 1.0
    assert rank_correlation([1.0, 2.0, 3.0], [3.0, 2.0, 1.0])[0] == pytest.approx(-1.0)
    assert all(v != v for v in rank_correlation([1.0, 2.0], [1.0, 2.0]))  # too few: nan
    with pytest.raises(ValueError):
        rank_correlation([1.0], [1.0, 2.0])


def test_mean_rank_correlation_by_hand():
    # run a: rho 0.8 (above); run b: rho -1; run c: a constant series, left out
    runs = [
        [(0.1, 10.0), (0.2, 30.0), (0.3, 20.0), (0.4, 40.0)],
        [(1.0, 3.0), (2.0, 2.0), (3.0, 1.0)],
        [(1.0, 5.0), (2.0, 5.0), (3.0, 5.0)],
    ]
    mean, low, high = mean_rank_correlation(runs)
    assert mean == pytest.approx(-0.1)
    # sd of (0.8, -1.0) = 1.272792; t(0.975, 1) = 12.706205; half = 12.706205 * 1.272792 / sqrt 2
    assert high - mean == pytest.approx(12.706205 * 1.272792 / 2**0.5, rel=1e-5)
    assert mean_rank_correlation([runs[2]]) is None
