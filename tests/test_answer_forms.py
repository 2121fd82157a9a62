"""Answer forms: values of simple numeric answers by hand, and math-verify's verdicts kept."""

from __future__ import annotations

import math

import pytest

from rzero_pl.grading.answer_forms import decide_by_value, value_of
from rzero_pl.grading.answers import decide_locally, normalize
from rzero_pl.grading.verify_pool import shared_pool


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("\\frac{3\\sqrt{2}}{4}", 3 * math.sqrt(2) / 4),
        ("3\\sqrt{6}/5", 3 * math.sqrt(6) / 5),
        ("\\frac12", 0.5),
        ("\\sqrt 7", math.sqrt(7)),
        ("2^{10}", 1024),
        ("-2^2", -4),  # the power binds first
        ("2^{-1}", 0.5),
        ("\\frac{2\\pi}{3}", 2 * math.pi / 3),
        ("2\\cdot3+1", 7),
        ("(1+2)\\times 3", 9),
        ("\\sqrt{\\frac{9}{4}}", 1.5),
    ],
)
def test_values_by_hand(answer, expected):
    (value,) = value_of(answer).numbers
    assert float(value) == pytest.approx(expected, rel=1e-12)


def test_lists_keep_their_brackets():
    value = value_of("[-3,\\frac{1}{2})")
    assert [float(v) for v in value.numbers] == [-3.0, 0.5] and value.brackets == "[)"


@pytest.mark.parametrize(
    "answer",
    ["x+1", "0.5", "2 3", "2\\frac{1}{2}", "(2)(3)", "\\sqrt 12", "9^{9^{9^{9}}}", "1/0", "e"],
)
def test_outside_the_subset_is_left_to_math_verify(answer):
    assert value_of(answer) is None  # variables, decimals, ambiguous spellings, towers


def test_decide_by_value():
    assert decide_by_value("2\\sqrt{3}", "\\sqrt{12}") is True
    assert decide_by_value("\\frac{5\\sqrt{2}}{3}", "\\frac{6\\sqrt{2}}{3}") is False
    assert decide_by_value("(1,2)", "[1,2)") is False  # open and half-open intervals
    assert decide_by_value("(1,2,3)", "[1,2,3]") is None  # a tuple and a list: math-verify's
    assert decide_by_value("(1,2)", "1") is False
    assert decide_by_value("x", "1") is None


SPELLINGS = ["\\sqrt{8}", "2\\sqrt{2}", "\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}", "2^{-1}"]
SPELLINGS += ["\\frac12", "\\pi", "2\\pi", "\\frac{2\\pi}{3}", "(1,2,3)", "(1, 2, 3)", "[1,3]"]
SPELLINGS += ["(3,1)", "(1,3)", "-\\frac{1}{2}", "\\frac{-1}{2}", "-1/2", "\\sqrt{2}\\sqrt{3}"]
SPELLINGS += ["\\sqrt{6}", "3^2", "9", "\\frac{6}{\\sqrt{3}}", "2\\sqrt{3}", "10^{3}", "1000"]
SPELLINGS += ["2\\cdot3", "2\\times 3", "6", "((", "a+", "\\frac{?}{}", "see above", "[1,3)"]
SPELLINGS += ["\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{bmatrix}1\\\\2\\end{bmatrix}"]
SPELLINGS += [
    "\\begin{pmatrix}1&2\\end{pmatrix}",
    "\\begin{pmatrix} \\frac{1}{2} \\\\ 3 \\end{pmatrix}",
]
SPELLINGS += [
    "\\begin{pmatrix} 1/2 \\\\ 4 \\end{pmatrix}",
    "\\left(\\begin{matrix}0.5\\\\3\\end{matrix}\\right)",
]


@pytest.mark.slow  # math-verify on every pair of spellings
def test_local_verdicts_are_math_verifys():
    pairs = [
        (normalize(a), normalize(b)) for i, a in enumerate(SPELLINGS) for b in SPELLINGS[i + 1 :]
    ]
    local = [decide_locally(a, b) for a, b in pairs]
    checked = [pair for pair, v in zip(pairs, local, strict=True) if v is not None]
    assert len(checked) > 0.9 * len(pairs)
    verdicts = shared_pool().map(checked, 10.0)
    assert [v for v in local if v is not None] == [bool(v) for v in verdicts]
