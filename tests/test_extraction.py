"""The answer rule (boxed | flexible) and linear-time reading of model output (issues 13, 15)."""

from __future__ import annotations

import time

import pytest

from rzero_pl.benchmarks.graders import extract_choice, grade, grade_bbeh, grade_many
from rzero_pl.grading.answer_forms import normalize
from rzero_pl.grading.answers import decide_locally, extract_boxed
from rzero_pl.grading.extraction import extract_boxes, extract_final


@pytest.mark.parametrize(
    ("text", "boxed", "flexible"),
    [
        ("so \\boxed{12}. The answer is 13", "12", "12"),  # a box wins under both rules
        ("Natalia sold 48+24 = 72 clips.\n#### 72", None, "72"),
        ("The answer is: 8", None, "8"),
        (
            "Final Answer: The final answer is $\\frac{1}{2}$. I hope it is correct.",
            None,
            "\\frac{1}{2}",
        ),  # fmt: skip
        ("**Answer:** 1,000", None, "1,000"),
        ("She has 3 apples and buys 5 more, 8 in all.", None, "8"),
        ("no number at all", None, None),
        ("", None, None),
    ],
)
def test_answer_rules(text, boxed, flexible):
    assert extract_final(text, "boxed") == boxed
    assert extract_final(text, "flexible") == flexible


@pytest.mark.parametrize(
    ("text", "boxed"),
    [
        ("so $\\boxed 5$.", "5"),  # no braces: read up to "$", as hendrycks and Qwen read it
        ("\\boxed 5", "5"),
        ("\\[\\boxed -\\frac12\\]", "-\\frac12"),
        ("$\\boxed 3 \\pi$ done", "3 \\pi"),
        ("\\boxed{1} then $\\boxed 7$", "7"),  # the last box, braced or not
        ("$\\boxed 7$ then \\boxed{1}", "1"),
        ("\\boxed{185\\ }", "185"),  # a trailing control space (issue 27 item 17)
        ("\\boxed{185\\ \\ }", "185"),
        ("\\boxed{\\ }", None),
        ("\\boxed{1 \\\\ 2 \\\\ }", "1 \\\\ 2 \\\\"),  # row breaks stay
        ("\\boxed\n5", None),
        ("\\boxed " + "x" * 300 + "$", None),  # an unbraced box is short
    ],
)
def test_unbraced_boxes_and_control_spaces(text, boxed):
    """Issue 27 item 17: \\boxed 5 was no answer, \\boxed{185\\ } read as 185\\."""
    assert extract_final(text, "boxed") == boxed
    if boxed is not None and boxed[0].isdigit():
        assert grade("math500", text, boxed.split()[0]) is (boxed.split()[0] == boxed)


@pytest.mark.parametrize(
    ("text", "first_box"),
    [
        ("\\boxed{12} then \\boxed{13}", "12} then \\boxed{13"),  # to the line's last }
        ("\\boxed{\\frac{1}{2}}.", "\\frac{1}{2}"),
        ("\\boxed{1}\nso \\boxed{2}", "1"),  # the first box, not the last
        ("\\boxed{ 7 \nthen \\boxed{5}", "5"),  # no } on its line: passed over
        ("\\BOXED {7}", "7"),  # any case, a space before the brace
        ("\\boxed{}}", "}"),
        ("\\fbox{3}", None),  # only \\boxed
        ("no box", None),
    ],
)
def test_first_box_is_the_released_evaluation_reading(text, first_box):
    """evaluation/datasets_loader.py at 5699329 reads re.search(r"(?i)\\\\boxed\\s*{([^\\n]+)}")."""
    import re

    assert extract_final(text, "first_box") == first_box
    released = re.search(r"(?i)\\boxed\s*{([^\n]+)}", text)
    assert (released.group(1).strip() if released else None) == first_box


def test_evaluation_reads_the_first_box_when_told(tmp_path):
    import json

    from builders import KeyedEngine

    from rzero_pl.benchmarks.evaluation import evaluate
    from rzero_pl.engines.base import SamplingParams

    path = tmp_path / "math500" / "test.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"id": "P0", "problem": "P0?", "answer": "3"}) + "\n")
    engine = KeyedEngine({"P0?": "First \\boxed{3}.\nOn reflection, \\boxed{4}"})
    kwargs = {"sampling": SamplingParams(temperature=0.0, max_new_tokens=8), "root": str(tmp_path)}
    last = evaluate(engine, None, ["math500"], **kwargs)
    first = evaluate(engine, None, ["math500"], answer_rules={"math500": "first_box"}, **kwargs)
    assert (last.accuracies()["math500"], first.accuracies()["math500"]) == (0.0, 1.0)
    assert [r.samples["math500"][0]["extracted"] for r in (last, first)] == ["4", "3"]


