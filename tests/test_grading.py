"""Grading classes of issue 13: each false-positive / false-negative class, several cases each.

Grading is gold first (``grade_math(response, gold)``, ``matches(gold, answer)``); votes use the
symmetric ``equivalent``. Cases follow math-verify's own verdicts where a rule is ambiguous.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from rzero_pl.benchmarks.graders import grade_math
from rzero_pl.grading.answer_forms import decide_by_value, normalize, value_of
from rzero_pl.grading.answers import equivalent, matches


def boxed(answer: str) -> str:
    return f"So the answer is \\boxed{{{answer}}}."


def graded(gold: str, answer: str) -> bool:
    return grade_math(boxed(answer), gold)


# (gold, boxed answer) pairs per class: wrong ones (false positives before) and right ones
CLASSES = json.loads((Path(__file__).parent / "data" / "grading_classes.json").read_text())
FALSE_POSITIVES = {
    name: [tuple(p) for p in pairs] for name, pairs in CLASSES["false_positives"].items()
}
TRUE_POSITIVES = {
    name: [tuple(p) for p in pairs] for name, pairs in CLASSES["true_positives"].items()
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
