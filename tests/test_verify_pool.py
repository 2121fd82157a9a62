"""The math-verify worker pool: hard timeouts, replacement, clean exits, no deadlocks."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from processes import gone, verify_workers

from rzero_pl.grading import verify_pool
from rzero_pl.grading.answers import equivalent_many
from rzero_pl.grading.verify_pool import TIMED_OUT, VerifyPool

TESTS = os.path.dirname(os.path.abspath(__file__))


def test_a_pool_of_one_answers_in_order():
    others = set(verify_workers())  # other pools' workers, if any are open
    pool = VerifyPool(workers=1)
    try:
        pairs = [("\\frac{1}{2}", "0.5"), ("x+x", "2x"), ("3", "4"), ("(1,2)", "(2,1)")]
        assert pool.map(pairs, timeout=10.0) == [True, True, False, False]
        ours = set(verify_workers()) - others
        assert len(ours) == 1
    finally:
        pool.close()
    assert gone(ours)


def test_a_huge_pair_behind_a_hanging_one_does_not_stall_the_deadlines():
    # The second pair is larger than a pipe buffer: written to a busy worker, the write would
    # block the dispatcher, and with it the first pair's deadline, for ever.
    pool = VerifyPool(workers=1)
    try:
        big = "x+" * 20_000 + "1"
        start = time.perf_counter()
        verdicts = pool.map([("9^{9^{9^{9}}}", "1"), (big, big + "+0")], timeout=1.0)
        assert verdicts[0] is TIMED_OUT
        assert time.perf_counter() - start < 30
        assert pool.replaced >= 1
    finally:
        pool.close()


def test_workers_hanging_at_the_same_time_all_keep_their_deadlines():
    pool = VerifyPool(workers=2)
    try:
        assert pool.map([("1/2", "0.5")], timeout=60.0) == [True]  # started
        towers = [(f"{k}^{{{k}^{{{k}^{{{k}}}}}}}", str(k)) for k in (3, 4, 5, 6)]
        start = time.monotonic()
        assert pool.map(towers, timeout=1.0) == [TIMED_OUT] * 4
        # Two at a time on two workers: two rounds, each within its timeout (a killed worker
        # is reaped later, not waited for); the slack tells that from a hang (minutes) on a
        # busy machine without timing the machine.
        assert time.monotonic() - start < 2 * 1.0 + 10.0
        assert pool.replaced == 4
        assert pool.map([("2/4", "0.5")], timeout=30.0) == [True]
    finally:
        pool.close()


def test_a_pool_whose_workers_cannot_start_answers_false(monkeypatch):
    monkeypatch.setattr(verify_pool, "_BOOT", "import sys; sys.exit(3)")
    pool = VerifyPool(workers=1)
    try:
        assert pool.map([("1", "1.0")], timeout=1.0) == [None]
        assert equivalent_many([("x+x", "2x")], pool=pool) == [False]
    finally:
        pool.close()
    assert pool.map([("1", "1.0")], timeout=1.0) == [None]  # closed


def test_workers_exit_with_the_interpreter():
    code = (
        f"import sys; sys.path.insert(0, {TESTS!r}); from processes import verify_workers; "
        "from rzero_pl.grading.answers import equivalent; "
        "print(equivalent('2/4', '0.5')); print(*verify_workers())"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    verdict, pids = done.stdout.splitlines()
    assert verdict == "True"
    for pid in map(int, pids.split()):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_start_brings_the_workers_up_before_any_pair():
    # For a caller about to generate: the workers' start-up runs beside the generation instead
    # of inside the first vote's wait (issue 23 item 5; bench/phase_shares.py --warm-pool).
    others = set(verify_workers())
    pool = VerifyPool(workers=1)
    try:
        pool.start()
        pool.start()  # idempotent: still one dispatcher, one worker
        deadline = time.monotonic() + 60
        while not set(verify_workers()) - others and time.monotonic() < deadline:
            time.sleep(0.1)
        ours = set(verify_workers()) - others
        assert len(ours) == 1  # up with no pair queued
        assert pool.map([("x+x", "2x")], timeout=10.0) == [True]
    finally:
        pool.close()
    assert gone(ours)
    pool.start()  # a closed pool starts nothing
    assert pool.map([("x+x", "2x")], timeout=10.0) == [None]
