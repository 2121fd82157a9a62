"""Summarise a SmolLM2 run folder for bench/REAL.md: scores under both answer rules, rates,
samples, kept count and per-phase time.

    python bench/real_report.py runs/smollm2_cpu
"""

from __future__ import annotations

import json
import os
import sys

from rzero_pl.grading.answers import matches
from rzero_pl.grading.extraction import extract_final


def scores(folder: str) -> None:
    for name in sorted(os.listdir(os.path.join(folder, "samples"))):
        rows = [json.loads(line) for line in open(os.path.join(folder, "samples", name))]
        strict = sum(bool(r["correct"]) for r in rows)
        flexible = sum(matches(r["gold"], extract_final(r["response"], "flexible")) for r in rows)
        boxed = sum("\\boxed" in r["response"] for r in rows)
        print(
            f"- {name[:-6]}: strict {strict}/{len(rows)}, flexible {flexible}/{len(rows)}, "
            f"responses with \\boxed: {boxed}/{len(rows)}"
        )


def main() -> None:
    run = sys.argv[1]
    state = json.load(open(os.path.join(run, "state.json")))
    print("## phases (state.json)")
    for phase, info in state["phases"].items():
        print(f"- {phase}: {json.dumps(info)}")
    for tag in ["eval/baseline", "iter1/eval"]:
        folder = os.path.join(run, tag)
        if os.path.isdir(folder):
            print(f"## {tag}")
            scores(folder)
    questions = os.path.join(run, "iter1", "curriculum", "questions.jsonl")
    if os.path.exists(questions):
        rows = [json.loads(line) for line in open(questions)]
        valid = [r for r in rows if r["question"] is not None]
        print(
            f"## curriculum: {len(valid)}/{len(rows)} valid questions, kept {sum(r['kept'] for r in rows)}"
        )
        reasons: dict[str, int] = {}
        for r in rows:
            reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
        print(f"- reasons: {reasons}")
        for r in rows[:3]:
            text = r["question"] or r.get("completion", "")
            print(f"- sample challenger output: {text[:300]!r}")
        for r in valid[:3]:
            print(f"- votes on {r['question'][:120]!r}: {r['votes']} -> label {r['label']!r}")
    for tag in ["eval/baseline"]:
        path = os.path.join(run, tag, "samples", "gsm8k.jsonl")
        if os.path.exists(path):
            for r in [json.loads(line) for line in open(path)][:2]:
                print(f"- sample solver answer (gold {r['gold']}): {r['response'][-300:]!r}")


if __name__ == "__main__":
    main()
