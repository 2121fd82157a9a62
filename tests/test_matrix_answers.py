"""Matrices and vectors, entry by entry (issue 27 item 15), on the MATH test split's 72 matrix
golds (``tests/data/math_matrix_answers.json``: source, commit and licence in its header)."""

from __future__ import annotations

import json
import re
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rzero_pl.benchmarks.graders import grade_many
from rzero_pl.grading.answer_forms import matrix_of, normalize
from rzero_pl.grading.answers import decide_locally, matches_many

DATA = json.loads((Path(__file__).parent / "data" / "math_matrix_answers.json").read_text())
GOLDS = [case["gold"] for case in DATA["cases"]]


def _matrix(*rows: str, env: str = "pmatrix") -> str:
    return f"\\begin{{{env}}} " + " \\\\ ".join(rows) + f" \\end{{{env}}}"


def _cells(gold: str) -> list[list[str]]:
    """A gold's entries, row by row (every gold is one plain pmatrix)."""
    body = gold.removeprefix("\\begin{pmatrix}").removesuffix("\\end{pmatrix}")
    return [[cell.strip() for cell in row.split("&")] for row in body.split("\\\\")]


def _entries(gold: str) -> list[str]:
    return [cell for row in _cells(gold) for cell in row]


def _write(cells: list[list[str]], env: str = "pmatrix", entry=str) -> str:
    return _matrix(*(" & ".join(entry(cell) for cell in row) for row in cells), env=env)


def _as_frac(cell: str) -> str:
    """``48/65`` → ``\\frac{48}{65}``, ``1/\\sqrt{2}`` → ``\\frac{1}{\\sqrt{2}}``, ``3`` →
    ``\\frac{6}{2}``, the sign kept in front."""
    sign, body = ("-", cell[1:].strip()) if cell.startswith("-") else ("", cell)
    if body.isdigit():
        return f"{sign}\\frac{{{2 * int(body)}}}{{2}}"
    numerator, denominator = body.split("/")
    return f"{sign}\\frac{{{numerator}}}{{{denominator}}}"


def _with_fracs(gold: str) -> str:
    return _write(_cells(gold), entry=_as_frac)


