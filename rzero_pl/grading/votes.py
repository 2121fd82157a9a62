"""The majority vote: answers clustered by ``rzero_pl.grading.answers.equivalent``, the largest wins.

The relation is symmetric (math-verify must agree both ways), so a cluster does not depend on
which answer came first beyond the greedy order itself. Identical normal forms are grouped
first; local decisions settle most pairs; the rest go to the worker pool, many questions at
once.

Timeouts. A check that overruns its timeout says nothing about equivalence, only that one of
the two answers is slow for math-verify. It counts against the slow answer only: when one
side is ``cheap`` (a plain number or a simple value, which math-verify reads at once) the
other is the slow one; otherwise both are suspected. A slow or suspected answer is never sent
to math-verify again in that vote, but local decisions still merge it and everything else. So
two slow answers cannot split ``1``, ``1.0`` and ``\\frac{2}{2}``. A pair with an answer that
may be slow is checked alone, and each vote has a budget of ``MAX_TIMEOUTS`` timeouts, after
which only local decisions are made in it: ten distinct slow answers cost at most two
timeouts, not nine.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Sequence
from dataclasses import dataclass, field

from rzero_pl.grading.answer_forms import normalize
from rzero_pl.grading.answers import (
    ANSWER_TIMEOUT,
    cached_verdict,
    cheap,
    decide_locally,
    oriented,
    pair_key,
    reduce_pair,
    remember_verdict,
)
from rzero_pl.grading.verify_pool import TIMED_OUT, VerifyPool, shared_pool

log = logging.getLogger(__name__)

MAX_TIMEOUTS = 2  # timeouts one vote may spend before it stops calling math-verify
MISSING = "None"  # the unanswered votes' cluster (``missing_cluster``), as the release writes it


@dataclass
class Vote:
    """The outcome of a majority vote over one question's answers.

    ``label`` is the first-seen answer (as written, stripped) of the largest cluster of
    equivalent answers, ``size`` that cluster's count and ``share = size / num_answers``, where
    ``num_answers`` counts every vote, the ``num_missing`` unanswered ones (None or blank)
    included. ``clusters`` lists (representative, count) in first-seen order.
    """

    label: str | None
    share: float
    size: int
    clusters: list[tuple[str, int]] = field(default_factory=list)
    num_answers: int = 0
    num_missing: int = 0


class _Clustering:
    """One question's greedy clustering, advanced as far as the known verdicts allow."""

    def __init__(self, answers: Sequence[str | None], missing_cluster: bool = False) -> None:
        self.num_answers, self.num_missing = len(answers), 0
        self.missing_cluster, self.first_missing = missing_cluster, len(answers)
        forms: dict[str, list] = {}  # normalised → [first raw answer, count, first index]
        for at, answer in enumerate(answers):
            norm = normalize(answer) if answer is not None else ""
            if not norm:
                self.num_missing += 1
                self.first_missing = min(self.first_missing, at)
            elif norm in forms:
                forms[norm][1] += 1
            else:
                forms[norm] = [answer.strip(), 1, at]
        self.first_seen = {norm: at for norm, (_, _, at) in forms.items()}
        self.forms = [(norm, raw, count) for norm, (raw, count, _) in forms.items()]
        self.clusters: list[list] = []  # [representative raw, representative normalised, count]
        self.next = 0
        self.waiting: set[tuple[str, str]] = set()
        self.slow: set[str] = set()  # forms no longer sent to math-verify in this vote
        self.timeouts: set[tuple[str, str]] = set()  # pairs that timed out in this vote

    def _blame(self, a: str, b: str) -> None:
        """A timeout on (a, b): the slow side, or both when neither is cheap."""
        if (a, b) in self.timeouts or (b, a) in self.timeouts:
            return
        self.timeouts.add((a, b))
        slow = [f for f in (a, b) if not cheap(f)]
        self.slow.update(slow or (a, b))

    def _verdict(self, norm: str, rep: str, known: dict):
        """True/False, TIMED_OUT, None (unknown: ask the pool) or "skip" (not asked)."""
        local = decide_locally(norm, rep)
        if local is not None:
            return local
        if norm in self.slow or rep in self.slow or len(self.timeouts) >= MAX_TIMEOUTS:
            return "skip"
        key = pair_key(*reduce_pair(norm, rep))
        verdict = known[key] if key in known else cached_verdict(*key)
        if verdict is None or verdict is TIMED_OUT:
            return verdict
        return oriented(verdict, key, None)

    def advance(self, known: dict) -> set[tuple[str, str]]:
        """Place forms until one needs an unchecked pair; return the pairs it waits for.

        A form joins the first cluster whose representative is equivalent to it, so it needs
        the verdicts for every cluster before the first known match. Pairs of cheap answers are
        asked together; a pair with an answer that may be slow is asked alone, so that its
        timeout is known (and blamed) before the next pair is sent.
        """
        while self.next < len(self.forms):
            norm, raw, count = self.forms[self.next]
            unknown, home = set(), None
            for cluster in self.clusters:
                verdict = self._verdict(norm, cluster[1], known)
                if verdict is None:
                    unknown.add(pair_key(*reduce_pair(norm, cluster[1])))
                    if not (cheap(norm) and cheap(cluster[1])):
                        break  # one check at a time: a slow answer must not time out N times
                elif verdict is TIMED_OUT:
                    self._blame(norm, cluster[1])
                elif verdict is True:
                    home = cluster
                    break
            if unknown:
                return unknown
            if home is None:
                self.clusters.append([raw, norm, count])
            else:
                home[2] += count
            self.next += 1
        return set()

    def vote(self) -> Vote:
        clusters = [(raw, count) for raw, _, count in self.clusters]
        missing = -1
        if self.missing_cluster and self.num_missing:
            # the released code's "None" cluster, in first-seen order like any other
            missing = sum(self.first_seen[n] < self.first_missing for _, n, _ in self.clusters)
            clusters.insert(missing, (MISSING, self.num_missing))
        if not clusters:
            return Vote(None, 0.0, 0, [], self.num_answers, self.num_missing)
        # max keeps the first of equals
        won = max(range(len(clusters)), key=lambda i: clusters[i][1])
        label, size = (None if won == missing else clusters[won][0]), clusters[won][1]
        return Vote(
            label, size / self.num_answers, size, clusters, self.num_answers, self.num_missing
        )


