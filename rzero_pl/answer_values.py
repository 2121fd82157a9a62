"""Values of simple numeric answers, so that most answer pairs need no math-verify.

Solver answers are mostly numbers built from a few integers: ``\\frac{3\\sqrt{2}}{4}``,
``2^{10}``, ``\\pi/2``, ``[-3, 6)``. ``value_of`` reads such a (normalised) answer with a
small recursive-descent parser over a safe subset of LaTeX and computes its value to 50
significant digits (mpmath, no sympy, no ``eval``); ``decide_by_value`` compares two of them
the way math-verify would. Anything outside the subset (variables, decimals, functions,
sets, huge powers) gives ``None``: the pair goes to math-verify as before.

The subset: integers; ``+ - * / ^``; ``\\cdot`` and ``\\times``; implicit products before
a root or pi (``2\\sqrt{3}``, ``3\\pi``); ``\\frac{a}{b}`` and ``\\frac12``; ``\\sqrt{a}``
and ``\\sqrt 7``; ``\\pi``; parentheses and braces for grouping; integer exponents up to
``MAX_EXPONENT``. A top-level ``(a, b, …)`` or ``[a, b)`` is a list of such values with its
brackets (math-verify reads two elements in brackets as an interval).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import mpmath

DIGITS = 50  # significant digits of every computed value
MAX_EXPONENT = 64  # larger integer exponents are left to math-verify
MAX_MAGNITUDE = mpmath.mpf(10) ** 60  # so are values beyond this
MAX_CHARS = 200
EQUAL = mpmath.mpf(10) ** -35  # relative distance below which two values are one
DISTINCT = mpmath.mpf(10) ** -9  # and above which they are surely two

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
class Value:
    """A parsed answer: one number, or a list of numbers with its brackets."""

    numbers: tuple  # of mpmath mpf
    brackets: str | None = None  # "()", "[)", … for a list; None for one number


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

    def expression(self) -> mpmath.mpf:
        value = self.term()
        while self.peek() in ("+", "-"):
            sign = self.take()
            other = self.term()
            value = value + other if sign == "+" else value - other
        return _checked(value)

    def term(self) -> mpmath.mpf:
        value = self.power()
        while True:
            token = self.peek()
            if token in _MULTIPLY:
                self.take()
                value = value * self.power()
            elif token == "/":
                self.take()
                divisor = self.power()
                if divisor == 0:
                    raise _Unsupported
                value = value / divisor
            elif token is not None and _STARTS_FACTOR.match(token):  # implicit product
                value = value * self.power()
            else:
                return _checked(value)

    def power(self) -> mpmath.mpf:
        if self.peek() in ("-", "+"):
            sign = self.take()
            value = self.power()
            return -value if sign == "-" else value
        base = self.atom()
        if self.peek() != "^":
            return base
        self.take()
        exponent = self.group() if self.peek() == "{" else self.digit()
        if exponent != int(exponent) or abs(exponent) > MAX_EXPONENT or (base == 0 > exponent):
            raise _Unsupported
        return _checked(base ** int(exponent))

    def atom(self) -> mpmath.mpf:
        token = self.take()
        if token[0].isdigit():
            if "." in token or len(token) > 30:  # decimals: math-verify's rounding rules
                raise _Unsupported
            return _CTX.mpf(int(token))
        if token == "\\pi":
            return _CTX.pi
        if token == "\\frac":
            return self.fraction()
        if token == "\\sqrt":
            radicand = self.group() if self.peek() == "{" else self.digit()
            if radicand < 0:
                raise _Unsupported
            return _CTX.sqrt(radicand)
        if token in ("(", "{"):
            self.i -= 1
            return self.group()
        raise _Unsupported

    def fraction(self) -> mpmath.mpf:
        if self.peek() == "{":
            numerator = self.group()
            denominator = self.group() if self.peek() == "{" else self.digit()
        else:  # \frac12: two single digits
            token = self.take()
            if not (token.isdigit() and len(token) == 2):
                raise _Unsupported
            numerator, denominator = _CTX.mpf(int(token[0])), _CTX.mpf(int(token[1]))
        if denominator == 0:
            raise _Unsupported
        return numerator / denominator

    def group(self) -> mpmath.mpf:
        close = {"(": ")", "{": "}"}.get(self.take())
        if close is None:
            raise _Unsupported
        value = self.expression()
        self.take(close)
        return value

    def digit(self) -> mpmath.mpf:
        token = self.take()
        if not (token.isdigit() and len(token) == 1):  # \sqrt 12 is sqrt(1)*2 in LaTeX
            raise _Unsupported
        return _CTX.mpf(int(token))


def _checked(value: mpmath.mpf) -> mpmath.mpf:
    if not _CTX.isfinite(value) or abs(value) > MAX_MAGNITUDE:
        raise _Unsupported
    return value


def _number(tokens: list[str]) -> mpmath.mpf:
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
            return Value((_number(tokens),))
        return Value(tuple(_number(p) for p in parts), tokens[0] + tokens[-1])
    except (_Unsupported, ZeroDivisionError, OverflowError, ValueError):
        return None


def _same(x: mpmath.mpf, y: mpmath.mpf) -> bool | None:
    distance = abs(x - y) / max(abs(x), abs(y), 1)
    if distance <= EQUAL:
        return True
    if distance > DISTINCT:
        return False
    return None  # close but not equal: let math-verify judge


def decide_by_value(a: str, b: str) -> bool | None:
    """Whether two normalised answers are equal, when both have values; else None."""
    x, y = value_of(a), value_of(b)
    if x is None or y is None or len(x.numbers) != len(y.numbers):
        return None if x is None or y is None else False
    if x.brackets != y.brackets and len(x.numbers) != 2:
        return None  # a tuple against a list of another kind: math-verify's call
    verdicts = [_same(p, q) for p, q in zip(x.numbers, y.numbers, strict=True)]
    if False in verdicts or x.brackets != y.brackets:  # [a, b) is not (a, b)
        return False
    return None if None in verdicts else True
