"""How answers are written: a normal form for spellings (values: ``rzero_pl.grading.answer_values``).

``normalize`` erases notation that cannot change an answer's value, so that equal strings
mean equal answers and most votes group without any check. ``split_assignment`` and
``split_percent`` read the two notations it keeps because they can change a verdict (the left
side of ``(x, y) = (1, 2)``, the ``%`` of ``0.5\\%``); ``rzero_pl.grading.answers`` decides pairs of
them by math-verify's rules. ``matrix_of`` reads a matrix's or vector's entries.
"""

from __future__ import annotations

import re

from rzero_pl.grading.answer_values import Value, decide_by_value, value_of  # noqa: F401 - re-exported
from rzero_pl.grading.extraction import strip_control_spaces

# ---------------------------------------------------------------------- normalisation

_WRAPPER = re.compile(
    r"\\(?:text|textrm|textbf|textit|textnormal|mbox|mathrm)\s*\{|\\.|[{}]", re.DOTALL
)
_DELIMITER_SIZE = re.compile(r"\\(?:left|right)(?![A-Za-z])\s*\.?|\\[bB]igg?[lr]?(?![A-Za-z])")
_GREEK = "alpha|beta|gamma|delta|epsilon|theta|lambda|mu|phi|varphi|psi|omega|rho|sigma|tau"
_VARIABLE = rf"(?:[A-Za-z]|\\(?:{_GREEK})(?![A-Za-z]))"
_ASSIGNMENT = re.compile(
    rf"(?P<lhs>{_VARIABLE}|\(\s*{_VARIABLE}(?:\s*,\s*{_VARIABLE})+\s*\))\s*=\s*(?P<value>.+)",
    re.DOTALL,
)
# A relation sign: an answer holding one is an equation or inequality, not a value.
RELATION = re.compile(r"[=<>]|\\(?:leq?|geq?|neq?|lt|gt|approx|equiv|sim)(?![A-Za-z])")
# A plain number with thousands separators: a first group without a leading zero ("0,452" is
# not 452), then groups of exactly three digits; "2, 000" (comma, space) is a list, as in
# math-verify.
# A separator written with a spacing command may have a space after it: "11,\! 111" is still
# one number (the space is no gap in LaTeX's math mode; math-verify reads it so).
_THOUSANDS = re.compile(r"-?[1-9]\d{0,2}(?:(?:(?:,\\!|\{,\}|\\,) ?|,)\d{3})+(?:\.\d+)?")
_THOUSANDS_SEPARATOR = re.compile(r"(?:,\\!|\{,\}|\\,) ?|,")
# A unit word in \text{}/\mbox{} ending an answer that has a digit: "18 \text{ dollars}",
# "15\mbox{ cm}^2". Bounded: at most 40 letters and spaces, so the search is linear.
_UNIT = re.compile(
    r"\\(?:text|textrm|textnormal|mbox|mathrm)\s?\{\s?(?P<word>[A-Za-z][A-Za-z ]{0,40})\}"
    r"(?:\^\s?(?:\{\s?\d\s?\}|\d))?$"
)
# Words that change the number, not name its unit: kept (or, for percent, made a sign).
_NOT_UNITS = {"million", "millions", "billion", "billions", "thousand", "thousands", "hundred",
              "hundreds", "trillion", "dozen", "am", "pm", "and", "or", "i", "ii", "only", "e", "j"}  # fmt: skip
