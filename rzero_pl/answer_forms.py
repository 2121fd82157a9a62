"""How answers are written: a normal form for spellings, and values of simple numbers.

``normalize`` erases notation that cannot change an answer's value, so that equal strings
mean equal answers and most votes group without any check. ``value_of`` reads a normalised
answer inside a small safe subset of LaTeX (below) and computes its value to 50 significant
digits (mpmath, no sympy, no ``eval``); ``decide_by_value`` compares two of them the way
math-verify would. Anything outside the subset (variables, decimals, functions, sets, huge
powers) gives ``None``: such a pair goes to math-verify.

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

# ---------------------------------------------------------------------- normalisation

_WRAPPER = re.compile(
    r"\\(?:text|textrm|textbf|textit|textnormal|mbox|mathrm)\s*\{|\\.|[{}]", re.DOTALL
)
_DELIMITER_SIZE = re.compile(r"\\(?:left|right)(?![A-Za-z])\s*\.?|\\[bB]igg?[lr]?(?![A-Za-z])")
_GREEK = "alpha|beta|gamma|delta|epsilon|theta|lambda|mu|phi|varphi|psi|omega|rho|sigma|tau"
_VARIABLE = rf"(?:[A-Za-z]|\\(?:{_GREEK})(?![A-Za-z]))"
_ASSIGNMENT = re.compile(
    rf"(?:{_VARIABLE}|\(\s*{_VARIABLE}(?:\s*,\s*{_VARIABLE})+\s*\))\s*=\s*(?P<value>.+)",
    re.DOTALL,
)
_RELATION = re.compile(r"[=<>]|\\(?:leq?|geq?|neq?|lt|gt|approx|equiv|sim)(?![A-Za-z])")
_THOUSANDS = re.compile(r"-?\d{1,3}(?:(?:,|\{,\}|\\,)\d{3})+")
_THOUSANDS_SEPARATOR = re.compile(r",|\{,\}|\\,")
_FRAC = re.compile(r"\\[dt]frac(?![A-Za-z])")
_DEGREE = re.compile(r"\^\s*(?:\{\s*\\circ\s*\}|\\circ(?![A-Za-z]))|\\degree(?![A-Za-z])|°")
_PERCENT = re.compile(r"\\?%")
_SPACING = re.compile(r"\\[,!:;> ]|\\(?:q?quad|(?:neg)?(?:en|thin|med|thick)space)(?![A-Za-z])|~")
_LOOSE_SPACE = re.compile(r" (?=[\W_])|(?<=[\W_]) ")
_TRAILING_PERIOD = re.compile(r"(?<![\\.])\.$")


def _unwrap_text(s: str) -> str:
    """``\\text{…}``-style wrappers replaced by their content; unchanged if braces unbalanced."""
    out, opened, start = [], [], 0  # opened: for each open brace, whether a wrapper opened it
    for token in _WRAPPER.finditer(s):
        t = token.group()
        if t == "{":
            opened.append(False)
        elif t == "}":
            if not opened:
                return s
            if opened.pop():
                out.append(s[start : token.start()])
                start = token.end()
        elif len(t) > 2:  # a wrapper's opening, e.g. "\text{"
            out.append(s[start : token.start()])
            start = token.end()
            opened.append(True)
    if opened:
        return s
    out.append(s[start:])
    return "".join(out)


def normalize(answer: str) -> str:
    """A canonical spelling of an answer, so that equal strings mean equal answers.

    The rules, in order:

    1. Unicode minus ``−`` becomes ``-``; all ``\\$`` and ``$`` are removed.
    2. ``\\text{…}``, ``\\textrm``, ``\\textbf``, ``\\textit``, ``\\textnormal``, ``\\mbox`` and
       ``\\mathrm`` wrappers are replaced by their content (``\\text{cm}`` → ``cm``).
    3. ``\\left``/``\\right`` (with the null delimiter ``\\left.``), ``\\big``-family sizes and
       ``\\displaystyle`` are removed.
    4. Outer whitespace and one trailing period are stripped (``5.`` → ``5``, not ``...``).
    5. A leading assignment to one variable, a latin letter or a Greek letter command, or to a
       tuple of them, is dropped when nothing after it is a relation: ``x = 3`` → ``3``,
       ``\\theta=30`` → ``30``, ``(x, y) = (1, 2)`` → ``(1, 2)``; but ``x=1, y=2`` and
       ``x = y = 2`` are kept.
    6. Thousands separators ``,``, ``{,}`` and ``\\,`` are removed from a plain integer that is the
       whole answer: ``1,000`` → ``1000``, ``-12{,}345`` → ``-12345``; ``1,23`` is kept.
    7. ``\\dfrac`` and ``\\tfrac`` become ``\\frac``.
    8. Degree marks ``^\\circ``, ``^{\\circ}``, ``\\degree``, ``°`` and percent signs ``\\%``,
       ``%`` are removed (``90^\\circ`` → ``90``, ``50\\%`` → ``50``).
    9. Spacing commands ``\\,``, ``\\!``, ``\\:``, ``\\;``, ``\\>``, ``\\ ``, ``\\quad``,
       ``\\qquad``, ``\\…space`` and ``~`` become spaces.
    10. Runs of whitespace become one space, kept only between two letters or digits:
        ``\\frac {1} {2}`` → ``\\frac{1}{2}``, ``a - b`` → ``a-b``; ``\\pi r``, ``1 2`` keep it.
    11. One trailing period is stripped again.

    The rules only erase notation that cannot change the value, so answers that differ never
    share a normal form (``1,000`` is read as one thousand, not the pair 1, 000; ``30^\\circ``
    and ``30``, ``50\\%`` and ``50``, ``x=3`` and ``3`` are merged on purpose). Other spellings of
    one value, such as ``\\frac12`` and ``0.5``, are left to math-verify.
    """
    s = answer.replace("\u2212", "-").replace("\\$", "").replace("$", "")
    s = _unwrap_text(s)
    s = _DELIMITER_SIZE.sub("", s).replace("\\displaystyle", "")
    s = _TRAILING_PERIOD.sub("", s.strip()).strip()
    assignment = _ASSIGNMENT.fullmatch(s)
    if assignment and not _RELATION.search(assignment["value"]):
        s = assignment["value"]
    if _THOUSANDS.fullmatch(s):
        s = _THOUSANDS_SEPARATOR.sub("", s)
    s = _FRAC.sub(r"\\frac", s)
    s = _PERCENT.sub("", _DEGREE.sub("", s))
    s = _SPACING.sub(" ", s)
    s = _LOOSE_SPACE.sub("", " ".join(s.split()))
    return _TRAILING_PERIOD.sub("", s)


# ---------------------------------------------------------------------- values


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
