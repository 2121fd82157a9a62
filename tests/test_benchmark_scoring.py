"""Benchmark graders and scores: is one answer right (choice letters, BBEH's fuzzy rules, math
equivalence), and what a run scores (Wilson intervals, mean@k, the paper's averages).

The registry, loaders, prompts and the full-file gold-answer checks: tests/test_benchmarks.py.
Nothing here touches the Hub.
"""

from __future__ import annotations

import json

import pytest

from rzero_pl.benchmarks import (
    MATH_BENCHMARKS,
    extract_choice,
    grade,
    grade_many,
    score,
    summarize,
    wilson_interval,
)
from rzero_pl.benchmarks.graders import bbeh_fuzzy_match, bbeh_preprocess_sample

# ----------------------------------------------------------------------------- graders


@pytest.mark.parametrize(
    "response, letter",
    [
        ("so \\boxed{C}", "C"),
        ("\\boxed{(C)}", "C"),
        ("\\boxed{C. 42 m/s}", "C"),
        ("\\boxed{C) 42 m/s}", "C"),
        ("\\boxed{\\text{C}}", "C"),
        ("\\boxed{\\textbf{(C)}}", "C"),
        ("\\boxed{\\text{Option C}}", "C"),
        ("$\\boxed{ C }$", "C"),
        ("\\boxed{A} at first, but finally \\boxed{C}", "C"),
        ("The answer is (C).", "C"),
        ("The answer is C", "C"),
        ("Answer: C", "C"),
        ("**Answer:** C", "C"),
        ("Final answer: (C) 12 kg", "C"),
        ("the correct option is **C**.", "C"),
        ("The answer is (A). Wait, no: the answer is (C).", "C"),
        ("\\boxed{HCN} so the answer is B", "B"),  # box unreadable -> phrase
        ("D", "D"),  # a bare-letter reply (issue 27 item 17)
        (" (D) ", "D"),
        ("**D.**", "D"),
        ("$\\text{D}$", "D"),
        ("\\boxed D", "D"),  # an unbraced box
    ],
)
def test_extract_choice_reads_common_forms(response, letter):
    assert extract_choice(response) == letter
    assert grade("mmlu_pro", response, letter)


@pytest.mark.parametrize(
    "response",
    [
        "I think it is C",  # no box, no answer phrase
        "\\boxed{HCN}",  # option text, no letter
        "\\boxed{A, C}",  # a hedge
        "\\boxed{B or D}",
        "The answer is I think unclear",  # the pronoun, not option I
        "Option A is wrong because ...",
        "",
        "D E",  # two letters, no answer
        "A.\nB.",
        "DNA",
        "d",
    ],
)
def test_unreadable_choice_is_wrong_never_guessed(response):
    assert extract_choice(response) is None
    assert not any(grade("mmlu_pro", response, letter) for letter in "ABCDEFGHIJ")


def test_reference_compat_guesses_reproducibly():
    responses = ["no idea"] * 200
    first = grade_many("mmlu_pro", responses, ["C"] * 200, reference_compat=True, seed=1)
    again = grade_many("mmlu_pro", responses, ["C"] * 200, reference_compat=True, seed=1)
    assert first == again and 5 < sum(first) < 40  # about 1 in 10 guesses right
    assert not any(grade_many("mmlu_pro", responses, ["C"] * 200))
    # The reference takes the first capital A-J in the box: "\boxed{HCN}" reads as H.
    assert grade("mmlu_pro", "\\boxed{HCN}", "H", reference_compat=True)


@pytest.mark.parametrize(
    "response, gold, correct",
    [
        ("\\boxed{(A)}", "(A)", True),
        ("\\boxed{A}", "(A)", True),
        ("\\boxed{(b)}", "B", True),
        ("\\boxed{\\text{Disproved}}", "disproved", True),
        ("\\boxed{404}", "404.0", True),
        ("\\boxed{[emma, lily]}", "[emma, lily]", True),
        ("\\boxed{emma, lily}", "[emma, lily]", True),
        ("\\boxed{no,no, yes}", "no, no, yes", True),
        ("\\boxed{unanswerable?}", "unanswerable", True),
        ("\\boxed{'quoted'}", "quoted", True),
        ("\\boxed{He really cried.}", "He really cried.", True),  # our extension
        ("\\boxed{he really cried}", "He really cried.", True),
        ("The answer is: 7.", "7", True),  # no box: official prefixes
        ("\\boxed{(B)}", "(A)", False),
        ("\\boxed{405}", "404.0", False),
        ("\\boxed{proved}", "disproved", False),
        ("nothing here", "7", False),
    ],
)
def test_bbeh_official_fuzzy_rules(response, gold, correct):
    assert grade("bbeh", response, gold) is correct


def test_bbeh_preprocessing_pieces():
    assert bbeh_preprocess_sample("The final answer is **Yes**.") == "yes"
    assert bbeh_preprocess_sample("$\\text{a, b}$") == "a,b"
    assert bbeh_fuzzy_match("(c)", "c") and not bbeh_fuzzy_match("(c)", "d")