_PERCENT_WORDS = {"percent", "pct", "percentage"}
_FRAC = re.compile(r"\\[dt]frac(?![A-Za-z])")
_DEGREE = re.compile(r"\^\s*(?:\{\s*\\circ\s*\}|\\circ(?![A-Za-z]))|\\degree(?![A-Za-z])|°")
_PERCENT = re.compile(r"\\?%")
_PERCENT_VALUE = re.compile(r"(?P<value>.+?)\\%")
# A row break "\\" comes first, so that its second backslash is never read as a spacing command
# ("1 \\ 2" is two rows, not "1\2").
_SPACING = re.compile(
    r"\\\\|\\[,!:;> ]|\\(?:q?quad|(?:neg)?(?:en|thin|med|thick)space)(?![A-Za-z])|~"
)
# A space next to a non-word character goes, except one between a digit's comma and a digit:
# "32, 349" is a list, not 32349 (math-verify keeps them apart too).
_LOOSE_SPACE = re.compile(r" (?=[\W_])|(?<=[\W_])(?<!\d,) |(?<=\d,) (?!\d)")
_TRAILING_PERIOD = re.compile(r"(?<![\\.])\.$")
# A matrix or vector: \begin{pmatrix}…\end{pmatrix}, or a delimiter-less environment (its
# delimiters, "\left(" and "\right)" once normalised, around it or not).
_MATRIX = re.compile(
    r"(?P<open>[(\[]?)\\begin\{(?P<env>[pbB]?matrix|smallmatrix|array)\}"
    r"(?P<body>.*)\\end\{(?P=env)\}(?P<close>[)\]]?)",
    re.DOTALL,
)
_OWN_DELIMITERS = {"pmatrix", "bmatrix", "Bmatrix"}  # the others may stand in (…) or […]
_ARRAY_SPEC = re.compile(r"\{[lcr| ]*\}")
_CELL_TOKEN = re.compile(r"\\\\|\\.|[{}&]", re.DOTALL)
MAX_MATRIX_CHARS = 1000  # as answers.MAX_VERIFY_CHARS: longer ones are compared as strings


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
    4. Outer whitespace, trailing control spaces (``185\\ `` → ``185``) and one trailing period
       are stripped (``5.`` → ``5``, not ``...``).
    5. A unit word in ``\\text{}``/``\\mbox{}``/``\\mathrm{}`` (letters and spaces, with an
       optional ``^2``) ending an answer that has a digit is dropped: ``18 \\text{ dollars}`` →
       ``18``, ``15\\mbox{ cm}^2`` → ``15`` (math-verify drops them too); ``percent`` becomes
       ``\\%``; words that change the number (``million``, ``pm``, …) are kept. So are
       different units of one number (``50 \\text{ cm}`` and ``50 \\text{ m}`` are merged).
    6. Thousands separators ``,``, ``,\\!``, ``{,}`` and ``\\,`` are removed from a plain number
       that is the whole answer, when the first group has no leading zero and every other group
       has three digits: ``1,000`` → ``1000``, ``-12{,}345`` → ``-12345``, ``11,\\! 111`` →
       ``11111`` (a space after a spacing command is no gap); ``1,23``, ``0,452`` and
       ``2, 000`` (a comma and a space: a list, as in math-verify) are kept.
    7. ``\\dfrac`` and ``\\tfrac`` become ``\\frac``.
    8. Degree marks ``^\\circ``, ``^{\\circ}``, ``\\degree``, ``°`` are removed (``90^\\circ`` →
       ``90``); a percent sign becomes ``\\%`` (``50%`` → ``50\\%``; kept, since ``0.5\\%`` is
       not ``\\frac{1}{2}``: ``split_percent``).
    9. Spacing commands ``\\,``, ``\\!``, ``\\:``, ``\\;``, ``\\>``, ``\\ ``, ``\\quad``,
       ``\\qquad``, ``\\…space`` and ``~`` become spaces; a row break ``\\\\`` stays.
    10. Runs of whitespace become one space, kept only between two letters or digits, and after
        a comma between two digits: ``\\frac {1} {2}`` → ``\\frac{1}{2}``, ``a - b`` → ``a-b``;
        ``\\pi r``, ``1 2`` and ``32, 349`` keep it.
    11. One trailing period is stripped again.
    12. Parentheses that only wrap parentheses go: ``(((5)))`` → ``(5)``.

    The rules only erase notation that cannot change the value, so answers that differ never
    share a normal form (``1,000`` is read as one thousand, not the pair 1, 000; ``30^\\circ``
    and ``30`` are merged on purpose). An assignment's left side is kept (``(x, y) = (1, 2)``
    is not ``(y, x) = (1, 2)``): ``split_assignment`` reads it. Other spellings of one value,
    such as ``\\frac12`` and ``0.5``, or ``x=3`` and ``3``, are decided in ``rzero_pl.grading.answers``;
    a matrix's entries are read by ``matrix_of`` and compared there one by one.
    """
    s = answer.replace("\u2212", "-").replace("\\$", "").replace("$", "")
    s = _DELIMITER_SIZE.sub("", s).replace("\\displaystyle", "")
    s = _TRAILING_PERIOD.sub("", strip_control_spaces(s)).strip()
    s = _drop_unit(s)
    s = _unwrap_text(s)
    s = _TRAILING_PERIOD.sub("", strip_control_spaces(s)).strip()
    if _THOUSANDS.fullmatch(s):
        s = _THOUSANDS_SEPARATOR.sub("", s)
    s = _FRAC.sub(r"\\frac", s)
    s = _PERCENT.sub(r"\\%", _DEGREE.sub("", s))
    s = _SPACING.sub(lambda m: m.group() if m.group() == "\\\\" else " ", s)
    s = _LOOSE_SPACE.sub("", " ".join(s.split()))
    return _drop_double_parentheses(_TRAILING_PERIOD.sub("", s))


def _drop_double_parentheses(s: str) -> str:
    """``s`` with parentheses that only wrap parentheses taken off: ``((5))`` → ``(5)``
    (rule 12 of ``normalize``). Linear: one pass pairs the brackets."""
    if not s.startswith("(("):
        return s
    closing, opened = {}, []
    for i, c in enumerate(s):
        if c == "(":
            opened.append(i)
        elif c == ")" and opened:
            closing[opened.pop()] = i
    n, i = len(s), 0
    while s[i + 1] == "(" and closing.get(i) == n - 1 - i and closing.get(i + 1) == n - 2 - i:
        i += 1
    return s[i : n - i]


def _drop_unit(s: str) -> str:
    """``s`` without a trailing unit word in a text wrapper (rule 5 of ``normalize``)."""
    unit = _UNIT.search(s)
    if unit is None:
        return s
    before, word = s[: unit.start()].rstrip(), unit["word"].strip().lower()
    if not before or not any(c.isdigit() for c in before) or word in _NOT_UNITS:
        return s
    if before[-1] not in "0123456789})":
        return s
    return before + "\\%" if word in _PERCENT_WORDS else before


def matrix_of(s: str) -> tuple[tuple[str, ...], ...] | None:
    """The entries, row by row, of a normalised matrix or vector, else None.

    Read: ``pmatrix``, ``bmatrix``, ``Bmatrix`` environments, and ``matrix``, ``smallmatrix``
    and ``array`` (its column spec dropped) bare or in ``(…)`` or ``[…]``. Rows end at ``\\\\``
    and entries at ``&`` outside braces; a trailing row break is allowed. None for anything
    else: nested environments, ragged rows, an empty entry, ``vmatrix`` (a determinant).
    """
    m = _MATRIX.fullmatch(s) if len(s) <= MAX_MATRIX_CHARS else None
    if m is None:
        return None
    delimiters = m["open"] + m["close"]
    if delimiters not in (("",) if m["env"] in _OWN_DELIMITERS else ("", "()", "[]")):
        return None
    body = m["body"]
    if m["env"] == "array" and (spec := _ARRAY_SPEC.match(body)) is not None:
        body = body[spec.end() :]
    if "\\begin" in body or "\\end" in body:
        return None
    rows = _cells(body)
    if rows is not None and len(rows) > 1 and rows[-1] == [""]:
        rows.pop()  # "1\\2\\" ends with a row break
    if not rows or any(len(r) != len(rows[0]) or "" in r for r in rows):
        return None
    return tuple(tuple(r) for r in rows)


def _cells(body: str) -> list[list[str]] | None:
    """A matrix body's stripped entries, row by row, split outside braces."""
    rows, row, start, depth = [], [], 0, 0
    for token in _CELL_TOKEN.finditer(body):
        t = token.group()
        depth += (t == "{") - (t == "}")
        if depth < 0:
            return None
        if depth == 0 and t in ("&", "\\\\"):
            row.append(body[start : token.start()].strip())
            start = token.end()
            if t != "&":
                rows.append(row)
                row = []
    row.append(body[start:].strip())
    rows.append(row)
    return rows if depth == 0 else None


def split_assignment(s: str) -> tuple[str, str] | None:
    """``(left side, value)`` of a normalised ``x=3``, ``\\theta=30`` or ``(x,y)=(1,2)``.

    None when ``s`` is no assignment to one variable (a latin letter or a Greek letter
    command) or to a tuple of them, or when its value holds another relation (``x=y=2``).
    """
    assignment = _ASSIGNMENT.fullmatch(s) if len(s) <= 1000 else None
    if assignment is None or RELATION.search(assignment["value"]):
        return None
    return assignment["lhs"], assignment["value"]


def split_percent(s: str) -> str | None:
    """The number before a normalised answer's final ``\\%`` (``50\\%`` → ``50``), else None."""
    if not s.endswith("\\%") or len(s) < 3 or "%" in s[:-2]:
        return None
    return s[:-2]