def majority_votes(
    answer_lists: Sequence[Sequence[str | None]],
    timeout: float = ANSWER_TIMEOUT,
    pool: VerifyPool | None = None,
    missing_cluster: bool = False,
) -> list[Vote]:
    """One ``Vote`` per list of answers, their math-verify checks sharing the worker pool.

    For each question: answers are clustered by equivalence, greedily in first-seen order, and
    the largest cluster wins. An answer joins the first cluster whose representative (its first
    answer) is ``equivalent`` to it, else starts a new one. Ties go to the first-seen cluster.
    ``None`` or blank answers are unanswered votes: they count in ``num_answers`` (the share's
    denominator) but join no cluster; with no answer at all the label is None and the share 0.
    Identical normalised answers are grouped first, so math-verify only compares distinct forms.

    ``missing_cluster`` (the released code: an unanswered vote reads as the string "None"):
    the unanswered votes form one more cluster, first seen at the first unanswered vote, that
    may win; it is listed as ``(MISSING, count)`` and, when it wins, the label is None and the
    share its count over m (6 unanswered and 4 × "7": label None, share 0.6). Unlike the
    release, a boxed answer "None" stays a separate answer.

    Each question's clustering advances on its own as its verdicts arrive, so the pool stays
    busy until the last question is placed.
    """
    questions = [_Clustering(answers, missing_cluster) for answers in answer_lists]
    known: dict[tuple[str, str], object] = {}  # this call's verdicts (the LRU may drop some)
    waiters: dict[tuple[str, str], list[_Clustering]] = {}
    done: queue.SimpleQueue = queue.SimpleQueue()

    def advance(question: _Clustering, new: list[tuple[str, str]]) -> None:
        question.waiting = question.advance(known)
        for key in question.waiting:
            if key not in waiters:
                waiters[key] = []
                new.append(key)
            waiters[key].append(question)

    def submit(keys: list[tuple[str, str]]) -> None:
        try:
            futures = (pool or shared_pool()).submit_many(keys, timeout)
            for key, future in zip(keys, futures, strict=True):
                future.add_done_callback(lambda f, key=key: done.put((key, f.result())))
        except Exception:
            log.exception("answer equivalence check failed")
            for key in keys:
                done.put((key, None))

    new: list[tuple[str, str]] = []
    for question in questions:
        advance(question, new)
    while waiters:
        if new:
            submit(new)
        new, finished = [], [done.get()]
        while not done.empty():
            finished.append(done.get())
        for key, verdict in finished:
            # None (never checked: pool closed or broken) is remembered here as not equal
            known[key] = remember_verdict(key, verdict) if verdict is not None else False
            for question in waiters.pop(key):
                question.waiting.discard(key)
                if not question.waiting:
                    advance(question, new)
    return [question.vote() for question in questions]
