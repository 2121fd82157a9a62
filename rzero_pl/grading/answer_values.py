"""Values of simple numeric answers: exact where rational, checked precision where not.

``value_of`` reads a normalised answer inside a small safe subset of LaTeX (below) with a
recursive-descent parser (no sympy, no ``eval``). A value is kept exactly as a ``Fraction``
while it is rational (integers, fractions, integer powers, roots of perfect squares), and as
a 100-digit mpmath number once a root or pi makes it irrational. ``same_value`` then says:

- two rational values: equal exactly or not at all (``10^{36}+1`` is not ``10^{36}``);
- otherwise: different when they differ by more than ``DISTINCT`` (relative); equal only when
  they agree to ``EQUAL`` (relative, far below the 100 digits' rounding) *and* every
  intermediate result of both stayed within ``[1/WELL, WELL]`` in magnitude, so rounding cannot
  hide a real difference; anything in between is left to math-verify (None).

The subset: integers; ``+ - * / ^``; ``\\cdot`` and ``\\times``; implicit products before a
root or pi (``2\\sqrt{3}``, ``3\\pi``); ``\\frac{a}{b}`` and ``\\frac12``; ``\\sqrt{a}`` and
``\\sqrt 7``; ``\\pi``; parentheses and braces for grouping; integer exponents up to
``MAX_EXPONENT``. An implicit product binds tighter than ``/``, as in math-verify:
``2/3\\pi`` is ``2/(3π)``, not ``2π/3``. A top-level ``(a, b, …)`` or ``[a, b)`` is a list of
such values with its brackets (math-verify reads two elements in brackets as an interval).
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from fractions import Fraction

import mpmath

DIGITS = 100  # significant digits of every irrational value
MAX_EXPONENT = 64  # larger integer exponents are left to math-verify
MAX_MAGNITUDE = 10**60  # so are values beyond this
MAX_DENOMINATOR = 10**120  # and exact values with a larger denominator
MAX_CHARS = 200
EQUAL = mpmath.mpf(10) ** -80  # relative distance below which two irrational values are one
DISTINCT = mpmath.mpf(10) ** -9  # and above which they are surely two
WELL = 10**15  # intermediate magnitudes an equality verdict on irrationals trusts

_CTX = mpmath.MPContext()
_CTX.dps = DIGITS
_TOKEN = re.compile(r"\d+(?:\.\d+)?|\\[A-Za-z]+|\S")
_MULTIPLY = {"*", "\\cdot", "\\times"}
# An implicit product only before a root or pi: "2 3", the mixed number "2\frac{1}{2}" and
# "(2)(3)" (math-verify does not read it as 6) are not read.
_STARTS_FACTOR = re.compile(r"\\(?:sqrt|pi)$")


class _Unsupported(Exception):
    """The answer is outside the subset: leave it to math-verify."""


@dataclass(frozen=True)
class Num:
    """One value: ``exact`` when rational, else ``approx`` (mpf) and whether it is well kept."""

    exact: Fraction | None
    approx: object  # mpmath mpf at DIGITS
    well: bool = True  # every intermediate result within [1/WELL, WELL] (or zero)

    def __float__(self) -> float:
        return float(self.exact) if self.exact is not None else float(self.approx)


@dataclass(frozen=True)
class Value:
    """A parsed answer: one number, or a list of numbers with its brackets."""

    numbers: tuple  # of Num
    brackets: str | None = None  # "()", "[)", … for a list; None for one number


def _exact(q: Fraction) -> Num:
    if abs(q) > MAX_MAGNITUDE or q.denominator > MAX_DENOMINATOR:
        raise _Unsupported
    return Num(q, None)


def _inexact(x, *parts: Num) -> Num:
    if not _CTX.isfinite(x) or abs(x) > MAX_MAGNITUDE:
        raise _Unsupported
    well = all(p.well for p in parts) and (x == 0 or 1 / WELL <= abs(x) <= WELL)
    return Num(None, x, well)


def _mp(n: Num):
    return n.approx if n.exact is None else _CTX.mpf(n.exact.numerator) / n.exact.denominator


def _combine(op: str, a: Num, b: Num) -> Num:
    if a.exact is not None and b.exact is not None:
        if op == "/" and b.exact == 0:
            raise _Unsupported
        x, y = a.exact, b.exact
        return _exact({"+": x + y, "-": x - y, "*": x * y, "/": x / y if y else x}[op])
    x, y = _mp(a), _mp(b)
    if op == "/" and y == 0:
        raise _Unsupported
    return _inexact({"+": x + y, "-": x - y, "*": x * y, "/": x / y if y else x}[op], a, b)


def _power(base: Num, exponent: Num) -> Num:
    e = exponent.exact
    if e is None or e.denominator != 1 or abs(e) > MAX_EXPONENT:
        raise _Unsupported
    e = int(e)
    if base.exact is not None:
        if base.exact == 0 and e < 0:
            raise _Unsupported
        return _exact(base.exact**e)
    return _inexact(_mp(base) ** e, base)


def _sqrt(radicand: Num) -> Num:
    if radicand.exact is not None:
        if radicand.exact < 0:
            raise _Unsupported
        p, q = radicand.exact.numerator, radicand.exact.denominator
        rp, rq = math.isqrt(p), math.isqrt(q)
        if rp * rp == p and rq * rq == q:
            return _exact(Fraction(rp, rq))
    x = _mp(radicand)
    if x < 0:
        raise _Unsupported
    return _inexact(_CTX.sqrt(x), radicand)


class _Parser:
    def __init__(self, tokens: list[str]) -> None:
        self.tokens, self.i = tokens, 0

    def peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise _Unsupported
        self.i += 1
        return token

    def expression(self) -> Num:
        value = self.term()
        while self.peek() in ("+", "-"):
            sign = self.take()
            value = _combine(sign, value, self.term())
        return value

    def term(self) -> Num:
        value = self.product()
        while self.peek() in _MULTIPLY or self.peek() == "/":
            op = "/" if self.take() == "/" else "*"
            value = _combine(op, value, self.product())
        return value

    def product(self) -> Num:
        """Implicit products (``3\\pi``, ``2\\sqrt{3}``) bind tighter than ``*`` and ``/``."""
        value = self.power()
        while (token := self.peek()) is not None and _STARTS_FACTOR.match(token):
            value = _combine("*", value, self.power())
        return value

    def power(self) -> Num:
        if self.peek() in ("-", "+"):
            sign = self.take()
            value = self.power()
            return _combine("-", _exact(Fraction(0)), value) if sign == "-" else value
        base = self.atom()
        if self.peek() != "^":
            return base
        self.take()
        return _power(base, self.group() if self.peek() == "{" else self.digit())

    def atom(self) -> Num:
        token = self.take()
        if token[0].isdigit():
            if "." in token or len(token) > 30:  # decimals: math-verify's rounding rules
                raise _Unsupported
            return _exact(Fraction(int(token)))
        if token == "\\pi":
            return _inexact(_CTX.pi)
        if token == "\\frac":
            return self.fraction()
        if token == "\\sqrt":
            return _sqrt(self.group() if self.peek() == "{" else self.digit())
        if token in ("(", "{"):
            self.i -= 1
            return self.group()
        raise _Unsupported

    def fraction(self) -> Num:
        if self.peek() == "{":
            numerator = self.group()
            denominator = self.group() if self.peek() == "{" else self.digit()
        else:  # \frac12: two single digits
            token = self.take()
            if not (token.isdigit() and len(token) == 2):
                raise _Unsupported
            numerator, denominator = (_exact(Fraction(int(d))) for d in token)
        return _combine("/", numerator, denominator)

    def group(self) -> Num:
        close = {"(": ")", "{": "}"}.get(self.take())
        if close is None:
            raise _Unsupported
        value = self.expression()
        self.take(close)
        return value

    def digit(self) -> Num:
        token = self.take()
        if not (token.isdigit() and len(token) == 1):  # \sqrt 12 is sqrt(1)*2 in LaTeX
            raise _Unsupported
        return _exact(Fraction(int(token)))


def _parse_expression(tokens: list[str]) -> Num:
    """The value of a whole token list read as one expression of the subset; raises
    ``_Unsupported`` if anything is left over. (``answers._plain_number`` is the other,
    string-level parser: one plain number, decimals included.)"""
    parser = _Parser(tokens)
    value = parser.expression()
    if parser.peek() is not None:
        raise _Unsupported
    return value


def _split_list(tokens: list[str]) -> list[list[str]] | None:
    """The elements of a top-level ``(a, b, …)`` or ``[a, b)``; None if it is not one."""
    if len(tokens) < 5 or tokens[0] not in "([" or tokens[-1] not in ")]":
        return None
    parts, current, depth = [], [], 0
    for token in tokens[1:-1]:
        if token in ("(", "[", "{"):
            depth += 1
        elif token in (")", "]", "}"):
            depth -= 1
            if depth < 0:
                return None
        if token == "," and depth == 0:
            parts.append(current)
            current = []
        else:
            current.append(token)
    parts.append(current)
    return parts if depth == 0 and len(parts) >= 2 else None


@functools.lru_cache(maxsize=1 << 16)
def value_of(answer: str) -> Value | None:
    """The value of a normalised answer inside the subset (module docstring), else None."""
    if len(answer) > MAX_CHARS:
        return None
    tokens = _TOKEN.findall(answer)
    try:
        parts = _split_list(tokens)
        if parts is None:
            return Value((_parse_expression(tokens),))
        return Value(tuple(_parse_expression(p) for p in parts), tokens[0] + tokens[-1])
    except (_Unsupported, ZeroDivisionError, OverflowError, ValueError):
        return None


def same_value(x: Num, y: Num) -> bool | None:
    """Whether two values are equal: exact for rationals, checked precision otherwise."""
    if x.exact is not None and y.exact is not None:
        return x.exact == y.exact
    a, b = _mp(x), _mp(y)
    distance = abs(a - b) / max(abs(a), abs(b), 1)
    if distance > DISTINCT:
        return False
    if distance <= EQUAL and x.well and y.well:
        return True
    return None  # close, or too close for the precision kept: let math-verify judge


def decide_by_value(a: str, b: str) -> bool | None:
    """Whether two normalised answers are equal, when both have values; else None."""
    x, y = value_of(a), value_of(b)
    if x is None or y is None or len(x.numbers) != len(y.numbers):
        return None if x is None or y is None else False
    if x.brackets != y.brackets and len(x.numbers) != 2:
        return None  # a tuple against a list of another kind: math-verify's call
    verdicts = [same_value(p, q) for p, q in zip(x.numbers, y.numbers, strict=True)]
    if False in verdicts or x.brackets != y.brackets:  # [a, b) is not (a, b)
        return False
    return None if None in verdicts else True
