"""BenchmarkAccuracy: a benchmark's accuracy and 95 % interval as a torchmetrics ``Metric``.

Each rank updates the metric with the verdicts of its own problems; ``compute()`` adds the
ranks' sums (torchmetrics' own sync, over whatever process group is running) and applies
the pure interval maths of :mod:`rzero_pl.benchmarks.metrics`, so the figures are those of
:func:`~rzero_pl.benchmarks.metrics.score` over all problems, whichever rank scored them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torchmetrics import Metric

from rzero_pl.benchmarks.metrics import accuracy_interval


class BenchmarkAccuracy(Metric):
    """mean@k accuracy (plain accuracy when k = 1) with its 95 % interval.

    States (summed across ranks): ``total`` = Σ per-problem accuracy, ``total_sq`` = Σ of
    its squares, ``problems``, ``samples``; ``k`` = the most samples of any problem (max).
    Float64 throughout, so that the sums are exact for any realistic benchmark.
    """

    full_state_update = False
    higher_is_better = True
    is_differentiable = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        zero = torch.tensor(0.0, dtype=torch.float64)
        for name in ("total", "total_sq", "problems", "samples"):
            self.add_state(name, default=zero.clone(), dist_reduce_fx="sum")
        self.add_state("k", default=zero.clone(), dist_reduce_fx="max")

    def update(self, correct: Sequence[Sequence[bool]]) -> None:
        """Add problems: for each, the verdicts of its k samples (none may be empty)."""
        if any(len(samples) == 0 for samples in correct):
            raise ValueError("every problem needs at least one graded sample")
        means = [sum(map(bool, samples)) / len(samples) for samples in correct]
        self.total += sum(means)
        self.total_sq += sum(m * m for m in means)
        self.problems += len(means)
        self.samples += sum(len(samples) for samples in correct)
        if correct:
            self.k = torch.clamp(self.k, min=max(len(samples) for samples in correct))

    def compute(self) -> dict[str, float]:
        """``accuracy``, ``ci95_low``, ``ci95_high``, ``n_problems``, ``n_samples``, ``k``."""
        total, total_sq = float(self.total), float(self.total_sq)
        n, k = float(self.problems), int(self.k)
        low, high = accuracy_interval(total, total_sq, n, k)
        return {
            "accuracy": total / n if n else 0.0,
            "ci95_low": low,
            "ci95_high": high,
            "n_problems": int(n),
            "n_samples": int(self.samples),
            "k": k,
        }


def score_entry(figures: dict[str, float]) -> dict[str, Any]:
    """A computed :class:`BenchmarkAccuracy` in the ``eval.json`` layout of ``score``."""
    return {
        "accuracy": figures["accuracy"],
        "ci95": [figures["ci95_low"], figures["ci95_high"]],
        "n_problems": figures["n_problems"],
        "n_samples": figures["n_samples"],
        "k": figures["k"],
    }
