"""Votes that timeouts cannot flip, and hostile answers (issues 13 and 18)."""

from __future__ import annotations

import pytest

from rzero_pl.grading.answers import equivalent
from rzero_pl.grading.verify_pool import shared_pool
from rzero_pl.grading.votes import MAX_TIMEOUTS, majority_votes


def _warm() -> None:
    assert equivalent("y+y", "2y")  # workers up: a pair only math-verify decides


def test_slow_answers_do_not_change_the_label():
    _warm()
    answers = ["9^{9^{9^{9}}}", "8^{8^{8^{8}}}", "1.0", "2", "2", "2", "1", "1", "\\frac{2}{2}"]
    vote = majority_votes([answers], timeout=0.5)[0]
    assert (vote.label, vote.size) == ("1.0", 4)  # not "2" (3 votes)
    assert vote.clusters[2:] == [("1.0", 4), ("2", 3)]


@pytest.mark.slow  # waits out the verifier's timeouts
def test_a_timeout_counts_against_the_slow_answer_only():
    _warm()
    # the tower times out against "1", which is cheap: "1" still merges with "1.0" afterwards,
    # and a later math-verify pair ("u+u" with "2u") is still checked
    answers = ["7^{7^{7^{7}}}", "1", "u+u", "2u", "1.0"]
    vote = majority_votes([answers], timeout=5.0)[0]  # ample for u+u and 2u on a busy machine
    assert vote.clusters == [("7^{7^{7^{7}}}", 1), ("1", 2), ("u+u", 2)]


def test_ten_distinct_slow_answers_cost_at_most_the_vote_budget():
    _warm()
    pool = shared_pool()
    towers = [f"{b}^{{{b}^{{{b}^{{{b}}}}}}}+{k}" for b in (5, 6) for k in range(5)]
    replaced = pool.replaced
    vote = majority_votes([towers], timeout=0.5)[0]
    # each timeout makes both sides suspects; the vote's budget caps the rest (was 9 timeouts)
    assert pool.replaced - replaced <= MAX_TIMEOUTS
    assert len(vote.clusters) == 10 and vote.size == 1


def test_big_numbers_that_differ_are_separate_clusters():
    answers = ["10^{36}", "10^{36}+1", "10^{36}+2", "10^{36}-1", "10^{36}"]
    vote = majority_votes([answers])[0]
    assert [count for _, count in vote.clusters] == [2, 1, 1, 1]
    assert vote.share == 0.4


def test_an_equation_and_its_right_hand_side_are_two_clusters():
    vote = majority_votes([["2x+z=1", "1", "1", "2x + z = 1"]])[0]
    assert vote.clusters == [("2x+z=1", 2), ("1", 2)]


def test_a_scalar_never_merges_with_vectors():
    """Issue 27 item 15: the row break read as a spacing command made the vectors (1/4, 2) and
    (1/4, 5) one cluster with the scalar 1/4 (share 1.0)."""
    column = "\\begin{{pmatrix}} {} \\\\ {} \\end{{pmatrix}}".format
    answers = ["1/4", "1/4", "0.25", column("\\frac{1}{4}", "2"), column("\\frac{1}{4}", "5")]
    vote = majority_votes([answers])[0]
    assert [count for _, count in vote.clusters] == [3, 1, 1]
    assert vote.label == "1/4" and vote.share == 0.6
    same = [column("\\frac{1}{4}", "2"), "\\begin{bmatrix}1/4\\\\2\\end{bmatrix}", "1/4"]
    vote = majority_votes([same + [column("\\dfrac14", "2")]])[0]
    assert [count for _, count in vote.clusters] == [3, 1] and vote.share == 0.75


def test_missing_cluster_is_the_released_none_answer():
    from rzero_pl.grading.votes import MISSING
    from rzero_pl.rewards import MajorityVote, SolverReading

    six_blank = [None, "7", None, " ", "7", None, "7", None, "7", None]  # 6 unanswered, 4 × "7"
    kept = majority_votes([six_blank])[0]
    assert (kept.label, kept.share, kept.clusters) == ("7", 0.4, [("7", 4)])
    dropped = majority_votes([six_blank], missing_cluster=True)[0]
    assert (dropped.label, dropped.share) == (None, 0.6)
    assert dropped.clusters == [(MISSING, 6), ("7", 4)]  # first seen at vote 0
    # a tie goes to the first seen: "3" (vote 0) before the unanswered (vote 1), then the reverse
    tie = majority_votes(
        [["3", None, "3", None, "5"], [None, "3", "3", None]], missing_cluster=True
    )
    assert [(v.label, v.share) for v in tie] == [("3", 0.4), (None, 0.5)]
    assert tie[0].clusters == [("3", 2), (MISSING, 2), ("5", 1)]
    reading = SolverReading(None, max_new_tokens=8)
    assert MajorityVote(missing_cluster=True).bound_to(reading).missing_cluster