def test_an_unknown_rule_is_refused():
    with pytest.raises(ValueError, match="answer rule"):
        extract_final("x", "lenient")


def test_graders_take_the_rule():
    response = "48 + 24 = 72 clips.\n#### 72"
    assert grade("gsm8k", response, "72") is False  # strict \boxed{}: the paper's rule
    assert grade("gsm8k", response, "72", rule="flexible") is True
    assert grade_many("gsm8k", [response], ["71"], rule="flexible") == [False]


def test_extract_boxes_reads_the_final_run():
    assert extract_boxes("\\boxed{1}, \\boxed{2} and \\boxed{3}.") == ["1", "2", "3"]
    assert extract_boxes("\\boxed{\\boxed{1}}") == ["\\boxed{1}"]  # nested: one box
    assert extract_boxes("\\boxed{1} then a long paragraph of other words\\boxed{2}") == ["2"]
    assert extract_boxes("no box") == []


N = 100_000
ADVERSARIAL = {
    "answer is, then spaces": "The answer is" + " " * N,
    "answer is, then stars": "The answer is " + "*" * N,
    "answer phrases": "answer is " * (N // 10),
    "answer is, spaces, colons": "Answer" + " :" * (N // 2),
    "boxes never closed": "\\boxed{" * (N // 7),
    "braces": "{" * N,
    "text wrappers": "\\text{" * (N // 6) + "}" * (N // 6),
    "hashes": "#### " + " " * N,
    "digits and commas": "1," * (N // 2),
    "spaces and commas": "1, " * (N // 3),
    "percent": "%" * N,
    "dollar signs": "$" * N,
    "letters": "a" * N,
    "unbraced boxes": "\\boxed x" * (N // 8),
    "unbraced box, then spaces": "\\boxed x" + " \t" * (N // 2),
    "control spaces": "1" + "\\ " * (N // 2),
    "row breaks": "\\\\ " * (N // 3),
    "parentheses": "(" * (N // 2) + "5" + ")" * (N // 2),
    "matrix rows": "\\begin{pmatrix}" + "1&" * (N // 2) + "\\end{pmatrix}",
    "thin-space groups": "1" + ",\\! 000" * (N // 7),
}


@pytest.mark.parametrize("name", list(ADVERSARIAL))
def test_every_reader_of_model_output_is_linear_on_100_kb(name):
    """CPU time, not wall time, and a bound thousands of times what linear code needs: a
    polynomial regex takes minutes here (extract_choice took 75 s on 1,600 characters)."""
    text = ADVERSARIAL[name]
    start = time.process_time()
    extract_choice(text)
    extract_boxed(text)
    extract_boxes(text)
    extract_final(text, "flexible")
    extract_final(text, "first_box")
    grade_bbeh(text, "x")
    norm = normalize(text)
    decide_locally(norm, "1")
    assert time.process_time() - start < 1.0


def test_evaluation_takes_a_rule_per_benchmark_and_reports_both(tmp_path):
    import json

    from builders import KeyedEngine

    from rzero_pl.benchmarks.evaluation import Evaluation, evaluate
    from rzero_pl.engines.base import SamplingParams

    rows = [("P0", "72", "so #### 72"), ("P1", "5", "\\boxed{5}"), ("P2", "7", "The answer is 8")]
    path = tmp_path / "gsm8k" / "test.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("".join(json.dumps({"id": p, "problem": f"{p}?", "answer": a}) + "\n"
                            for p, a, _ in rows))  # fmt: skip
    engine = KeyedEngine({f"{p}?": r for p, _, r in rows})
    greedy = SamplingParams(temperature=0.0, max_new_tokens=8)
    kwargs = {"sampling": greedy, "root": str(tmp_path)}
    strict = evaluate(engine, None, ["gsm8k"], report_rules=True, **kwargs)
    entry = strict.summary["benchmarks"]["gsm8k"]
    assert entry["accuracy"] == pytest.approx(1 / 3)  # boxed by default: the paper's rule
    by_rule = {"boxed": 1 / 3, "flexible": 2 / 3, "first_box": 1 / 3}
    assert entry["accuracy_by_rule"] == pytest.approx(by_rule)
    flexible = evaluate(engine, None, ["gsm8k"], answer_rules={"gsm8k": "flexible"}, **kwargs)
    assert flexible.accuracies()["gsm8k"] == pytest.approx(2 / 3)
    assert [s["extracted"] for s in flexible.samples["gsm8k"]] == ["72", "5", "8"]
    with pytest.raises(ValueError, match="answer_rules"):
        Evaluation(["gsm8k"], answer_rules={"math500": "flexible"})
