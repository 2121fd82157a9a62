"""Published equivalence cases: Math-Verify's own test suite, run through our grader.

``tests/data/mathverify_cases.json`` holds (gold, response, expected) triples taken from
huggingface/Math-Verify's tests (Apache-2.0; the file records the commit and each case's test
function; ``tests/data/collect_mathverify_cases.py`` rebuilds it). Our grader must never call
a wrong response right, and must agree with the expected verdicts at least as often as
math-verify itself called the way we call it (``verify(parse(\\boxed{gold}),
parse(\\boxed{last box}))``), which agrees on 126 of the 140 cases.
"""

from __future__ import annotations

import json
from pathlib import Path

from rzero_pl.benchmarks.graders import grade_many

DATA = json.loads((Path(__file__).parent / "data" / "mathverify_cases.json").read_text())
MATH_VERIFY_ALONE = 126  # agreement of math-verify 0.9.0 alone (bench/RESULTS.md)


def test_the_corpus_records_its_source_and_licence():
    assert "Math-Verify" in DATA["source"] and "Apache-2.0" in DATA["licence"]
    assert len(DATA["cases"]) == 140
    assert all(case["source"].startswith("huggingface/Math-Verify@") for case in DATA["cases"])


def test_no_false_positive_and_more_agreement_than_math_verify_alone():
    cases = DATA["cases"]
    responses, golds = [c["response"] for c in cases], [c["gold"] for c in cases]
    got = grade_many("math500", responses, golds, timeout=30.0)  # a few are slow: a busy CI
    false_positives = [c for c, g in zip(cases, got, strict=True) if g and not c["expected"]]
    agree = sum(g == c["expected"] for c, g in zip(cases, got, strict=True))
    assert false_positives == []
    assert agree > MATH_VERIFY_ALONE, f"{agree}/{len(cases)}"