def test_math_grader_uses_last_box_and_equivalence():
    responses = [
        "\\boxed{1/2}",
        "first \\boxed{3} then \\boxed{0.5}",
        "the answer is 0.5",  # no box
        "\\boxed{\\frac{1}{3}}",
    ]
    assert grade_many("math500", responses, ["\\frac{1}{2}"] * 4) == [True, True, False, False]
    with pytest.raises(ValueError, match="golds"):
        grade_many("math500", responses, ["1"])


# ----------------------------------------------------------------------------- metrics


def test_wilson_interval_known_values():
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)
    low, high = wilson_interval(50, 100)
    assert (low, high) == (pytest.approx(0.4038, abs=1e-4), pytest.approx(0.5962, abs=1e-4))


def test_wilson_interval_holds_its_own_point():
    """Issue 27 item 5: low <= k/n <= high for every k and n, with exact ends at 0 % and 100 %
    (0/n gave a low of 5.6e-17, and n/n a high just under 1)."""
    off = []
    for n in range(1, 2001):
        for k in {0, 1, n // 3, n // 2, n - 1, n}:
            low, high = wilson_interval(k, n)
            if not (0.0 <= low <= k / n <= high <= 1.0):
                off.append((k, n, low, high))
        low, high = wilson_interval(0, n)
        assert low == 0.0 and high < 1.0
        low, high = wilson_interval(n, n)
        assert high == 1.0 and low > 0.0
    assert off == []
    for n in (3, 7, 500):  # mean@k passes fractional successes
        for k in (0.0, 0.1 * n, n / 3, n):
            low, high = wilson_interval(k, n)
            assert low <= k / n <= high


@pytest.mark.parametrize("correct", [False, True])
def test_a_zero_or_full_benchmark_reports_and_selects(correct):
    """Issue 27 item 5, downstream: a benchmark at 0 % (or 100 %) plots its error bar in the
    report, and a run stuck there stops after ``selection.patience`` iterations."""
    from rzero_pl.analysis.report_data import score_of as report_score
    from rzero_pl.analysis.report_plots import plot_accuracy
    from rzero_pl.run.selection import BestIteration

    summary = summarize({"math500": [correct] * 500})
    entry = summary["benchmarks"]["math500"]
    stored = report_score("math500", entry)
    computed = report_score("math500", {k: v for k, v in entry.items() if k != "ci95"})
    for s in (stored, computed):
        assert s.low <= s.accuracy <= s.high
    assert plot_accuracy([("baseline", [stored]), ("iter1", [computed])])[:4] == b"\x89PNG"
    decision = BestIteration("math500", patience=2).decide([summary] * 3)
    assert decision.best == 0 and decision.stale == 2 and decision.stop


def test_score_k1_and_mean_at_k():
    flat = score([True, False, True, True])
    assert flat["accuracy"] == 0.75 and flat["k"] == 1 and flat["n_samples"] == 4
    assert flat["ci95"] == list(wilson_interval(3, 4))
    at_k = score([[True, True, False, False], [True, True, True, True], [False] * 4])
    assert at_k["accuracy"] == pytest.approx(0.5)
    assert at_k["k"] == 4 and at_k["n_problems"] == 3 and at_k["n_samples"] == 12
    low, high = at_k["ci95"]  # 0.5 ± 1.96 * 0.5 / sqrt(3)
    assert low == pytest.approx(0.0, abs=1e-9) and high == pytest.approx(1.0)
    with pytest.raises(ValueError):
        score([[True], []])


def test_summarize_reproduces_the_paper_averages():
    # Qwen3-4B-Base row of the README table: (42.58 + 20.88 + 37.38 + 7.57) / 4 = 27.10.
    ready = {"supergpqa": 0.2088, "mmlu_pro": 0.3738, "bbeh": 0.0757}
    results = {name: {"accuracy": value} for name, value in ready.items()}
    for name in MATH_BENCHMARKS:
        results[name] = {"accuracy": 0.4258}
    results["unregistered_set"] = [True, False]
    summary = summarize(results)
    assert summary["math_average"]["accuracy"] == pytest.approx(0.4258)
    assert summary["overall_average"]["accuracy"] == pytest.approx(0.2710, abs=5e-5)
    assert summary["overall_average"]["missing"] == []
    assert summary["benchmarks"]["unregistered_set"]["accuracy"] == 0.5
    assert summary["benchmarks"]["unregistered_set"]["kind"] is None
    assert summary["benchmarks"]["bbeh"]["kind"] == "bbeh"
    json.dumps(summary)


def test_summarize_names_what_is_missing():
    summary = summarize({"gsm8k": [True, True], "mmlu_pro": [[False, True]]})
    assert summary["math_average"]["accuracy"] == 1.0
    assert set(summary["math_average"]["missing"]) == set(MATH_BENCHMARKS) - {"gsm8k"}
    assert summary["overall_average"]["accuracy"] == pytest.approx(0.75)
    assert summary["overall_average"]["missing"] == ["supergpqa", "bbeh"]
    empty = summarize({})
    assert empty["overall_average"]["accuracy"] is None