def _changed(gold: str, index: int) -> str:
    """The gold with its ``index``-th entry (row by row) plus one."""
    cells = _cells(gold)
    width = len(cells[0])
    cells[index // width][index % width] += "+1"
    return _write(cells)


def test_the_data_records_its_source_and_licence():
    assert DATA["count"] == len(GOLDS) == 72
    assert "MIT" in DATA["licence"] and "Hendrycks" in DATA["licence"] + DATA["about"]
    assert "commit" in DATA["source"] and all("matrix" in gold for gold in GOLDS)
    assert sum("math500_id" in case for case in DATA["cases"]) == 7


def test_every_gold_is_read_as_a_matrix():
    for gold in GOLDS:
        cells = matrix_of(normalize(gold))
        assert cells is not None, gold
        assert [c for row in cells for c in row] == [normalize(e) for e in _entries(gold)]


def test_the_row_break_is_not_a_spacing_command():
    assert normalize(_matrix("1", "2")) == "\\begin{pmatrix}1\\\\2\\end{pmatrix}"
    assert normalize("\\begin{pmatrix} 1 & 2 \\\\\\, 3 & 4 \\end{pmatrix}") == (
        "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}"
    )


def _spellings(gold: str) -> list[str]:
    compact = re.sub(r"\s+", "", gold)
    bmatrix = gold.replace("pmatrix", "bmatrix")
    brackets = "\\left[" + gold.replace("pmatrix", "matrix") + "\\right]"
    return [compact, _with_fracs(gold), bmatrix, brackets]


def test_every_gold_matches_its_other_spellings():
    """Compact, \\frac entries, bmatrix, \\left[ matrix \\right]: all right, all decided here
    (71 of the 72 were wrong before)."""
    pairs = [(gold, spelling) for gold in GOLDS for spelling in _spellings(gold)]
    assert all(s != g for g, s in pairs[1::4])  # the \frac spelling differs from every gold
    local = [decide_locally(normalize(g), normalize(s)) for g, s in pairs]
    assert [p for p, v in zip(pairs, local, strict=True) if v is not True] == []
    responses = [f"So the answer is $\\boxed{{{s}}}$." for _, s in pairs]
    assert all(grade_many("math500", responses, [g for g, _ in pairs]))


def test_every_gold_rejects_one_entry_changed():
    """Also with the gold's entries written as \\frac: before, the row break's second backslash
    ran into them and math-verify then accepted wrong entries."""
    pairs = [
        (spelled(gold), changed)
        for gold in GOLDS
        for index in range(len(_entries(gold)))
        for spelled in (str, _with_fracs)
        for changed in (_changed(gold, index), _changed(_with_fracs(gold), index))
    ]
    assert len(pairs) > 4 * 72 * 2
    assert all(g != c for g, c in pairs)
    local = [decide_locally(normalize(g), normalize(c)) for g, c in pairs]
    assert [p for p, v in zip(pairs, local, strict=True) if v is not False] == []
    assert not any(matches_many(pairs))


HALF = ["1/2", "\\frac{1}{2}", "\\frac12", "\\dfrac{1}{2}", "0.5"]


@pytest.mark.parametrize("half", HALF)
def test_a_column_vector_never_takes_a_wrong_entry_or_a_scalar(half):
    """The issue's false positives: gold (1/2, 3) as a column vector accepted (1/2, 4) and the
    bare 1/2 when its entries were fractions."""
    for gold_half in HALF:
        gold = _matrix(gold_half, "3")
        wrong = [_matrix(half, "4"), half, "3", "(1/2, 3)", _matrix(half, "3", "0")]
        wrong += [_matrix(f"{half} & 3"), _matrix(half, "3", env="vmatrix")]
        assert matches_many([(gold, w) for w in wrong]) == [False] * len(wrong), gold
        assert matches_many([(gold, _matrix(half, "3", env="bmatrix"))]) == [True]


def test_shapes_and_entries_decide():
    square = _matrix("1 & 2", "3 & 4")
    assert decide_locally(normalize(square), normalize(_matrix("1 & 3", "2 & 4"))) is False
    assert decide_locally(normalize(square), normalize(_matrix("1 & 2"))) is False
    assert decide_locally(normalize(square), normalize(_matrix("1&2", "3&4", ""))) is True
    assert decide_locally(normalize(_matrix("x", "1")), normalize(_matrix("x", "2"))) is False
    assert decide_locally(normalize(_matrix("x+1", "1")), normalize(_matrix("1+x", "1"))) is None
    assert matches_many([(_matrix("x+1", "1"), _matrix("1+x", "1"))]) == [True]  # math-verify


@pytest.mark.parametrize(
    "answer",
    [
        "\\begin{pmatrix}1\\\\2",  # not closed
        "\\begin{pmatrix}1&2\\\\3\\end{pmatrix}",  # ragged
        "\\begin{pmatrix}1\\\\\\\\2\\end{pmatrix}",  # an empty entry
        "\\begin{vmatrix}1&2\\\\3&4\\end{vmatrix}",  # a determinant
        "(\\begin{pmatrix}1\\\\2\\end{pmatrix})",
        "\\begin{pmatrix}\\begin{pmatrix}1\\end{pmatrix}\\end{pmatrix}",
        "\\begin{pmatrix}1}{\\\\2\\end{pmatrix}",
    ],
)
def test_what_is_not_read_as_a_matrix(answer):
    assert matrix_of(answer) is None


def test_what_is_read_as_a_matrix():
    assert matrix_of("\\begin{array}{cc}1&2\\\\3&4\\end{array}") == (("1", "2"), ("3", "4"))
    assert matrix_of("(\\begin{matrix}\\frac{1}{2}\\\\3\\end{matrix})") == (
        ("\\frac{1}{2}",),
        ("3",),
    )
    assert matrix_of("\\begin{bmatrix}a_{1&2}&b\\end{bmatrix}") == (("a_{1&2}", "b"),)


def _spell(value: Fraction, style: int) -> str:
    sign, q = ("-" if value < 0 else ""), abs(value)
    if q.denominator == 1 and style % 3 == 0:
        return f"{sign}{q.numerator}"
    if style % 3 == 1:
        return f"{sign}{q.numerator}/{q.denominator}"
    return f"{sign}\\dfrac{{{q.numerator}}}{{{q.denominator}}}"


def _spell_matrix(rows: list[list[Fraction]], style: int) -> str:
    env, gap = ["pmatrix", "bmatrix", "matrix"][style % 3], ["", " ", "\\, "][style % 3]
    text = (gap + "\\\\" + gap).join(
        (gap + "&" + gap).join(_spell(v, style + i) for i, v in enumerate(row)) for row in rows
    )
    text = f"\\begin{{{env}}}{gap}{text}{gap}\\end{{{env}}}"
    return f"\\left[{text}\\right]" if env == "matrix" else text


fractions = st.fractions(min_value=-20, max_value=20, max_denominator=12)
shapes = st.tuples(st.integers(1, 3), st.integers(1, 3))
matrices = shapes.flatmap(
    lambda s: st.lists(
        st.lists(fractions, min_size=s[1], max_size=s[1]), min_size=s[0], max_size=s[0]
    )
)


@settings(max_examples=300, deadline=None, database=None)
@given(matrices, matrices, st.integers(0, 5), st.integers(0, 5), st.booleans())
def test_two_matrices_are_equal_exactly_when_their_values_are(a, b, style_a, style_b, near):
    """Any two spellings: True exactly when the shapes and every value agree (never a false
    positive), and the same matrix in another spelling is always right."""
    if near:  # b: a with at most one entry changed, the hard case
        b = [row[:] for row in a]
        b[0][0] += Fraction(1, 7) if style_b % 2 else 0
    spelled_a, spelled_b = _spell_matrix(a, style_a), _spell_matrix(b, style_b)
    verdict = decide_locally(*(normalize(s) for s in (spelled_a, spelled_b)))
    assert verdict is (a == b), (spelled_a, spelled_b)
    assert decide_locally(normalize(spelled_a), normalize(_spell_matrix(a, style_b))) is True
    scalar = _spell(a[0][0], style_b)
    assert decide_locally(normalize(spelled_a), normalize(scalar)) is False
