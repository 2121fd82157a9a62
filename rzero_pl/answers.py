"""Final answers: ``\\boxed{}`` extraction, normalisation, equivalence and the majority vote.

Equivalence is decided cheapest first: equal ``normalize`` forms; two plain numbers, two
plain-word answers, garbled answers, and simple numeric expressions compared by value
(``rzero_pl.answer_forms``), all here; otherwise math-verify in both directions, in a worker
process under a hard timeout (``rzero_pl.verify_pool``). Only that last step is slow, so the
vote groups identical normal forms first, remembers every checked pair, and sends the checks
of many questions to the worker pool together.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from rzero_pl.answer_forms import decide_by_value, normalize
from rzero_pl.verify_pool import TIMED_OUT, VerifyPool, shared_pool

log = logging.getLogger(__name__)

MAX_VERIFY_CHARS = 1000  # longer normalised answers are compared as strings only
CACHE_SIZE = 1 << 17  # checked pairs remembered (least recently used are dropped)

# ---------------------------------------------------------------------- extraction

_BOX_OPEN = re.compile(r"\\(?:boxed|fbox)\s*\{")
_BRACE = re.compile(r"\\.|[{}]", re.DOTALL)  # an escaped character, or a brace that counts


def extract_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{…}`` or ``\\fbox{…}`` in ``text``.

    Braces nest (``\\boxed{\\frac{1}{2}}`` gives ``\\frac{1}{2}``) and escaped braces ``\\{``,
    ``\\}`` do not count. ``None`` when there is no box, the last box is never closed (a
    truncated generation), or it holds only whitespace. Linear time, no recursion.
    """
    last = None
    for last in _BOX_OPEN.finditer(text or ""):  # noqa: B007 - keep the last match
        pass
    if last is None:
        return None
    depth = 1
    for token in _BRACE.finditer(text, last.end()):
        brace = token.group()
        if brace == "{":
            depth += 1
        elif brace == "}":
            depth -= 1
            if depth == 0:
                content = text[last.end() : token.start()].strip()
                return content or None
    return None


# ---------------------------------------------------------------------- equivalence

_WORDS = re.compile(r"[^\W\d_](?:[^\W\d_]|[ '\-])*")  # letters, spaces, hyphens, apostrophes
_WORD = re.compile(r"[^\W\d_]{2,}")
_LONG_WORD = re.compile(r"(?<![\\\w])[^\W\d_]{3,}")
_NUMBER = re.compile(
    r"(?P<sign>-?)(?:(?P<integer>\d+)|(?P<decimal>\d*\.\d+)|(?P<p>\d+)/(?P<q>\d+)"
    r"|\\frac\{(?P<fp>\d+)\}\{(?P<fq>\d+)\}|\\frac ?(?P<dp>\d)(?P<dq>\d))"
)


def _number(s: str) -> tuple[Fraction, bool] | None:
    """A plain number's exact value and whether it was written with a decimal point."""
    m = _NUMBER.fullmatch(s) if len(s) <= 100 else None
    if m is None:
        return None
    sign = -1 if m["sign"] else 1
    if m["integer"] or m["decimal"]:
        return sign * Fraction(m["integer"] or m["decimal"]), m["decimal"] is not None
    p, q = (int(m[p] or m[f] or m[d]) for p, f, d in (("p", "fp", "dp"), ("q", "fq", "dq")))
    return (sign * Fraction(p, q), False) if q else None


def _decide_locally(a: str, b: str) -> bool | None:
    """Equivalence of two normalised answers when it needs no math-verify, else None."""
    if not a or not b:
        return False
    if a == b:
        return True
    x, y = _number(a), _number(b)
    if x and y:  # math-verify's rules for two numbers, without sympy:
        if not (x[1] or y[1]):
            return x[0] == y[0]  # no decimal point: exact
        if round(x[0], 6) != round(y[0], 6):  # a decimal point: equal to 6 places...
            return False
        # ...except that an integer is compared exactly (sympy: Float(3.0000001).round(6) != 3)
        return x[0] == y[0] if any(not n[1] and n[0].denominator == 1 for n in (x, y)) else True
    words_a = _WORDS.fullmatch(a) is not None and _WORD.search(a) is not None
    words_b = _WORDS.fullmatch(b) is not None and _WORD.search(b) is not None
    if words_a and words_b:  # math-verify would read "no" as n*o and equate it with "on"
        return a.casefold() == b.casefold()
    if max(len(a), len(b)) > MAX_VERIFY_CHARS or _garbled(a) or _garbled(b):
        return False
    if (_wordy(a) and _has_digit(b)) or (_wordy(b) and _has_digit(a)):
        return False
    return decide_by_value(a, b)  # two simple numeric expressions, or None


