"""The verifier under hostile input: extract_boxed, equivalent and majority_votes, fuzzed.

Model output is arbitrary text. Whatever it is (random unicode, control characters, deeply
nested braces, megabyte strings, towers of exponents, broken LaTeX) the verifier must return
a verdict, never raise, never overrun its timeout by more than a second, and replace the
worker processes it kills instead of leaking them.
"""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from processes import descendants, parent, verify_workers

from rzero_pl.grading.answers import equivalent_many, extract_boxed, normalize
from rzero_pl.grading.verify_pool import VerifyPool
from rzero_pl.grading.votes import majority_votes

TIMEOUT = 1.0
# No call may exceed its timeout by more than this. A hang is unbounded (minutes, or for good);
# a busy 2-core machine can delay a healthy call by seconds of scheduling, so the bound is set
# to tell the two apart without timing the machine (it once failed at 1 s under load 12).
SLACK = 10.0
CPU_BOUND = 1.0  # CPU seconds for parsing one huge text in this process (linear readers)

ATOMS = [
    "9^{9^{9^{9}}}",
    "10^{10^{10^{10^{10}}}}",
    "\\frac{1}{2}",
    "\\frac{",
    "\\sqrt[",
    "\\left(",
    "\\right)",
    "\\begin{matrix}",
    "\\end{",
    "x^",
    "_{",
    "}}}}",
    "{{{{",
    "\\\\",
    "\\boxed{",
    "\\text{",
    "$",
    "\\$",
    "%",
    "0.5",
    "-3",
    "1,000",
    "x=",
    "\\infty",
    "\\pi",
    "e^{i\\pi}",
    "\x00",
    "\x1b[31m",
    "\u202e",
    "\ud7ff",
    "\t\n\r",
    "−",
    "√",
    "∞",
    "证明",
]
latexish = st.lists(st.one_of(st.sampled_from(ATOMS), st.text(max_size=6)), max_size=12).map(
    "".join
)
answers = st.one_of(st.text(max_size=40), latexish, st.none())


def _nested(depth: int) -> str:
    return "\\boxed{" + "{" * depth + "1" + "}" * depth + "}"


HUGE = [
    "x" * (1 << 20),
    "\\boxed{" + "1+" * (1 << 19) + "1}",
    _nested(100_000),
    _nested(300),
    "\\frac{" * 200,
    "}" * (1 << 20),
    "9^{" * 50 + "9" + "}" * 50,
]


@pytest.fixture(scope="module")
def started():
    """A pool of two, started, and its zygote (the process its workers are forked from)."""
    others = set(verify_workers())
    pool = VerifyPool(workers=2)
    assert pool.map([("\\frac{1}{2}", "0.5")], timeout=60.0) == [True]  # workers started
    (zygote,) = {parent(pid) for pid in set(verify_workers()) - others}
    yield pool, zygote
    pool.close()


@pytest.fixture(scope="module")
def pool(started):
    return started[0]


def _timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def _cpu_timed(fn, *args):
    """CPU time of this process: what a parser costs, whatever else the machine runs."""
    start = time.process_time()
    out = fn(*args)
    return out, time.process_time() - start


FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)


@FUZZ
@given(st.one_of(st.text(), latexish))
def test_extract_boxed_and_normalize_never_raise(text):
    (boxed, seconds) = _cpu_timed(extract_boxed, text)
    assert boxed is None or (isinstance(boxed, str) and boxed.strip())
    assert seconds < CPU_BOUND
    assert isinstance(normalize(boxed or text), str)


@FUZZ
@given(answers, answers)
def test_equivalent_never_raises_nor_overruns(pool, a, b):
    verdicts, seconds = _timed(equivalent_many, [(a, b)], TIMEOUT, pool)
    assert verdicts == [bool(verdicts[0])]
    assert seconds <= TIMEOUT + SLACK, (a, b, seconds)


@settings(max_examples=15, deadline=None, database=None)
@given(st.lists(answers, min_size=1, max_size=8))
def test_majority_vote_never_raises(pool, votes):
    (vote,), seconds = _timed(majority_votes, [votes], TIMEOUT, pool)
    assert vote.num_answers == len(votes)
    assert vote.num_missing + sum(count for _, count in vote.clusters) == len(votes)
    assert 0.0 <= vote.share <= 1.0 and vote.size <= len(votes)
    assert (vote.label is None) == (not vote.clusters)
    # each distinct form costs at most two timeouts (then it is taken as matching nothing)
    assert seconds <= 2 * len(votes) * TIMEOUT + SLACK


@pytest.mark.slow  # waits out the verifier's timeouts
def test_huge_and_pathological_answers(pool):
    for text in HUGE:
        (boxed, seconds) = _cpu_timed(extract_boxed, text)
        assert seconds < CPU_BOUND and (boxed is None or isinstance(boxed, str))
        for other in (text, "1", "9^{9^{9^{9}}}"):
            verdicts, seconds = _timed(equivalent_many, [(text, other)], TIMEOUT, pool)
            assert isinstance(verdicts[0], bool)
            assert seconds <= TIMEOUT + SLACK, (text[:40], other, seconds)


def test_timed_out_workers_are_replaced_not_leaked(started):
    pool, zygote = started
    before, start, workers = pool.replaced, set(descendants()), set(verify_workers(zygote))
    # from 3 up: 2^{2^{2^{2}}} is only 65536, which math-verify settles in time
    towers = [(f"{k}^{{{k}^{{{k}^{{{k}}}}}}}", f"{k + 1}") for k in range(3, 7)]
    for pair in towers:  # one at a time: each overruns and kills its worker
        verdicts, seconds = _timed(pool.map, [pair], TIMEOUT)
        assert not verdicts[0]
        assert seconds <= TIMEOUT + SLACK
    assert pool.replaced >= before + len(towers)
    # A killed worker shows as a zombie while the kernel frees its memory (a tower can leave
    # a lot): give it a few seconds; a leaked one would stay for good. Only this pool's
    # processes are counted: others below pytest (earlier tests' pools) come and go.
    deadline = time.monotonic() + 5.0
    while True:
        now = descendants()
        ours = (set(now) - start) | (workers & set(now))  # new ones, and old workers left
        settled = ours == set(verify_workers(zygote))
        if settled or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert ours == set(verify_workers(zygote))  # each killed worker replaced by one, none left
    assert "Z" not in {now[pid] for pid in ours}  # and reaped
    assert len(verify_workers(zygote)) == 2 and set(verify_workers(zygote)) <= set(now)
    assert pool.map([("2/4", "0.5")], timeout=30.0) == [True]
