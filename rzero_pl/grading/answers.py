"""Final answers: extraction, normalisation, grading against a gold, and equivalence for votes.

Two questions, two functions:

- **Grading** (``matches``/``matches_many``): is a response right, given the gold? Asymmetric,
  gold first, as math-verify's ``verify(gold, prediction)`` intends: a gold ``2x + z = 1``
  does not accept the bare right-hand side ``1``, a gold ``(3, 1)`` does not accept the set
  ``\\{1, 3\\}`` (while a gold set accepts the tuple, math-verify's rule).
- **Clustering** (``equivalent``/``equivalent_many``, used by ``majority_votes``): are two
  answers the same? A vote needs a symmetric relation, so two answers are equivalent only
  when math-verify agrees in *both* directions; an equation and its right-hand side, or a
  set and a tuple, stay in separate clusters.

Both decide cheapest first: equal ``normalize`` forms; two plain numbers, two plain-word
answers, garbled answers, percents, assignments, matrices (entry by entry; never equal to a
scalar or to another shape) and simple numeric expressions by value
(``rzero_pl.grading.answer_values``), all here and all symmetric; otherwise math-verify, both
directions in one check, in a worker process under a hard timeout (``rzero_pl.grading.verify_pool``).
Verdicts are cached on the normalised pair.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from fractions import Fraction

from rzero_pl.grading.answer_forms import (
    RELATION,
    decide_by_value,
    matrix_of,
    normalize,
    split_assignment,
    split_percent,
    value_of,
)
from rzero_pl.grading.extraction import extract_boxed, extract_boxes, extract_final  # noqa: F401
from rzero_pl.grading.verify_pool import TIMED_OUT, Verdict, VerifyPool, shared_pool  # noqa: F401

log = logging.getLogger(__name__)

# Seconds one math-verify check may take, said once. A run sets it in one place, the solver's
# ``answer_timeout`` (``SolverGRPO``), which reaches its reward, the votes, the curriculum and
# the evaluation through ``SolverReading``; a library call without a timeout uses this.
ANSWER_TIMEOUT = 5.0

MAX_VERIFY_CHARS = 1000  # longer normalised answers are compared as strings only
CACHE_SIZE = 1 << 17  # checked pairs remembered (least recently used are dropped)

_NUMBER_CHARS = 100

# ---------------------------------------------------------------------- local decisions

_WORDS = re.compile(r"[^\W\d_](?:[^\W\d_]|[ '\-])*")  # letters, spaces, hyphens, apostrophes
_WORD = re.compile(r"[^\W\d_]{2,}")
_LONG_WORD = re.compile(r"(?<![\\\w])[^\W\d_]{3,}")
_NUMBER = re.compile(
    r"(?P<sign>-?)(?:(?P<integer>\d+)|(?P<decimal>\d*\.\d+)|(?P<p>\d+)/(?P<q>\d+)"
    r"|\\frac\{(?P<fp>\d+)\}\{(?P<fq>\d+)\}|\\frac ?(?P<dp>\d)(?P<dq>\d))"
)


def _plain_number(s: str) -> tuple[Fraction, bool] | None:
    """A plain number's exact value and whether it was written with a decimal point.

    Not ``answer_values``' expression parser: that one reads integer expressions over a token
    list and has no decimals, while this reads one whole string as a number and keeps the
    decimal point, which math-verify's 6-place rule for floats needs (``_same_number``).
    """
    m = _NUMBER.fullmatch(s) if len(s) <= _NUMBER_CHARS else None
    if m is None:
        return None
    sign = -1 if m["sign"] else 1
    if m["integer"] or m["decimal"]:
        return sign * Fraction(m["integer"] or m["decimal"]), m["decimal"] is not None
    p, q = (int(m[p] or m[f] or m[d]) for p, f, d in (("p", "fp", "dp"), ("q", "fq", "dq")))
    return (sign * Fraction(p, q), False) if q else None


def _same_number(x: tuple[Fraction, bool], y: tuple[Fraction, bool]) -> bool:
    """math-verify's rules for two numbers, without sympy."""
    if not (x[1] or y[1]):
        return x[0] == y[0]  # no decimal point: exact
    if round(x[0], 6) != round(y[0], 6):  # a decimal point: equal to 6 places...
        return False
    # ...except that an integer is compared exactly (sympy: Float(3.0000001).round(6) != 3)
    return x[0] == y[0] if any(not n[1] and n[0].denominator == 1 for n in (x, y)) else True


