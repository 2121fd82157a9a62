"""Thread counts: each rank's share of the cores, and the user's override."""

from __future__ import annotations

import pytest

from rzero_pl.scale.threads import cpu_share, thread_count


def test_each_local_rank_gets_a_disjoint_share():
    cpus = list(range(8))
    shares = [cpu_share(cpus, r, 4) for r in range(4)]
    assert shares == [[0, 1], [2, 3], [4, 5], [6, 7]]
    assert cpu_share(cpus, 0, 1) == cpus  # one rank: everything


def test_more_ranks_than_cpus_still_get_one_cpu_each():
    assert [cpu_share([0, 1], r, 3) for r in range(3)] == [[0], [1], [0]]


def test_threads_setting_overrides_the_share():
    assert thread_count(None, [0, 1, 2]) == 3
    assert thread_count(1, [0, 1, 2]) == 1
    assert thread_count(None, [0, 1, 2], env="1") == 1  # the user's OMP_NUM_THREADS
    assert thread_count(2, [0, 1, 2], env="1") == 2  # the setting wins
    assert thread_count(None, [0, 1, 2], env="") == 3
    with pytest.raises(ValueError, match="threads must be >= 1"):
        thread_count(0, [0])
