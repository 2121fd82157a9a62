"""The one seed rule (rzero_pl.ground.seeds), by hand."""

from __future__ import annotations

from rzero_pl.ground.seeds import STRIDE, derive


def test_derive_by_hand():
    assert derive(0, 7) == 7  # seed 0 keeps the streams recorded before the rule moved here
    assert derive(5, 7) == 5 * 1_000_003 + 7 == 5_000_022


def test_derived_seeds_never_collide_below_the_stride():
    pairs = [(s, k) for s in range(4) for k in (0, 1, 999, STRIDE - 1)]
    assert len({derive(s, k) for s, k in pairs}) == len(pairs)