def _decide_percent(a: str, b: str) -> bool | None:
    """A percent against another answer, as math-verify 0.9 decides it: ``x%`` equals ``x/100``,
    and equals ``x`` itself only when ``x`` is an integer (``50\\%`` is ``0.5`` and ``50``;
    ``0.5\\%`` is ``0.005``, not ``0.5`` or ``\\frac{1}{2}``). An integer written with a
    decimal point is one too: ``50.0\\%`` is ``50`` as ``50\\%`` is."""
    pa, pb = split_percent(a), split_percent(b)
    if pa is not None and pb is not None:
        return decide_locally(pa, pb)
    if pb is not None:
        a, pa, b = b, pb, a
    x, y = _plain_number(pa), _plain_number(b)
    if x is None or y is None:
        return None
    if _same_number((x[0] / 100, True), y):
        return True
    return x[0].denominator == 1 and _same_number(x, y)


def decide_locally(a: str, b: str) -> bool | None:
    """Equivalence of two normalised answers when it needs no math-verify, else None.

    Symmetric, so it serves grading and clustering alike.
    """
    if not a or not b:
        return False
    if a == b or a.replace(", ", ",") == b.replace(", ", ","):
        return True
    ma, mb = matrix_of(a), matrix_of(b)
    if ma is not None or mb is not None:
        return _decide_matrices(ma, mb, b if ma is not None else a)
    if split_percent(a) is not None or split_percent(b) is not None:
        return _decide_percent(a, b)
    sa, sb = split_assignment(a), split_assignment(b)
    if sa is not None or sb is not None:  # "x=3" is "3"; "(x,y)=(1,2)" is not "(y,x)=(1,2)"
        if sa is not None and sb is not None:
            return decide_locally(sa[1], sb[1]) if sa[0] == sb[0] else None
        if RELATION.search(b if sa is not None else a):
            return None  # an assignment against another equation: math-verify's call
        return decide_locally(sa[1], b) if sa is not None else decide_locally(a, sb[1])
    x, y = _plain_number(a), _plain_number(b)
    if x and y:
        return _same_number(x, y)
    words_a = _WORDS.fullmatch(a) is not None and _WORD.search(a) is not None
    words_b = _WORDS.fullmatch(b) is not None and _WORD.search(b) is not None
    if words_a and words_b:  # math-verify would read "no" as n*o and equate it with "on"
        return a.casefold() == b.casefold()
    if max(len(a), len(b)) > MAX_VERIFY_CHARS or _garbled(a) or _garbled(b):
        return False
    if (_wordy(a) and _has_digit(b)) or (_wordy(b) and _has_digit(a)):
        return False
    return decide_by_value(a, b)  # two simple numeric expressions, or None


def _decide_matrices(ma, mb, other: str) -> bool | None:
    """Two answers, at least one a matrix or vector (``matrix_of``): entry by entry, locally.

    A matrix never equals a number, a tuple or an expression (math-verify agrees), nor a
    matrix of another shape; an answer holding another environment than those ``matrix_of``
    reads is math-verify's call, and so is a pair with an entry decided nowhere here.
    """
    if ma is None or mb is None:
        return None if "\\begin" in other else False
    if len(ma) != len(mb) or len(ma[0]) != len(mb[0]):
        return False
    cells = [
        (x, y)
        for row_a, row_b in zip(ma, mb, strict=True)
        for x, y in zip(row_a, row_b, strict=True)
    ]
    verdicts = [decide_locally(x, y) for x, y in cells]
    if False in verdicts:
        return False
    return None if None in verdicts else True


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


def reduce_pair(a: str, b: str) -> tuple[str, str]:
    """Two normalised answers with an assignment's left side dropped where it cannot matter:
    from both when they assign the same variables (``x=3``, ``x=4``), from the one side that
    is an assignment (``x=3``, ``3``). math-verify then compares values, not equations (it
    reads ``N=n`` as ``Eq(n, n)``, true, and equates it with ``N=n+1``, false)."""
    sa, sb = split_assignment(a), split_assignment(b)
    if sa is not None and sb is not None:
        return (sa[1], sb[1]) if sa[0] == sb[0] else (a, b)
    if sa is not None and not RELATION.search(b):  # not against an equation: y=… is one
        return sa[1], b
    if sb is not None and not RELATION.search(a):
        return a, sb[1]
    return a, b


def cheap(s: str) -> bool:
    """Whether a normalised answer is one math-verify reads at once (a plain number, a simple
    value): when a pair with it times out, the other answer is the slow one."""
    return _plain_number(s) is not None or value_of(s) is not None or len(s) <= 3


