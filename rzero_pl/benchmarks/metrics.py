"""Scores: per-benchmark accuracy with a 95 % interval, and the paper's two averages.

All accuracies are fractions in [0, 1] (the paper prints them ×100).

* Accuracy = mean over problems of the mean over that problem's k samples (mean@k; plain
  accuracy when k = 1).
* 95 % interval: Wilson score interval when every problem has one sample; otherwise a normal
  interval over the per-problem means, mean ± 1.96·s/√n (s the sample standard deviation
  over problems, n problems), clipped to [0, 1]. It treats problems as the random unit, so the
  k samples of a problem are not counted as independent evidence. With one problem it is [0, 1].
* MATH AVG = mean of the seven math benchmarks; Overall = mean(MATH AVG, SuperGPQA, MMLU-Pro,
  BBEH), as the paper's Table 1 averages them. Both are taken over the benchmarks present and name
  the missing ones.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from rzero_pl.benchmarks.registry import (
    GENERAL_BENCHMARKS,
    MATH_BENCHMARKS,
    get_benchmark,
    known_benchmarks,
)

Z95 = 1.959963984540054

Correctness = Sequence[bool] | Sequence[Sequence[bool]]


def wilson_interval(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for ``successes`` out of ``n`` Bernoulli trials.

    It always holds its own point, ``low <= successes / n <= high``: 0 of n gives a low of
    exactly 0 and n of n a high of exactly 1. Rounding in ``centre ± half`` would otherwise
    leave 5.6e-17 above 0 (a run stuck at 0 % "beats" its best, and the report's error bar
    is negative).
    """
    if n <= 0:
        return (0.0, 1.0)
    p = min(1.0, max(0.0, successes / n))
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    low = 0.0 if p == 0.0 else min(p, max(0.0, centre - half))
    high = 1.0 if p == 1.0 else max(p, min(1.0, centre + half))
    return (low, high)


def mean_interval(values: Sequence[float], z: float = Z95) -> tuple[float, float]:
    """Normal interval for the mean of ``values``, clipped to [0, 1]."""
    n = len(values)
    if n < 2:
        return (0.0, 1.0)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = z * sd / math.sqrt(n)
    return (max(0.0, mean - half), min(1.0, mean + half))


def mean_interval_from_sums(
    total: float, total_sq: float, n: float, z: float = Z95
) -> tuple[float, float]:
    """:func:`mean_interval` from the sums ``Σv`` and ``Σv²`` of ``n`` values.

    The form a distributed metric can hold: sums add across ranks. The sample variance is
    ``(Σv² − (Σv)²/n) / (n − 1)``, floored at 0 against rounding.
    """
    if n < 2:
        return (0.0, 1.0)
    mean = total / n
    variance = max(0.0, (total_sq - total * total / n) / (n - 1))
    half = z * math.sqrt(variance) / math.sqrt(n)
    return (max(0.0, mean - half), min(1.0, mean + half))


def accuracy_interval(
    total: float, total_sq: float, n: float, k: int, z: float = Z95
) -> tuple[float, float]:
    """The 95 % interval of the module docstring from per-problem sums.

    ``total`` and ``total_sq`` are the sums of the per-problem accuracies and of their squares
    over ``n`` problems; ``k`` the most samples any problem has. Wilson when ``k <= 1`` (then
    ``total`` is the number right), else the normal interval over problems.
    """
    if k <= 1:
        return wilson_interval(total, int(round(n)), z)
    return mean_interval_from_sums(total, total_sq, n, z)


def _per_problem(correct: Correctness) -> list[list[bool]]:
    return [[bool(x)] if isinstance(x, bool | int) else [bool(y) for y in x] for x in correct]


def score(correct: Correctness) -> dict[str, Any]:
    """Accuracy, interval and counts for one benchmark.

    Args:
        correct: Per problem, the verdicts of its k samples (a flat list of verdicts means
            k = 1). Problems may have different numbers of samples; none may have zero.

    Returns:
        ``accuracy``, ``ci95`` ([low, high]), ``n_problems``, ``n_samples`` and ``k`` (the
        samples per problem; the largest if they differ).
    """
    problems = _per_problem(correct)
    if any(not samples for samples in problems):
        raise ValueError("every problem needs at least one graded sample")
    means = [sum(samples) / len(samples) for samples in problems]
    accuracy = sum(means) / len(means) if means else 0.0
    k = max((len(s) for s in problems), default=0)
    if k <= 1:
        low, high = wilson_interval(sum(means), len(means))
    else:
        low, high = mean_interval(means)
    return {
        "accuracy": accuracy,
        "ci95": [low, high],
        "n_problems": len(problems),
        "n_samples": sum(len(s) for s in problems),
        "k": k,
    }


def _average(parts: Mapping[str, float | None], names: Sequence[str]) -> dict[str, Any]:
    present = [n for n in names if parts.get(n) is not None]
    value = sum(parts[n] for n in present) / len(present) if present else None
    return {
        "accuracy": value,
        "components": {n: parts[n] for n in present},
        "missing": [n for n in names if n not in present],
    }


def summarize(results: Mapping[str, Correctness | Mapping[str, Any]]) -> dict[str, Any]:
    """The ``eval.json`` structure for one evaluation.

    Args:
        results: Per benchmark name, either its verdicts (as for :func:`score`) or a
            ready :func:`score` dict.

    Returns:
        ``{"benchmarks": {name: score + "kind"}, "math_average": {...},
        "overall_average": {...}}``; each average has ``accuracy`` (``None`` when nothing is
        present), ``components`` (the accuracies it averages) and ``missing`` (names absent).
        Benchmarks outside the paper's suite (e.g. the toy one) are scored but not averaged.
    """
    benchmarks: dict[str, Any] = {}
    for name, value in results.items():
        entry = dict(value) if isinstance(value, Mapping) else score(value)
        entry["kind"] = get_benchmark(name).kind if name in known_benchmarks() else None
        benchmarks[name] = entry
    accuracy = {name: entry["accuracy"] for name, entry in benchmarks.items()}
    math_average = _average(accuracy, MATH_BENCHMARKS)
    overall = _average(
        {"math_average": math_average["accuracy"], **accuracy},
        ("math_average", *GENERAL_BENCHMARKS),
    )
    return {"benchmarks": benchmarks, "math_average": math_average, "overall_average": overall}
