"""Collect single-expression equivalence cases from Math-Verify's public test suite.

Math-Verify (github.com/huggingface/Math-Verify, Apache-2.0) tests its verifier with
``(gold, pred, expected)`` triples. This script reads them from a git checkout (no import, no
execution: the test files are parsed with ``ast``), keeps the cases whose gold is one expression
(wrappers ``$…$``, ``\\(…\\)``, ``\\[…\\]``, ``\\boxed{}`` peeled; one line, no prose) and whose
prediction is one expression too (then boxed, as a solver writes it) or a response with a
``\\boxed{}``, from tests called with the default precision and strictness, and writes them with
their source to ``mathverify_cases.json`` as ``(gold, response, expected)``.

    python tests/data/collect_mathverify_cases.py /path/to/Math-Verify [commit]
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

FILES = ["tests/test_all.py", "tests/test_boxed.py", "tests/test_numina_cases.py",
         "tests/test_open_thoughts.py"]  # fmt: skip
WRAPPERS = [r"\$\$(.*)\$\$", r"\$(.*)\$", r"\\\((.*)\\\)", r"\\\[(.*)\\\]", r"\\boxed\{(.*)\}"]


def bare(text: str) -> str | None:
    """The one expression ``text`` holds, or None when it holds prose or several parts."""
    s, before = text.strip(), None
    while s != before:  # peel wrappers: "$\\boxed{1}$" is 1
        before = s
        for wrapper in WRAPPERS:
            m = re.fullmatch(wrapper, s, re.DOTALL)
            if m:
                s = m.group(1).strip()
                break
    if not s or "\n" in s or "$" in s or "\\boxed" in s or len(s) > 200:
        return None
    if re.search(r"[A-Za-z]{4,}", re.sub(r"\\[A-Za-z]+", "", s)):  # a word: prose or units
        return None
    return s


def default_call(func: ast.FunctionDef) -> bool:
    """The test calls compare_strings without precision/strict/allow_set_relation_comp."""
    for node in ast.walk(func):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "compare_strings":
            names = {k.arg for k in node.keywords}
            return not names & {"precision", "strict", "allow_set_relation_comp"}
    return False


def cases(repo: Path, commit: str, path: str) -> list[dict]:
    source = subprocess.run(["git", "-C", str(repo), "show", f"{commit}:{path}"],
                            capture_output=True, text=True, check=True).stdout  # fmt: skip
    out = []
    for func in ast.walk(ast.parse(source)):
        if not isinstance(func, ast.FunctionDef) or not default_call(func):
            continue
        for deco in func.decorator_list:
            if not (isinstance(deco, ast.Call) and len(deco.args) == 2):
                continue
            names = ast.literal_eval(deco.args[0]) if isinstance(deco.args[0], ast.Constant) else ""
            if names.replace(" ", "") != "gold,pred,expected":
                continue
            for row in deco.args[1].elts:
                try:
                    gold, pred, expected = ast.literal_eval(row)
                except ValueError:
                    continue
                g, p = bare(gold), bare(pred)
                if g is None or (p is None and "\\boxed{" not in pred):
                    continue
                response = "\\boxed{" + p + "}" if p is not None else pred
                source_ref = f"huggingface/Math-Verify@{commit[:12]}:{path}::{func.name}"
                out.append({"gold": g, "response": response, "expected": bool(expected),
                            "source": source_ref})  # fmt: skip
    return out


def main() -> None:
    repo = Path(sys.argv[1])
    commit = sys.argv[2] if len(sys.argv) > 2 else "HEAD"
    commit = subprocess.run(["git", "-C", str(repo), "rev-parse", commit],
                            capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    found, seen = [], set()
    for path in FILES:
        for case in cases(repo, commit, path):
            key = (case["gold"], case["response"])
            if key not in seen:
                seen.add(key)
                found.append(case)
    data = {
        "source": "https://github.com/huggingface/Math-Verify (tests/), commit " + commit,
        "licence": "Apache-2.0 (Math-Verify's LICENCE file); cases copied verbatim, outer "
        "$...$ / \\(...\\) / \\[...\\] / \\boxed{} wrapper removed",
        "cases": found,
    }
    out = Path(__file__).with_name("mathverify_cases.json")
    out.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    print(f"{len(found)} cases -> {out}")


if __name__ == "__main__":
    main()
