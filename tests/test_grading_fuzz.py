"""Grading fuzzed: (gold, response) pairs with known verdicts through ``grade_math``.

Hypothesis builds a true value of one kind (integer, fraction, decimal, percent, thousands,
unit, tuple, set, interval, equation), a gold spelling of it, and a response that is either
another spelling of the same value (right) or a near miss of the class that fooled the grader
before (wrong: a leading-zero or comma-space thousands group, an equation's bare right-hand
side, a tuple in the other order, bare braces, a decimal percent, another value). No wrong
response may be graded right; every right one must be.
"""

from __future__ import annotations

from fractions import Fraction

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rzero_pl.benchmarks.graders import grade_math

UNITS = ["dollars", "cookies", "books", "cm", "meters", "apples", "students", "hours"]
small = st.integers(min_value=-50, max_value=50)


@st.composite
def integer_case(draw):
    v = draw(st.integers(min_value=0, max_value=10**7))
    right = [
        str(v),
        f"{v}.0",
        f"\\text{{{v}}}",
        f"x = {v}",
        f"{v} \\text{{ {draw(st.sampled_from(UNITS))}}}",
    ]
    right += [f"{v:,}", f"{v:,}".replace(",", "{,}"), f"{v:,}".replace(",", ",\\!")]
    w = v + draw(st.integers(min_value=1, max_value=1000)) * draw(st.sampled_from([-1, 1]))
    wrong = [str(w), f"{w:,}", f"{w} \\text{{ {draw(st.sampled_from(UNITS))}}}"]
    if 100 <= v <= 999:
        wrong += [f"0,{v}", f"0{{,}}{v}"]  # a leading zero group is not a thousands group
    if v >= 1000:
        wrong.append(f"{v // 1000}, {v % 1000:03d}")  # comma then space: a list
    return str(v), draw(st.sampled_from(right)), draw(st.sampled_from(wrong))


@st.composite
def fraction_case(draw):
    q = draw(st.sampled_from([2, 3, 4, 5, 7, 8, 9, 12, 20, 25]))
    p = draw(st.integers(min_value=1, max_value=60).filter(lambda p: p % q))
    v = Fraction(p, q)
    right = [f"\\frac{{{p}}}{{{q}}}", f"{p}/{q}", f"\\dfrac{{{p}}}{{{q}}}"]
    if 10000 % v.denominator == 0:
        right.append(str(float(v)))  # a terminating decimal
        right.append(f"{float(v * 100):g}\\%")  # the value as a percent
    w = v + Fraction(draw(st.sampled_from([-1, 1])), q + 1)
    wrong = [f"\\frac{{{w.numerator}}}{{{w.denominator}}}", f"{float(w):.4f}"]
    if 10000 % v.denominator == 0:
        wrong.append(f"{float(v)}\\%")  # 0.5% is not 1/2 (math-verify)
    return f"\\frac{{{p}}}{{{q}}}", draw(st.sampled_from(right)), draw(st.sampled_from(wrong))


@st.composite
def pair_case(draw):
    a = draw(small)
    b = draw(small.filter(lambda b: b != a))
    kind = draw(st.sampled_from(["tuple", "set", "interval"]))
    if kind == "tuple":
        gold = f"({a}, {b})"
        right = [f"({a},{b})", f"\\left({a}, {b}\\right)", f"(x, y) = ({a}, {b})"]
        # (math-verify's suite expects a tuple gold to take the set of its elements: not here)
        wrong = [f"({b}, {a})", f"({a}, {b + 1})", f"(y, x) = ({b}, {a})", f"{{{b}, {a}}}"]
    elif kind == "set":
        gold = f"\\{{{a}, {b}\\}}"
        right = [f"\\{{{b}, {a}\\}}", f"\\{{{a},{b}\\}}"]
        wrong = [f"\\{{{a}, {b + 1}\\}}", f"\\{{{a}\\}}"]
    else:
        lo, hi = min(a, b), max(a, b)
        gold = f"[{lo}, {hi})"
        right = [f"[{lo},{hi})", f"\\left[{lo}, {hi}\\right)"]
        wrong = [f"({lo}, {hi})", f"[{lo}, {hi}]", f"[{lo}, {hi + 1})"]
    return gold, draw(st.sampled_from(right)), draw(st.sampled_from(wrong))


@st.composite
def equation_case(draw):
    c = draw(st.integers(min_value=1, max_value=9))
    v = draw(small)
    gold = f"{c}x + y = {v}"
    right = [f"{c}x+y={v}", f"{c}x + y = {v}"]
    wrong = [str(v), f"{c}x + y = {v + 1}"]  # the bare right-hand side is not the equation
    return gold, draw(st.sampled_from(right)), draw(st.sampled_from(wrong))


cases = st.one_of(integer_case(), fraction_case(), pair_case(), equation_case())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases)
def test_fuzzed_pairs_have_their_known_verdicts(case):
    gold, right, wrong = case
    assert grade_math(f"so \\boxed{{{wrong}}}", gold) is False, (gold, wrong)
    assert grade_math(f"so \\boxed{{{right}}}", gold) is True, (gold, right)
