"""What grading gets right, counted: published cases, equation golds, and the issue-13 classes.

Run against whichever ``rzero_pl`` is importable, so that a copy of an older commit on
``PYTHONPATH`` gives the "before" column:

    python bench/grading_checks.py                         # this checkout
    PYTHONPATH=/tmp/old python bench/grading_checks.py     # an older copy of rzero_pl

1. Math-Verify's published cases (tests/data/mathverify_cases.json): agreement with their
   expected verdicts through ``grade_many("math500", …)``, and math-verify alone called the
   way our worker calls it (``verify(parse(\\boxed{gold}), parse(\\boxed{last box}))``).
2. Equation golds of the local math benchmarks (gold has one ``=``): how many accept the bare
   right-hand side as a response.
3. The classes of tests/test_grading.py: wrong pairs graded right (false positives) and right
   pairs graded wrong (false negatives), per class.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

from rzero_pl.benchmarks import benchmark_root, grade_many, load_rows

ROOT = Path(__file__).resolve().parent.parent


def corpus() -> None:
    from math_verify import parse, verify

    from rzero_pl.grading.answers import extract_boxed

    cases = json.loads((ROOT / "tests/data/mathverify_cases.json").read_text())["cases"]
    ours = grade_many("math500", [c["response"] for c in cases], [c["gold"] for c in cases])

    def alone(case: dict) -> bool:
        boxed = extract_boxed(case["response"])
        gold, pred = parse(f"\\boxed{{{case['gold']}}}"), parse(f"\\boxed{{{boxed}}}")
        return boxed is not None and bool(gold and pred and verify(gold, pred))

    for name, got in (("rzero_pl grade_many", ours), ("math-verify alone", map(alone, cases))):
        got = list(got)
        agree = sum(g == c["expected"] for g, c in zip(got, cases, strict=True))
        fp = sum(g and not c["expected"] for g, c in zip(got, cases, strict=True))
        fn = sum(c["expected"] and not g for g, c in zip(got, cases, strict=True))
        print(f"Math-Verify cases, {name}: agree {agree}/{len(cases)}, FP {fp}, FN {fn}")


def equations() -> None:
    if benchmark_root() is None:
        print("equation golds: no local benchmark files")
        return
    golds = []
    for name in ("gsm8k", "math500", "minerva_math", "olympiadbench", "amc23", "aime2024"):
        golds += [row.answer for row in load_rows(name) if row.answer.count("=") == 1]
    rhs = [gold.split("=")[1].strip() for gold in golds]
    keep = [i for i, r in enumerate(rhs) if r]
    verdicts = grade_many(
        "math500", [f"\\boxed{{{rhs[i]}}}" for i in keep], [golds[i] for i in keep]
    )
    for kind, wanted in (("assignments (x=, f(x)=, MR=)", True), ("equations", False)):
        mine = [v for i, v in zip(keep, verdicts, strict=True) if _assigns(golds[i]) is wanted]
        print(f"{kind} accepting their bare right-hand side: {sum(mine)}/{len(mine)}")


def _assigns(gold: str) -> bool:
    """The left side names a value (a variable, a function of one, letters with subscripts)."""
    return (
        re.fullmatch(r"\s*[A-Za-z](?:[A-Za-z_{}\s]|\\max)*(?:\([a-z]\))?\s*", gold.split("=")[0])
        is not None
    )


def classes() -> None:
    data = json.loads((ROOT / "tests/data/grading_classes.json").read_text())
    for title, table, wrong_if in (
        ("false positives", data["false_positives"], True),
        ("false negatives", data["true_positives"], False),
    ):
        for name, pairs in table.items():
            responses = [f"So the answer is \\boxed{{{a}}}." for _, a in pairs]
            got = grade_many("math500", responses, [g for g, _ in pairs])
            print(f"{title}: {name}: {sum(g == wrong_if for g in got)}/{len(pairs)}")


if __name__ == "__main__":
    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    corpus()
    equations()
    classes()
