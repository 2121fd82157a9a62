"""Grading classes of issue 13: each false-positive / false-negative class, several cases each.

Grading is gold first (``grade_math(response, gold)``, ``matches(gold, answer)``); votes use the
symmetric ``equivalent``. Cases follow math-verify's own verdicts where a rule is ambiguous.
"""

from __future__ import annotations

import math

import pytest

from rzero_pl.answer_forms import decide_by_value, normalize, value_of
from rzero_pl.answers import equivalent, matches
from rzero_pl.benchmarks.graders import grade_math


def boxed(answer: str) -> str:
    return f"So the answer is \\boxed{{{answer}}}."


def graded(gold: str, answer: str) -> bool:
    return grade_math(boxed(answer), gold)


# (gold, boxed answer) pairs that are wrong: each class of false positive
FALSE_POSITIVES = {
    "thousands: leading zero group": [("452", "0,452"), ("12", "0,012"), ("5", "0,005")],
    "thousands: comma and space": [("2000", "2, 000"), ("32349", "32, 349"), ("1000", "1, 000")],
    "equation against its right-hand side": [
        ("5x - 7y + 11z + 4 = 0", "0"),
        ("2x + z = 1", "1"),
        ("7 = 11a+c", "11a+c"),
        ("a^2 + b = 0", "0"),
    ],
    "tuple gold, set answer": [("(3,1)", "\\{1,3\\}"), ("(1,2,3)", "\\{3,2,1\\}")],
    "tuple order": [("(1,2)", "(2,1)"), ("(1, -2)", "(-2, 1)")],
    "assignment left sides": [
        ("(x, y) = (1, 2)", "(y, x) = (1, 2)"),
        ("(a,b)=(3,4)", "(b,a)=(3,4)"),
    ],
    "percent": [
        ("\\frac{1}{2}", "0.5\\%"),
        ("0.25", "0.25%"),
        ("12.5", "12.5\\%"),
        ("3", "3\\% + 1"),
    ],
    "precedence of an implicit product": [("\\frac{2\\pi}{3}", "2/3\\pi"), ("\\pi/2", "1/2\\pi")],
    "big numbers that differ": [("10^{36}", "10^{36}+1"), ("2^{64}", "2^{64}-1")],
    "unit words that change the number": [
        ("5", "5 \\text{ million}"),
        ("7", "7 \\text{ thousand}"),
    ],
}

# (gold, boxed answer) pairs that are right
TRUE_POSITIVES = {
    "thousands separators": [
        ("2000", "2,000"),
        ("1234567", "1,234,567"),
        ("10000", "10,\\!000"),
        ("12345", "12{,}345"),
        ("1000", "1\\,000"),
    ],  # fmt: skip
    "assignment to one variable": [("3", "x = 3"), ("x=3", "3"), ("(1,2)", "(x, y) = (1, 2)")],
    "percent, math-verify's way": [
        ("50", "50\\%"),
        ("0.5", "50\\%"),
        ("0.005", "0.5\\%"),
        ("50\\%", "50"),
        ("\\frac{1}{2}", "50%"),
    ],  # fmt: skip
    "precedence": [("\\frac{2}{3\\pi}", "2/3\\pi"), ("\\frac{2\\pi}{3}", "2\\pi/3")],
    "unit words": [("18", f"18 \\text{{ {w}}}") for w in ("dollars", "cookies", "books", "cm")]
    + [("18", "18\\mbox{ books}"), ("15", "15\\mbox{ cm}^2"), ("28\\%", "28 \\text{ percent}")],
    "set gold, tuple answer (math-verify: a set gold accepts its elements in any order)": [
        ("\\{1,3\\}", "(3,1)")
    ],
}


@pytest.mark.parametrize(
    ("gold", "answer"), [case for cases in FALSE_POSITIVES.values() for case in cases]
)
def test_false_positive_classes_are_graded_wrong(gold, answer):
    assert graded(gold, answer) is False
    assert equivalent(gold, answer) is False  # and never one cluster in a vote


@pytest.mark.parametrize(
    ("gold", "answer"), [case for cases in TRUE_POSITIVES.values() for case in cases]
)
def test_true_positive_classes_are_graded_right(gold, answer):
    assert graded(gold, answer) is True


def test_several_boxes_answer_a_set_gold():
    assert grade_math("\\boxed{1}, \\boxed{2}, \\boxed{3}", "\\{1,2,3\\}")
    assert grade_math("$\\boxed{1}$ and $\\boxed{2}$ and $\\boxed{3}$", "1, 2, 3")
    assert grade_math("\\boxed{(2, 2)} \\quad \\text{and} \\quad \\boxed{(6, 2)}", "(2, 2), (6, 2)")
    assert not grade_math("\\boxed{1}, \\boxed{2}", "\\{1,2,3\\}")  # one missing
    assert not grade_math("\\boxed{1}, \\boxed{2}", "1")  # no list gold: the last box only
    # boxes far apart in the text are not one answer
    assert not grade_math("\\boxed{1}" + " we now check the second part" * 5 + "\\boxed{2}", "1, 2")


def test_grading_is_gold_first_and_votes_are_symmetric():
    assert matches("\\{1,3\\}", "(3,1)") is True  # math-verify: a set gold takes a tuple
    assert matches("(3,1)", "\\{1,3\\}") is False
    assert equivalent("\\{1,3\\}", "(3,1)") is equivalent("(3,1)", "\\{1,3\\}") is False
    assert matches("2x+z=1", "1") is False
    assert equivalent("x = 3", "3") is True  # an assignment is its value, both ways
    assert equivalent("x = 3", "y = 3") is False  # math-verify: different left sides


def test_values_are_exact_where_rational_and_checked_where_not():
    assert float(value_of("2/3\\pi").numbers[0]) == pytest.approx(2 / (3 * math.pi), rel=1e-12)
    assert value_of("10^{36}+1").numbers[0].exact == 10**36 + 1
    assert equivalent("10^{36}+1", "10^{36}") is False
    assert decide_by_value("\\pi+10^{-40}", "\\pi") is None  # too close for the shortcut
    assert decide_by_value("10^{36}\\pi+1", "10^{36}\\pi") is None  # beyond the trusted range
    assert equivalent("2\\sqrt{3}", "\\sqrt{12}") is True


def test_normal_forms_of_the_classes():
    assert normalize("0,452") == "0,452" and normalize("2, 000") == "2, 000"
    assert normalize("(y, x) = (1, 2)") != normalize("(x, y) = (1, 2)")
    assert normalize("0.5\\%") == "0.5\\%" and normalize("18 \\text{ dollars}") == "18"
