"""The one rule that derives a seed from a run's seed and a counter."""

from __future__ import annotations

# A prime larger than any count a run derives seeds for (rollout steps, problems, iterations):
# (seed, k) and (seed', k') give the same derived seed only if seed = seed' and k = k'.
STRIDE = 1_000_003


def derive(seed: int, k: int) -> int:
    """The seed of the ``k``-th stream of something seeded ``seed`` (``k`` below ``STRIDE``)."""
    return seed * STRIDE + k