# ---------------------------------------------------------------------- the verdict cache


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


def pair_key(a: str, b: str) -> tuple[str, str]:
    """The cache key of a pair: sorted, with the pool's ``Verdict`` read in this order."""
    return (a, b) if a <= b else (b, a)


def cached_verdict(a: str, b: str):
    """The cached math-verify verdict on a pair: a ``Verdict``, TIMED_OUT, or None."""
    return _cache.recall(pair_key(a, b))


def remember_verdict(key: tuple[str, str], verdict):
    """Remember a pool verdict; None (never checked: pool closed or broken) stays unknown."""
    if verdict is not None:
        _cache.remember(key, verdict)
    return verdict


def oriented(verdict, key: tuple[str, str], gold: str | None) -> bool:
    """A verdict as a boolean: ``gold`` first (grading) or both directions (gold None)."""
    if not isinstance(verdict, Verdict):
        return bool(verdict) if isinstance(verdict, bool) else False
    if gold is None:
        return verdict.forward and verdict.backward
    return verdict.forward if gold == key[0] else verdict.backward


def _decide_many(pairs, timeout: float, pool: VerifyPool | None, graded: bool) -> list[bool]:
    out = [False] * len(pairs)
    todo: dict[tuple[str, str], list[tuple[int, str]]] = {}
    for i, (a, b) in enumerate(pairs):
        if a is None or b is None:
            continue
        na, nb = normalize(str(a)), normalize(str(b))  # str(): a gold read from JSON as 18
        na, nb = reduce_pair(na, nb)
        local = decide_locally(na, nb)
        if local is not None:
            out[i] = local
            continue
        key, cached = pair_key(na, nb), cached_verdict(na, nb)
        if cached is None:
            todo.setdefault(key, []).append((i, na))
        else:
            out[i] = oriented(cached, key, na if graded else None)
    if todo:
        try:
            verdicts = (pool or shared_pool()).map(list(todo), timeout)
        except Exception:
            log.exception("answer equivalence check failed")
            verdicts = [None] * len(todo)
        for (key, where), verdict in zip(todo.items(), verdicts, strict=True):
            remember_verdict(key, verdict)
            for i, na in where:
                out[i] = oriented(verdict, key, na if graded else None)
    return out


def matches_many(
    pairs: Sequence[tuple[str | None, str | None]],
    timeout: float = ANSWER_TIMEOUT,
    pool: VerifyPool | None = None,
) -> list[bool]:
    """``matches`` for many ``(gold, response answer)`` pairs, math-verify spread over the pool."""
    return _decide_many(pairs, timeout, pool, graded=True)


def matches(gold: str | None, answer: str | None, timeout: float = ANSWER_TIMEOUT) -> bool:
    """Whether ``answer`` is right for ``gold``: grading, gold first (module docstring).

    Local decisions as for ``equivalent``; otherwise math-verify's ``verify(gold, answer)``
    alone. A timeout, a parse failure, an error or a missing side is False.
    """
    return matches_many([(gold, answer)], timeout)[0]


def equivalent_many(
    pairs: Sequence[tuple[str | None, str | None]],
    timeout: float = ANSWER_TIMEOUT,
    pool: VerifyPool | None = None,
) -> list[bool]:
    """``equivalent`` for many pairs, the math-verify checks spread over the worker pool."""
    return _decide_many(pairs, timeout, pool, graded=False)


def equivalent(a: str | None, b: str | None, timeout: float = ANSWER_TIMEOUT) -> bool:
    """Whether two answers are the same answer: the symmetric relation votes cluster by.

    ``None`` or a blank on either side is False. Equal ``normalize`` forms are True at once. Two
    plain numbers are compared here by math-verify's rules (exact; to 6 decimal places when one
    has a decimal point, but exactly against an integer), two plain-word answers ignoring case,
    a percent as ``x`` or ``x/100``, ``x=3`` as ``3`` (but ``(x,y)=…`` never as ``(y,x)=…``), a
    plain number is never a word, prose is never a number, a garbled answer equals only itself,
    and two expressions of integers, fractions, roots, pi and integer powers (or lists of them)
    are compared by value (``rzero_pl.grading.answer_values``: exact for rationals). Anything else goes
    to math-verify, which must agree in *both* directions, in a worker process killed after
    ``timeout`` seconds. A timeout, a parse failure or an error is False; nothing is raised.
    """
    return equivalent_many([(a, b)], timeout)[0]
