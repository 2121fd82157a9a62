"""Statistics of the self-play experiments (bench/selfplay.py): intervals over seeds, paired
differences against the R-Zero default arm, and a per-problem sign test pooled over seeds.

Pure functions of numbers and per-problem verdicts; tests/test_selfplay_stats.py checks them
on hand-computed values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from scipy import stats


def t_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """``(mean, low, high)``: the mean and its two-sided ``level`` Student-t interval over
    the values (seeds). One value has no spread: its interval is the point itself."""
    n = len(values)
    if n == 0:
        raise ValueError("no values")
    mean = sum(values) / n
    if n == 1:
        return mean, mean, mean
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = stats.t.ppf(0.5 + level / 2, n - 1) * sd / math.sqrt(n)
    return mean, mean - half, mean + half


def paired_differences(arm: Mapping[int, float], reference: Mapping[int, float]) -> list[float]:
    """``arm[s] - reference[s]`` for every seed ``s`` both have, in seed order."""
    return [arm[s] - reference[s] for s in sorted(set(arm) & set(reference))]


def sign_test(arm: Mapping[str, bool], reference: Mapping[str, bool]) -> tuple[int, int]:
    """Per-problem wins and losses of ``arm`` against ``reference`` on the problems both
    graded: ``(arm right and reference wrong, arm wrong and reference right)``."""
    shared = set(arm) & set(reference)
    wins = sum(arm[p] and not reference[p] for p in shared)
    losses = sum(reference[p] and not arm[p] for p in shared)
    return wins, losses


def sign_test_p(wins: int, losses: int) -> float:
    """Two-sided exact binomial sign test of ``wins`` against ``losses`` (ties dropped)."""
    if wins + losses == 0:
        return 1.0
    return float(stats.binomtest(wins, wins + losses, 0.5).pvalue)


def format_interval(mean: float, low: float, high: float, percent: bool) -> str:
    """``mean [low, high]`` in points (percent) or plain numbers."""
    scale, unit = (100.0, "") if percent else (1.0, "")
    digits = 1 if percent else (0 if abs(mean) >= 10 else 2)
    return f"{scale * mean:.{digits}f} [{scale * low:.{digits}f}, {scale * high:.{digits}f}]{unit}"


def rank_correlation(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """Spearman's rho between two equally long series and its two-sided p-value (nan for
    fewer than 3 pairs or a constant series)."""
    if len(xs) != len(ys):
        raise ValueError(f"{len(xs)} against {len(ys)} values")
    if len(xs) < 3 or len(set(xs)) < 2 or len(set(ys)) < 2:
        return float("nan"), float("nan")
    result = stats.spearmanr(xs, ys)
    return float(result.statistic), float(result.pvalue)


def mean_rank_correlation(
    runs: Sequence[Sequence[tuple[float, float]]],
) -> tuple[float, float, float] | None:
    """The mean of each run's Spearman rho between its ``(x, y)`` pairs, with its t-interval
    over the runs; a run whose rho is undefined (a constant series) is left out; None when
    no run has one."""
    rhos = [rank_correlation([x for x, _ in r], [y for _, y in r])[0] for r in runs]
    rhos = [r for r in rhos if not math.isnan(r)]
    return t_interval(rhos) if rhos else None