def _has_digit(s: str) -> bool:
    return any(c.isdigit() for c in s)


def _garbled(s: str) -> bool:
    """Not math at all: math-verify keeps it as a string, equal only to itself (``((``,
    ``a+``, ``\\frac{?}{}``): unbalanced brackets or braces, an empty group, a question mark,
    or a trailing operator."""
    if "?" in s or "{}" in s or s[-1] in "+-*/^=_":
        return True
    opened = s.count("(") + s.count("[")  # intervals mix them: [a, b)
    if opened != s.count(")") + s.count("]"):
        return True
    depth = 0
    for c in s:
        depth += (c == "{") - (c == "}")
        if depth < 0:
            return True
    return depth != 0


def _wordy(s: str) -> bool:
    """No digits but a word of 3+ letters (not a command): never a number (``undefined!!``)."""
    return _LONG_WORD.search(s) is not None and not any(c.isdigit() for c in s)


class _LRU(OrderedDict):
    """Verdicts on normalised pairs; beyond ``size`` the least recently used are dropped."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size, self.lock = size, threading.Lock()

    def recall(self, key: tuple[str, str]):
        with self.lock:
            if key in self:
                self.move_to_end(key)
            return self.get(key)

    def remember(self, key: tuple[str, str], verdict) -> None:
        with self.lock:
            self[key] = verdict
            self.move_to_end(key)
            if len(self) > self.size:
                self.popitem(last=False)


_cache = _LRU(CACHE_SIZE)


def _key(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a <= b else (b, a)  # the check runs both ways, so order is irrelevant


def _lookup(a: str, b: str):
    """True, False, TIMED_OUT (falsy) or None (not known yet) for two normalised answers."""
    local = _decide_locally(a, b)
    return local if local is not None else _cache.recall(_key(a, b))


def _record(key: tuple[str, str], verdict):
    """Remember a pool verdict; None (never checked: pool closed or broken) stays unknown."""
    if verdict is None:
        return False
    _cache.remember(key, verdict)
    return verdict


def equivalent_many(
    pairs: Sequence[tuple[str | None, str | None]],
    timeout: float = 5.0,
    pool: VerifyPool | None = None,
) -> list[bool]:
    """``equivalent`` for many pairs, the math-verify checks spread over the worker pool."""
    out = [False] * len(pairs)
    todo: dict[tuple[str, str], list[int]] = {}
    for i, (a, b) in enumerate(pairs):
        if a is None or b is None:
            continue
        na, nb = normalize(str(a)), normalize(str(b))  # str(): a gold read from JSON as 18
        verdict = _lookup(na, nb)
        if verdict is None:
            todo.setdefault(_key(na, nb), []).append(i)
        else:
            out[i] = bool(verdict)
    if todo:
        try:
            verdicts = (pool or shared_pool()).map(list(todo), timeout)
        except Exception:
            log.exception("answer equivalence check failed")
            verdicts = [None] * len(todo)
        for (key, where), verdict in zip(todo.items(), verdicts, strict=True):
            for i in where:
                out[i] = bool(_record(key, verdict))
    return out


def equivalent(a: str | None, b: str | None, timeout: float = 5.0) -> bool:
    """Whether two answers are mathematically the same.

    ``None`` or a blank on either side is False. Equal ``normalize`` forms are True at once. Two
    plain numbers are compared here by math-verify's rules (exact; to 6 decimal places when one
    has a decimal point, but exactly against an integer), two plain-word answers ignoring case,
    a plain number is never a word, prose is never a number, a garbled answer (unbalanced
    brackets, ``?``, a trailing operator) equals only itself, and two expressions of integers,
    fractions, roots, pi and integer powers (or lists of them) are compared by value to 50
    digits (``rzero_pl.answer_forms``). Anything else goes to math-verify, both directions
    (either is enough), in a worker process killed after ``timeout`` seconds. A timeout, a parse
    failure or an error is False; nothing is raised. Verdicts are cached on the normalised pair
    (a timeout too, whatever ``timeout`` it had).
    """
    return equivalent_many([(a, b)], timeout)[0]


# ---------------------------------------------------------------------- majority vote


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

    STRIKES = 2  # timeouts after which a form is no longer sent to math-verify in this question

    def __init__(self, answers: Sequence[str | None]) -> None:
        self.num_answers, self.num_missing = len(answers), 0
        forms: dict[str, list] = {}  # normalised → [first raw answer, count], first-seen order
        for answer in answers:
            norm = normalize(answer) if answer is not None else ""
            if not norm:
                self.num_missing += 1
            elif norm in forms:
                forms[norm][1] += 1
            else:
                forms[norm] = [answer.strip(), 1]
        self.forms = [(norm, raw, count) for norm, (raw, count) in forms.items()]
        self.clusters: list[list] = []  # [representative raw, representative normalised, count]
        self.next = 0
        self.waiting: set[tuple[str, str]] = set()
        self.strikes: dict[str, int] = {}

    def advance(self, known: dict) -> set[tuple[str, str]]:
        """Place forms until one needs an unchecked pair; return the pairs it waits for.

        A form joins the first cluster whose representative is equivalent to it, so it needs
        the verdicts for every cluster before the first known match. A form whose checks timed
        out ``STRIKES`` times (``9^{9^{9^{9}}}``) is taken as equivalent to nothing further, so
        one pathological answer costs two timeouts, not one per cluster.
        """
        while self.next < len(self.forms):
            norm, raw, count = self.forms[self.next]
            unknown, home, timed_out = set(), None, []
            for cluster in self.clusters:
                if max(self.strikes.get(f, 0) for f in (norm, cluster[1])) >= self.STRIKES:
                    continue
                key = _key(norm, cluster[1])
                verdict = known[key] if key in known else _lookup(norm, cluster[1])
                if verdict is None:
                    unknown.add(key)
                elif verdict:
                    home = cluster
                    break
                elif verdict is TIMED_OUT:
                    timed_out.append(cluster[1])
            if unknown:
                return unknown
            for form in [norm] * len(timed_out) + timed_out:
                self.strikes[form] = self.strikes.get(form, 0) + 1
            if home is None:
                self.clusters.append([raw, norm, count])
            else:
                home[2] += count
            self.next += 1
        return set()

    def vote(self) -> Vote:
        clusters = [(raw, count) for raw, _, count in self.clusters]
        if not clusters:
            return Vote(None, 0.0, 0, [], self.num_answers, self.num_missing)
        label, size = max(clusters, key=lambda c: c[1])  # max keeps the first of equals
        return Vote(
            label, size / self.num_answers, size, clusters, self.num_answers, self.num_missing
        )


def majority_votes(
    answer_lists: Sequence[Sequence[str | None]],
    timeout: float = 5.0,
    pool: VerifyPool | None = None,
) -> list[Vote]:
    """``majority_vote`` for many questions, their math-verify checks sharing the worker pool.

    Each question's clustering advances on its own as its verdicts arrive, so the pool stays
    busy until the last question is placed.
    """
    questions = [_Clustering(answers) for answers in answer_lists]
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
            known[key] = _record(key, verdict)
            for question in waiters.pop(key):
                question.waiting.discard(key)
                if not question.waiting:
                    advance(question, new)
    return [question.vote() for question in questions]


def majority_vote(answers: Sequence[str | None], timeout: float = 5.0) -> Vote:
    """Cluster answers by equivalence, greedily in first-seen order, and take the largest.

    An answer joins the first cluster whose representative (its first answer) is
    ``equivalent`` to it, else starts a new one. Ties go to the first-seen cluster. ``None`` or
    blank answers are unanswered votes: they count in ``num_answers`` (the share's denominator)
    but join no cluster; with no answer at all the label is None and the share 0. Identical
    normalised answers are grouped first, so math-verify only compares distinct forms.
    """
    return majority_votes([answers], timeout)[0]
